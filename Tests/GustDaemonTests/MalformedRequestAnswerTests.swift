import Foundation
@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// `MalformedRequestAnswer` after NIO's own decoder and encoder: what a client that sends bytes
/// the parser refuses reads back.
@Suite struct MalformedRequestAnswerTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        try channel.pipeline.syncOperations.addHandler(MalformedRequestAnswer())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()  // active, so that a close shows
        return channel
    }

    /// Sends `text`, expecting the parser's error to reach the pipeline's end (it is passed on).
    func send(_ text: String, to channel: EmbeddedChannel) {
        #expect(throws: HTTPParserError.self) { try channel.writeInbound(ByteBuffer(string: text)) }
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test(arguments: [
        ("FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk"),
    ])
    func aRefusedRequestIsAnsweredWithJSONAndTheConnectionCloses(_ request: String, _ status: Int, _ named: String) throws {
        let channel = try channel()
        send(request, to: channel)
        let text = try written(channel)
        #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(text)")
        #expect(text.contains("Connection: close\r\n"), "\(text)")
        #expect(text.contains("Content-Type: application/json\r\n"), "\(text)")
        let body = try #require(text.range(of: "\r\n\r\n").map { text[$0.upperBound...] })
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(json?["code"] as? Int == status)
        #expect((json?["error"] as? String)?.contains(named) == true, "\(body)")
        #expect(!channel.isActive)
    }

    @Test func headersPastTheLimitAre431() throws {
        let channel = EmbeddedChannel()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = 1024
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(limitConfiguration: limits)))
        try channel.pipeline.syncOperations.addHandler(MalformedRequestAnswer())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 4096))\r\n\r\n", to: channel)
        #expect(try written(channel).hasPrefix("HTTP/1.1 431 "))
    }

    /// A request after one whose answer has started: the answer's bytes are all the client gets,
    /// never a second head in the middle of a body.
    @Test func nothingIsWrittenInTheMiddleOfAnAnswer() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"])
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "part"))))
        let before = try written(channel)
        send("FOO / HTTP/1.1\r\n\r\n", to: channel)
        #expect(try written(channel) == "", "answered after \(before)")
        #expect(!channel.isActive)
    }

    /// Once an answer has ended, the next refused request is answered again.
    @Test func aRefusalAfterACompleteAnswerIsAnswered() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        _ = try written(channel)
        send("FOO / HTTP/1.1\r\n\r\n", to: channel)
        #expect(try written(channel).hasPrefix("HTTP/1.1 400 "))
    }
}
