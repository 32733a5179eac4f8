import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import GustDaemon

/// After a head llhttp stops at (an upgrade, a CONNECT), NIO's decoder holds every later byte:
/// the bound closes the connection once more than `limit` have come.
@Suite struct StoppedDecoderBoundTests {
    func channel() throws -> EmbeddedChannel {
        let bound = StoppedDecoderBound()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            bound.meter, ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)), bound.watch,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test(arguments: [
        "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ])
    func bytesAfterAHeadTheParserStopsAtCloseTheConnectionPastTheLimit(_ head: String) throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: head))
        let piece = ByteBuffer(repeating: UInt8(ascii: "x"), count: 16 * 1024)
        for _ in 0..<(StoppedDecoderBound.limit / piece.readableBytes) {
            try channel.writeInbound(piece)
        }
        #expect(channel.isActive, "up to the limit, the connection stays")
        try channel.writeInbound(piece)
        #expect(!channel.isActive, "past it, closed")
    }

    @Test func ordinaryRequestsAndTheirBodiesAreNotCounted() throws {
        let channel = try channel()
        let body = String(repeating: "y", count: 200 * 1024)
        for _ in 0..<3 {
            try channel.writeInbound(ByteBuffer(string: "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body))
        }
        // An Upgrade field without `Connection: upgrade` does not stop llhttp either.
        try channel.writeInbound(ByteBuffer(string: "GET /y HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body))
        #expect(channel.isActive)
    }
}
