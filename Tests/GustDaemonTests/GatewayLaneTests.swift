@testable import GustDaemon
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

/// The gateway's lane on its own, between requests coming in and a stand-in
/// for Hummingbird after it: what it answers itself, what it hands on, and
/// that an answer of its own never overtakes one Hummingbird still owes.
@Suite struct GatewayLaneTests {
    /// Records what reaches Hummingbird's place in the pipeline.
    final class HandedOn: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var parts: [HTTPRequestPart] = []
        /// How many parts had reached it when the client's end of input did (nil: it has not).
        var inputClosedAfter: Int?
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { parts.append(unwrapInboundIn(data)) }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { inputClosedAfter = parts.count }
        }
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

    // MARK: Calls

    /// The calls the lane started (`/call...`), each with the reply it writes its answer through.
    final class Calls: Sendable {
        private let started = Mutex<[(path: String, reply: LaneReply)]>([])
        var paths: [String] { started.withLock { $0.map(\.path) } }
        func add(_ path: String, _ reply: LaneReply) { started.withLock { $0.append((path, reply)) } }
        func reply(_ index: Int) -> LaneReply { started.withLock { $0[index].reply } }
    }

    /// What a streamed answer's receiver asked of its instance: `true` for each pause, `false` for each resume.
    final class FlowRecord: Sendable {
        private let asked = Mutex<[Bool]>([])
        var calls: [Bool] { asked.withLock { $0 } }
        var flow: AnswerFlow { AnswerFlow { paused in self.asked.withLock { $0.append(paused) } } }
    }

    /// Counts the reads asked for: what the lane passes on towards the socket.
    final class Reads: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    /// A lane that answers `/health` at once, starts a call for every path under `/call`, and hands on the rest.
    func callingChannel() throws -> (EmbeddedChannel, HandedOn, Calls, Reads) {
        let calls = Calls()
        let lane = GatewayLane(
            answer: { request, _ in
                guard let path = request.path else { return nil }
                if path == "/health" {
                    return .now(Gateway.ImmediateAnswer(
                        head: HTTPResponse(status: .ok, headerFields: [.contentLength: "2"]), body: ByteBuffer(string: "ok")))
                }
                guard path.hasPrefix("/call") else { return nil }
                return .call { reply in calls.add(path, reply) }
            },
            dates: HTTPDate(), serverName: "gust")
        let handedOn = HandedOn()
        let reads = Reads()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([reads, lane, handedOn])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()  // active, so that a close shows
        return (channel, handedOn, calls, reads)
    }

    func answer(_ text: String) -> (HTTPResponse, ByteBuffer) {
        (HTTPResponse(status: .ok, headerFields: [.contentLength: String(text.utf8.count)]), ByteBuffer(string: text))
    }

    func bodies(_ parts: [HTTPResponsePart]) -> [String] {
        parts.compactMap { if case .body(let body) = $0 { String(buffer: body) } else { nil } }
    }

    @Test func aCallIsAnsweredWhenItsAnswerComesAndNeverReachesHummingbird() throws {
        let (channel, handedOn, calls, _) = try callingChannel()
        try send(request("/call"), on: channel)
        #expect(calls.paths == ["/call"])
        #expect(try answers(on: channel).isEmpty, "nothing is written before the instance answers")
        let (head, body) = answer("hello")
        calls.reply(0).answer(head, body: body)
        let parts = try answers(on: channel)
        guard parts.count == 3, case .head(let written) = parts[0], case .end = parts[2] else {
            Issue.record("not head, body, end: \(parts)")
            return
        }
        #expect(written.status == .ok)
        #expect(written.headerFields[.server] == "gust")
        #expect(written.headerFields[.date] != nil)
        #expect(bodies(parts) == ["hello"])
        #expect(handedOn.parts.isEmpty, "Hummingbird's responder never sees the call")
    }

    /// A request that says `Connection: close` is answered with `Connection: close`, and the
    /// connection closes once the answer is written; what the client sent after it is not answered.
    @Test func aRequestThatAsksToCloseIsAnsweredAndTheConnectionCloses() throws {
        for path in ["/health", "/call"] {
            let (channel, handedOn, calls, _) = try callingChannel()
            var head = HTTPRequest(method: .get, scheme: "http", authority: "x", path: path)
            head.headerFields[.connection] = "Close"
            try send([.head(head), .end(nil)] + request("/health"), on: channel)
            if path == "/call" {
                let (answerHead, body) = answer("hello")
                calls.reply(0).answer(answerHead, body: body)
            }
            let parts = try answers(on: channel)
            guard parts.count == 3, case .head(let written) = parts[0], case .end = parts[2] else {
                Issue.record("\(path): not one answer of head, body, end: \(parts)")
                continue
            }
            #expect(written.headerFields[.connection] == "close", "\(path)")
            #expect(!channel.isActive, "\(path): the connection is closed after the answer")
            #expect(handedOn.parts.isEmpty, "\(path)")
        }
    }

    @Test func requestsReadDuringACallWaitForItsAnswerAndKeepTheirOrder() throws {
        let (channel, handedOn, calls, _) = try callingChannel()
        // Pipelined behind a call: another call, a request for Hummingbird, and a health check.
        try send(request("/call/1") + request("/call/2") + request("/hello") + request("/health"), on: channel)
        #expect(calls.paths == ["/call/1"], "the second call waits for the first one's answer")
        #expect(handedOn.parts.isEmpty)
        #expect(try answers(on: channel).isEmpty)

        let (head, body) = answer("one")
        calls.reply(0).answer(head, body: body)
        #expect(calls.paths == ["/call/1", "/call/2"])
        #expect(bodies(try answers(on: channel)) == ["one"])
        #expect(handedOn.parts.isEmpty, "what follows the second call waits for it too")

        let (secondHead, secondBody) = answer("two")
        calls.reply(1).answer(secondHead, body: secondBody)
        #expect(bodies(try answers(on: channel)) == ["two"])
        // Hummingbird owes `/hello` now, so the health check goes to it as well, behind it.
        #expect(handedOn.parts == request("/hello") + request("/health"))
    }

    @Test func readingGoesOnDuringACallUntilARequestWaitsBehindIt() throws {
        let (channel, _, calls, reads) = try callingChannel()
        try send(request("/call/1"), on: channel)
        channel.read()
        #expect(reads.count == 1, "nothing waits: the read goes on (no epoll change a call)")
        try send(request("/call/2"), on: channel)
        channel.read()
        #expect(reads.count == 1, "a request waits behind the call: the next read waits for its answer")
        let (head, body) = answer("one")
        calls.reply(0).answer(head, body: body)
        #expect(calls.paths == ["/call/1", "/call/2"])
        #expect(reads.count == 2, "the waiting request became the call, nothing is held: reading goes on")
        calls.reply(1).answer(head, body: body)
        channel.read()
        #expect(reads.count == 3)
    }

    /// A client that half-closes after its requests: the end of its input reaches Hummingbird (which
    /// closes the connection on it when it owes nothing) only once the calls before it are answered.
    @Test func theEndOfInputWaitsForTheCallsReadBeforeIt() throws {
        let (channel, handedOn, calls, _) = try callingChannel()
        try send(request("/call/1") + request("/health") + request("/call/2"), on: channel)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(handedOn.inputClosedAfter == nil, "a call is in progress: the end of input waits")
        let (head, body) = answer("one")
        calls.reply(0).answer(head, body: body)
        #expect(handedOn.inputClosedAfter == nil, "the second call, read before it, is in progress")
        calls.reply(1).answer(head, body: body)
        #expect(bodies(try answers(on: channel)) == ["one", "ok", "one"])
        #expect(handedOn.inputClosedAfter == 0, "passed on once everything is answered")

        // With nothing in progress it goes on at once; behind a request Hummingbird owes, in its order.
        let (idle, idleHandedOn, _, _) = try callingChannel()
        try send(request("/hello"), on: idle)
        idle.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(idleHandedOn.inputClosedAfter == 2)
    }

    /// Nothing is read while the connection takes no more of what is written to it: a client that
    /// pipelines requests and reads no answers cannot pile them up in gustd.
    @Test func nothingIsReadWhileTheConnectionTakesNoMore() throws {
        let (channel, _, _, reads) = try callingChannel()
        Self.expectNoReadWhileNotWritable(channel, reads)
    }

    /// A read asked for while `channel` takes no more is held, and passed on once, when it takes again.
    static func expectNoReadWhileNotWritable(_ channel: EmbeddedChannel, _ reads: Reads) {
        channel.read()
        #expect(reads.count == 1)
        channel.isWritable = false
        channel.read()
        #expect(reads.count == 1, "held back")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == 2, "passed on once it takes again")
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == 2, "once")
    }

    @Test func aStreamedAnswerIsWrittenAsItComesAndTheNextRequestFollowsItsEnd() throws {
        let (channel, _, calls, _) = try callingChannel()
        try send(request("/call") + request("/health"), on: channel)
        calls.reply(0).head(HTTPResponse(status: .ok), flow: FlowRecord().flow)
        guard case .head = try answers(on: channel).first else {
            Issue.record("the head is not written at once")
            return
        }
        calls.reply(0).body(ByteBuffer(string: "a"))
        #expect(bodies(try answers(on: channel)) == ["a"])
        calls.reply(0).body(ByteBuffer(string: "b"))
        #expect(bodies(try answers(on: channel)) == ["b"])
        calls.reply(0).end()
        let rest = try answers(on: channel)
        #expect(rest.count == 4, "the call's end, then the health check's head, body and end: \(rest)")
        #expect(bodies(rest) == ["ok"])
    }

    /// A streamed answer is held back while the client's connection takes no more (what the client
    /// has not read then waits in the instance, not in gustd), and let go once it takes again, or
    /// once the client has gone (the rest is read and dropped, and the call ends).
    @Test func aStreamedAnswerIsHeldBackWhileTheClientTakesNoMore() throws {
        let (channel, _, calls, _) = try callingChannel()
        let record = FlowRecord()
        try send(request("/call"), on: channel)
        calls.reply(0).head(HTTPResponse(status: .ok), flow: record.flow)
        calls.reply(0).body(ByteBuffer(string: "a"))
        #expect(record.calls == [])
        channel.isWritable = false
        calls.reply(0).body(ByteBuffer(string: "b"))
        calls.reply(0).body(ByteBuffer(string: "c"))
        #expect(record.calls == [true], "paused once, while the connection takes no more")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(record.calls == [true, false])
        #expect(bodies(try answers(on: channel)) == ["a", "b", "c"])
        channel.isWritable = false
        calls.reply(0).body(ByteBuffer(string: "d"))
        #expect(record.calls == [true, false, true])
        _ = try channel.finish(acceptAlreadyClosed: true)  // the client goes
        #expect(record.calls == [true, false, true, false])
    }

    @Test func anAnswerThatBreaksOffClosesTheConnection() throws {
        let (channel, _, calls, _) = try callingChannel()
        try send(request("/call"), on: channel)
        calls.reply(0).head(HTTPResponse(status: .ok), flow: FlowRecord().flow)
        calls.reply(0).abort()
        #expect(!channel.isActive)
    }

    /// The lane takes a request with no `Connection`, or one that says only `keep-alive` or
    /// `close` in any case; a list or any other value (`close, upgrade`) goes to `respond`,
    /// which handles hop-by-hop headers. Only `close` closes after the answer.
    @Test func theConnectionHeaderIsReadAsOneTokenInAnyCase() {
        for taken in [nil, "close", "Close", "CLOSE", "keep-alive", "Keep-Alive"] {
            #expect(Gateway.laneTakes(connection: taken), "\(taken ?? "none")")
        }
        for handedOn in ["close, upgrade", "Keep-Alive, foo", "upgrade", "closed", "clos", "", "keep alive", "close "] {
            #expect(!Gateway.laneTakes(connection: handedOn), "\(handedOn)")
        }
        #expect(Gateway.asksToClose(connection: "cLoSe"))
        #expect(!Gateway.asksToClose(connection: "keep-alive"))
        #expect(!Gateway.asksToClose(connection: nil))
        #expect(!Gateway.asksToClose(connection: "close, upgrade"))
    }
}
