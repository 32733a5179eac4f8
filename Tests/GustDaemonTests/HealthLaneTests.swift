@testable import GustDaemon
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing

/// The health lane on its own, before a stand-in for NIO's decoder: what it
/// answers from the bytes, that what it does not answer reaches the decoder
/// from that request's first byte on, and that its answer is the bytes the
/// codec and the encoder make of the same answer.
@Suite struct HealthLaneTests {
    /// Records the bytes that reach the decoder's place in the pipeline.
    final class HandedOn: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += String(buffer: unwrapInboundIn(data)) }
    }

    static let answer = Gateway.ImmediateAnswer(
        head: Gateway.jsonHead(200, body: ByteBuffer(string: "{}"), requestID: "r-1"), body: ByteBuffer(string: "{}"))

    /// A lane that answers heads for `/_/health`, and a channel with it before the stand-in.
    func channel(before handlers: [any ChannelHandler] = []) throws -> (EmbeddedChannel, HandedOn, GatewayLaneTests.Reads) {
        let lane = HealthLane(
            answer: { $0.target == "/_/health" ? Self.answer : nil }, dates: HTTPDate(), serverName: "gust", idle: nil,
            headDeadline: handlers.compactMap { $0 as? RequestHeadDeadline }.first)
        let handedOn = HandedOn()
        let reads = GatewayLaneTests.Reads()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([reads, lane] + handlers + [handedOn])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, handedOn, reads)
    }

    func health(_ extra: String = "") -> String { "GET /_/health HTTP/1.1\r\nHost: cats.localhost\r\n\(extra)\r\n" }

    func written(on channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// `Date`'s value left out: it is the second the answer was written in.
    func withoutDate(_ text: String) -> String {
        text.split(separator: "\r\n", omittingEmptySubsequences: false).map { $0.hasPrefix("Date: ") ? "Date: -" : $0 }
            .joined(separator: "\r\n")
    }

    @Test func answersPipelinedHealthChecksFromTheBytesAndHandsOnNothing() throws {
        let (channel, handedOn, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: health() + health()))
        let text = try written(on: channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3)
        #expect(text.contains("\r\nServer: gust\r\n") && text.contains("\r\nDate: "))
        #expect(handedOn.bytes.isEmpty)
    }

    /// The answer is what `GatewayLane` writes through the HTTPTypes codec and NIO's encoder.
    @Test func itsBytesAreTheEncodersBytes() throws {
        let (channel, _, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: health()))
        let lane = try written(on: channel)

        let encoding = EmbeddedChannel()
        try encoding.pipeline.syncOperations.addHandlers([HTTPResponseEncoder(), HTTP1ToHTTPServerCodec(secure: false)])
        var head = Self.answer.head
        head.headerFields[.date] = HTTPDate().now
        head.headerFields[.server] = "gust"
        try encoding.writeOutbound(HTTPResponsePart.head(head))
        try encoding.writeOutbound(HTTPResponsePart.body(Self.answer.body))
        try encoding.writeOutbound(HTTPResponsePart.end(nil))
        var encoded = ""
        while let data = try encoding.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { encoded += String(buffer: buffer) }
        }
        #expect(withoutDate(lane) == withoutDate(encoded))
    }

    /// The first request it does not answer reaches the decoder whole, with everything after it,
    /// and the connection stays the decoder's: a later health check is not read here.
    @Test func handsOnFromTheFirstRequestItDoesNotAnswerForGood() throws {
        let (channel, handedOn, _) = try channel()
        let call = "GET /hello HTTP/1.1\r\nHost: cats.localhost\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: health() + call + health()))
        #expect(try written(on: channel).components(separatedBy: "HTTP/1.1 200 OK").count == 2, "the first one only")
        #expect(handedOn.bytes == call + health())
        #expect((try? channel.pipeline.syncOperations.handler(type: HealthLane.self)) == nil, "the lane has left")
        try channel.writeInbound(ByteBuffer(string: health()))
        #expect(handedOn.bytes == call + health() + health())
        #expect(try written(on: channel).isEmpty)
    }

    @Test func aHeadSplitAcrossReadsGoesToTheDecoder() throws {
        let (channel, handedOn, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET /_/health HTTP/1.1\r\nHo"))
        try channel.writeInbound(ByteBuffer(string: "st: cats.localhost\r\n\r\n"))
        #expect(handedOn.bytes == health())
        #expect(try written(on: channel).isEmpty)
    }

    @Test func connectionCloseIsTheLastAnswerAndNothingAfterItIsRead() throws {
        let (channel, handedOn, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: health("Connection: close\r\n") + health()))
        let text = try written(on: channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 2)
        #expect(text.contains("\r\nConnection: close\r\n"))
        #expect(handedOn.bytes.isEmpty)
        #expect(!channel.isActive, "closed once the answer was written")
    }

    /// A draining listener's connection goes to the decoder, where `QuiesceGate` closes it after its next answer.
    @Test func aDrainingConnectionIsTheDecoders() throws {
        let (channel, handedOn, _) = try channel()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try channel.writeInbound(ByteBuffer(string: health()))
        #expect(handedOn.bytes == health())
        #expect(try written(on: channel).isEmpty)
    }

    @Test func theFirstAnswerEndsTheHeadDeadline() throws {
        let deadline = RequestHeadDeadline(timeout: .seconds(10))
        let (channel, _, _) = try channel(before: [deadline])
        #expect((try? channel.pipeline.syncOperations.handler(type: RequestHeadDeadline.self)) != nil)
        try channel.writeInbound(ByteBuffer(string: health()))
        #expect((try? channel.pipeline.syncOperations.handler(type: RequestHeadDeadline.self)) == nil)
    }

    @Test func nothingIsReadWhileTheConnectionTakesNoMore() throws {
        let (channel, _, reads) = try channel()
        GatewayLaneTests.expectNoReadWhileNotWritable(channel, reads)
    }
}
