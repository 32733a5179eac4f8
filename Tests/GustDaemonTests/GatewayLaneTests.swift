@testable import GustDaemon
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

/// The gateway's lane on its own, between requests coming in and a stand-in
/// for Hummingbird after it: what it answers itself, what it hands on, and
/// that an answer of its own never overtakes one Hummingbird still owes.
@Suite struct GatewayLaneTests {
    /// Records what reaches Hummingbird's place in the pipeline.
    final class HandedOn: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var parts: [HTTPRequestPart] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { parts.append(unwrapInboundIn(data)) }
    }

    /// A lane that answers `GET /health` with `ok`, and a channel with it and the stand-in.
    func channel() throws -> (EmbeddedChannel, HandedOn) {
        let lane = GatewayLane(
            answer: { request, _ in
                guard request.path == "/health" else { return nil }
                return .now(Gateway.ImmediateAnswer(
                    head: HTTPResponse(status: .ok, headerFields: [.contentLength: "2"]), body: ByteBuffer(string: "ok")))
            },
            dates: HTTPDate(), serverName: "gust")
        let handedOn = HandedOn()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([lane, handedOn])
        return (channel, handedOn)
    }

    func request(_ path: String) -> [HTTPRequestPart] {
        [.head(HTTPRequest(method: .get, scheme: "http", authority: "x", path: path)), .end(nil)]
    }

    func send(_ parts: [HTTPRequestPart], on channel: EmbeddedChannel) throws {
        for part in parts { try channel.writeInbound(part) }  // each read completes, as the codec would
    }

    func answers(on channel: EmbeddedChannel) throws -> [HTTPResponsePart] {
        var parts: [HTTPResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) { parts.append(part) }
        return parts
    }

    @Test func answersWhatItCanWithDateAndServerAndHandsOnNothingOfIt() throws {
        let (channel, handedOn) = try channel()
        try send(request("/health"), on: channel)
        let parts = try answers(on: channel)
        #expect(parts.count == 3)
        guard case .head(let head) = parts.first, case .body(let body) = parts.dropFirst().first, case .end = parts.last else {
            Issue.record("not head, body, end: \(parts)")
            return
        }
        #expect(head.status == .ok)
        #expect(head.headerFields[.server] == "gust")
        #expect(head.headerFields[.date] != nil)
        #expect(String(buffer: body) == "ok")
        #expect(handedOn.parts.isEmpty)
    }

    @Test func handsOnWhatItCannotAnswer() throws {
        let (channel, handedOn) = try channel()
        try send(request("/hello"), on: channel)
        #expect(handedOn.parts == request("/hello"))
        #expect(try answers(on: channel).isEmpty)
    }

    @Test func neverAnswersAheadOfAnAnswerHummingbirdOwes() throws {
        let (channel, handedOn) = try channel()
        // Pipelined: a call, then a health check, before the call is answered.
        try send(request("/hello") + request("/health"), on: channel)
        #expect(handedOn.parts == request("/hello") + request("/health"), "the health check waits its turn behind the call")
        #expect(try answers(on: channel).isEmpty)
        // Hummingbird answers both; from then on the lane answers again.
        for _ in 0..<2 {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        #expect(try answers(on: channel).count == 4)
        try send(request("/health"), on: channel)
        #expect(try answers(on: channel).count == 3)
        #expect(handedOn.parts.count == 4)
    }
}
