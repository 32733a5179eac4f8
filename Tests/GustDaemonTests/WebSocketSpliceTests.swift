@testable import GustDaemon
import NIOCore
import NIOEmbedded
import Testing

/// The WebSocket relay's logic without sockets: where frames end (`WebSocketFrames`),
/// and a splice between two embedded channels relaying both ways, going away with
/// 1001 between frames, and refusing a frame over the limit with 1009.
@Suite struct WebSocketSpliceTests {
    /// A frame as a client (masked) or a server (unmasked) sends it.
    static func frame(_ opcode: UInt8, _ payload: [UInt8], masked: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(0x80 | opcode)
        let bit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            buffer.writeInteger(bit | UInt8(payload.count))
        } else if payload.count < 65536 {
            buffer.writeInteger(bit | 126)
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(bit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        if masked {
            let key: [UInt8] = [1, 2, 3, 4]
            buffer.writeBytes(key)
            buffer.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset % 4] })
        } else {
            buffer.writeBytes(payload)
        }
        return buffer
    }

    @Test func boundariesAreFoundAcrossReadsOfAnySize() throws {
        var stream = ByteBuffer()
        for size in [0, 5, 125, 126, 300, 65535, 65536, 70000] {
            var one = Self.frame(2, Array(repeating: 7, count: size), masked: size % 2 == 0)
            stream.writeBuffer(&one)
        }
        for piece in [1, 3, 7, 1000, 100_000] {
            var frames = WebSocketFrames(maxPayload: 1 << 20)
            var rest = stream
            var boundaries = 0
            while rest.readableBytes > 0 {
                var slice = rest.readSlice(length: min(piece, rest.readableBytes))!
                while slice.readableBytes > 0 {
                    slice.moveReaderIndex(forwardBy: try frames.read(slice, stopAtBoundary: true))
                    if frames.atBoundary { boundaries += 1 }
                }
            }
            #expect(frames.atBoundary)
            #expect(boundaries == 8, "pieces of \(piece)")
        }
    }

    @Test func aHeaderDeclaringMoreThanTheLimitIsRefusedBeforeItsPayload() throws {
        var frames = WebSocketFrames(maxPayload: 1000)
        #expect(throws: WebSocketFrames.TooLarge(declared: 1001)) {
            _ = try frames.read(Self.frame(2, Array(repeating: 0, count: 1001), masked: true).getSlice(at: 0, length: 4)!)
        }
    }

    @Test func theCloseFramesGustdSends() {
        #expect(Array(buffer: WebSocketFrames.close(code: 1001)) == [0x88, 2, 0x03, 0xE9])
        let masked = Array(buffer: WebSocketFrames.close(code: 1001, mask: (1, 2, 3, 4)))
        #expect(masked == [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE9 ^ 2])
    }

    /// Two embedded channels on one embedded loop, spliced.
    static func spliced(maxFrameBytes: Int = 1 << 20) throws -> (client: EmbeddedChannel, instance: EmbeddedChannel, splice: WebSocketSplice, loop: EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), instance = EmbeddedChannel(loop: loop)
        _ = try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try instance.connect(to: .init(ipAddress: "127.0.0.1", port: 2)).wait()
        let splice = WebSocketSplice(loop: loop, clientChannel: client, instanceChannel: instance, maxFrameBytes: maxFrameBytes, idleTimeout: .seconds(60))
        try client.pipeline.syncOperations.addHandler(splice.client)
        try instance.pipeline.syncOperations.addHandler(splice.instance)
        return (client, instance, splice, loop)
    }

    static func written(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all += Array(buffer: buffer) }
        return all
    }

    @Test func bytesGoBothWaysAndGoingAwayWaitsForTheFrameInFlight() throws {
        let (client, instance, splice, loop) = try Self.spliced()
        let hello = Self.frame(1, Array("hello".utf8), masked: true)
        try client.writeInbound(hello)
        #expect(try Self.written(instance) == Array(buffer: hello))
        // The instance is halfway through a frame when gustd must go: the close waits for its end.
        let answer = Self.frame(1, Array(repeating: 65, count: 200), masked: false)
        try instance.writeInbound(answer.getSlice(at: 0, length: 50)!)
        splice.goAway(code: 1001)
        let toInstance = try Self.written(instance)
        #expect(Array(toInstance.prefix(2)) == [0x88, 0x82], "the instance hears a masked close at once (its stream was between frames)")
        #expect(try Self.written(client) == Array(buffer: answer.getSlice(at: 0, length: 50)!), "no close inside a frame")
        var rest = answer.getSlice(at: 50, length: answer.readableBytes - 50)!
        var after = hello
        rest.writeBuffer(&after)  // what comes after the frame's end is not relayed
        try instance.writeInbound(rest)
        #expect(try Self.written(client) == Array(buffer: answer.getSlice(at: 50, length: answer.readableBytes - 50)!) + [0x88, 2, 0x03, 0xE9])
        loop.advanceTime(by: WebSocketSplice.closeGrace)
        #expect(!client.isActive && !instance.isActive, "both connections close after the grace")
        _ = try? client.finish()
        _ = try? instance.finish()
    }

    @Test func aClientFrameOverTheLimitEndsTheSocketWith1009() throws {
        let (client, instance, _, loop) = try Self.spliced(maxFrameBytes: 100)
        try client.writeInbound(Self.frame(2, Array(repeating: 1, count: 101), masked: true))
        #expect(try Self.written(instance).isEmpty, "nothing of it reaches the instance")
        #expect(try Self.written(client) == [0x88, 2, 0x03, 0xF1])
        loop.advanceTime(by: WebSocketSplice.closeGrace)
        #expect(!client.isActive && !instance.isActive)
        _ = try? client.finish()
        _ = try? instance.finish()
    }

    @Test func eitherSideClosingClosesTheOther() throws {
        let (client, instance, splice, _) = try Self.spliced()
        try client.close().wait()
        (client.eventLoop as? EmbeddedEventLoop)?.run()
        #expect(!instance.isActive)
        #expect(throws: Never.self) { try splice.closed.wait() }
        _ = try? instance.finish()
    }
}
