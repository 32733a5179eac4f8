@testable import GustDaemon
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization
import Testing

/// The lane for plain requests on its own, before a stand-in for NIO's decoder: what it
/// answers and calls from the bytes, that what it does not take reaches the decoder
/// from that request's first byte on, that its answers are the bytes the codec and
/// the encoder make of the same answers, and that answers keep their order.
@Suite struct PlainLaneTests {
    /// Records the bytes that reach the decoder's place in the pipeline.
    final class HandedOn: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = ""
        var inputClosed = false
        /// What had been handed on when the end of input came.
        var bytesAtInputClosed: String?
        var quiesced = false
        var readsCompleted = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += String(buffer: unwrapInboundIn(data)) }
        func channelReadComplete(context: ChannelHandlerContext) { readsCompleted += 1 }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event {
                inputClosed = true
                bytesAtInputClosed = bytes
            }
            if event is ChannelShouldQuiesceEvent { quiesced = true }
        }
    }

    /// The calls the lane started, with the fields each forwards and where to answer it (all on the
    /// embedded channel's one thread).
    final class Calls: @unchecked Sendable {
        var started: [(target: String, fields: [String], body: String, reply: LaneReply)] = []
    }

    static let answer = Gateway.ImmediateAnswer(
        head: Gateway.jsonHead(200, body: ByteBuffer(string: "{}"), requestID: "r-1"), body: ByteBuffer(string: "{}"))

    /// A lane that answers heads for `/_/health`, starts a call for every target under `/call` (into
    /// `calls`), and a channel with it before the stand-in.
    func channel(before handlers: [any ChannelHandler] = [], calls: Calls = Calls()) throws -> (EmbeddedChannel, HandedOn, GatewayLaneTests.Reads) {
        let lane = PlainLane(
            answer: { $0.target == "/_/health" ? Self.answer : nil },
            call: { head, bytes, _ in
                guard head.target.hasPrefix("/call") else { return nil }
                let fields = head.fields(in: bytes).map { "\($0.name): \($0.value)" }
                let body = bytes.getString(at: bytes.readerIndex + head.length, length: head.bodyLength) ?? "(not whole)"
                return { reply in calls.started.append((head.target, fields, body, reply)) }
            },
            dates: HTTPDate(), serverName: "gust", idle: nil,
            headDeadline: handlers.compactMap { $0 as? RequestHeadDeadline }.first,
            disconnect: handlers.compactMap { $0 as? ClientDisconnectHandler }.first,
            quiesce: handlers.compactMap { $0 as? QuiesceGate }.first)
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
        #expect((try? channel.pipeline.syncOperations.handler(type: PlainLane.self)) == nil, "the lane has left")
        try channel.writeInbound(ByteBuffer(string: health()))
        #expect(handedOn.bytes == call + health() + health())
        #expect(try written(on: channel).isEmpty)
    }

    /// What NIO's encoder writes for `parts` after the HTTPTypes codec, as `GatewayLane`'s answers go.
    func encoded(_ parts: [HTTPResponsePart]) throws -> String {
        let encoding = EmbeddedChannel()
        try encoding.pipeline.syncOperations.addHandlers([HTTPResponseEncoder(), HTTP1ToHTTPServerCodec(secure: false)])
        for part in parts { try encoding.writeOutbound(part) }
        var text = ""
        while let data = try encoding.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { text += String(buffer: buffer) }
        }
        return text
    }

    func call(_ path: String, _ extra: String = "") -> String { "GET \(path) HTTP/1.1\r\nHost: cats.localhost\r\n\(extra)\r\n" }

    func callAnswer(_ n: Int) -> (head: HTTPResponse, body: ByteBuffer) {
        let body = ByteBuffer(string: #"{"n": \#(n)}"#)
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        return (head, body)
    }

    /// A plain call is started from the bytes with the fields it forwards, and its answer is the
    /// bytes the codec and the encoder make of it (with the `Date` and `Server` the lane adds).
    @Test func aCallsAnswerIsTheEncodersBytes() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        try channel.writeInbound(ByteBuffer(string: call("/call/a?x=1", "User-Agent: t\r\nX-N: 1\r\n")))
        #expect(calls.started.map(\.target) == ["/call/a?x=1"])
        #expect(calls.started.first?.fields == ["User-Agent: t", "X-N: 1"])
        #expect(try written(on: channel).isEmpty, "not answered yet")
        let answer = callAnswer(1)
        calls.started[0].reply.answer(answer.head, body: answer.body)
        var head = answer.head
        head.headerFields[.date] = HTTPDate().now
        head.headerFields[.server] = "gust"
        #expect(withoutDate(try written(on: channel)) == withoutDate(try encoded([.head(head), .body(answer.body), .end(nil)])))
        #expect(handedOn.bytes.isEmpty)
    }

    /// A 204 or 304 has no body and, as NIO's encoder writes it, no length: `LaneCall.relay` gives
    /// every whole answer one, which RFC 9110 (8.6) forbids on a 204, and a cache from before
    /// RFC 9111 reads on a 304 as the stored answer's new length.
    @Test func anAnswerThatHasNoBodyHasNoLengthAsTheEncoderWritesIt() throws {
        for status in [204, 304] {
            let calls = Calls()
            let (channel, _, _) = try channel(calls: calls)
            try channel.writeInbound(ByteBuffer(string: call("/call/x")))
            var head = HTTPResponse(status: .init(code: status))
            head.headerFields.append(HTTPField(name: .contentLength, value: "0"))  // as LaneCall.relay appends it
            calls.started[0].reply.answer(head, body: ByteBuffer())
            let written = try written(on: channel)
            #expect(written.hasPrefix("HTTP/1.1 \(status) "), "\(written)")
            #expect(!written.lowercased().contains("content-length"), "\(status): \(written)")
            head.headerFields[.date] = HTTPDate().now
            head.headerFields[.server] = "gust"
            #expect(withoutDate(written) == withoutDate(try encoded([.head(head), .end(nil)])))
        }
    }

    /// A streamed answer without a length is chunked as the encoder chunks it (an empty chunk is
    /// not written: it would end the body); one with its length goes as it comes.
    @Test func aStreamedAnswerIsFramedAsTheEncoderFramesIt() throws {
        let calls = Calls()
        let (channel, _, _) = try channel(calls: calls)
        try channel.writeInbound(ByteBuffer(string: call("/call/chunked") + call("/call/long")))
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "text/plain"
        let flow = AnswerFlow { _ in }
        calls.started[0].reply.head(head, flow: flow)
        for chunk in ["hello, ", "", "world"] { calls.started[0].reply.body(ByteBuffer(string: chunk)) }
        calls.started[0].reply.end()
        head.headerFields[.date] = HTTPDate().now
        head.headerFields[.server] = "gust"
        let chunked = try encoded([.head(head), .body(ByteBuffer(string: "hello, ")), .body(ByteBuffer(string: "world")), .end(nil)])
        #expect(withoutDate(try written(on: channel)) == withoutDate(chunked))

        try #require(calls.started.count == 2, "the next request, read during the first call, in its turn")
        var long = HTTPResponse(status: .ok)
        long.headerFields[.contentLength] = "10"
        calls.started[1].reply.head(long, flow: flow)
        for chunk in ["hello", "world"] { calls.started[1].reply.body(ByteBuffer(string: chunk)) }
        calls.started[1].reply.end()
        long.headerFields[.date] = HTTPDate().now
        long.headerFields[.server] = "gust"
        let framed = try encoded([.head(long), .body(ByteBuffer(string: "hello")), .body(ByteBuffer(string: "world")), .end(nil)])
        #expect(withoutDate(try written(on: channel)) == withoutDate(framed))
    }

    /// What the client sends during a call waits for its answer (no more is read meanwhile), and is
    /// then taken in turn: answers never overtake each other; the first request the lane does not
    /// take goes to the decoder after the answers before it.
    @Test func requestsReadDuringACallWaitForItsAnswer() throws {
        let calls = Calls()
        let (channel, handedOn, reads) = try channel(calls: calls)
        let other = "PUT /call/x HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 1\r\n\r\nx"
        try channel.writeInbound(ByteBuffer(string: call("/call/1") + health() + call("/call/2")))
        try channel.writeInbound(ByteBuffer(string: other))
        #expect(try calls.started.count == 1 && written(on: channel).isEmpty, "the health check waits for the call before it")
        let before = reads.count
        channel.read()
        #expect(reads.count == before, "nothing more is read while requests wait")
        let first = callAnswer(1)
        calls.started[0].reply.answer(first.head, body: first.body)
        let text = try written(on: channel)
        let callFirst = text.range(of: #"{"n": 1}"#).flatMap { call in text.range(of: "{}").map { call.lowerBound < $0.lowerBound } }
        #expect(callFirst == true, "the call's answer, then the health check's: \(text)")
        try #require(calls.started.count == 2, "then the second call")
        #expect(handedOn.bytes.isEmpty, "the PUT waits for the second call's answer")
        let second = callAnswer(2)
        calls.started[1].reply.answer(second.head, body: second.body)
        #expect(try written(on: channel).contains(#"{"n": 2}"#))
        #expect(handedOn.bytes == other, "then it is the decoder's")
        #expect((try? channel.pipeline.syncOperations.handler(type: PlainLane.self)) == nil, "and the lane has left")
        #expect(reads.count > before, "the read held back went on")
    }

    /// A call that says `Connection: close`, and a call during which the listener drains: the answer
    /// says so, and is the connection's last.
    @Test func aCallsAnswerClosesTheConnectionWhenItSaysSoOrTheListenerDrains() throws {
        for drains in [false, true] {
            let calls = Calls()
            let (channel, handedOn, _) = try channel(calls: calls)
            try channel.writeInbound(ByteBuffer(string: call("/call/1", drains ? "" : "Connection: close\r\n") + call("/call/2")))
            if drains { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
            let answer = callAnswer(1)
            calls.started[0].reply.answer(answer.head, body: answer.body)
            let text = try written(on: channel)
            #expect(text.contains("\r\nConnection: close\r\n") && text.contains(#"{"n": 1}"#), "\(text)")
            #expect(calls.started.count == 1 && handedOn.bytes.isEmpty, "the request after it is not taken")
            #expect(!channel.isActive, "closed once the answer was written")
        }
    }

    /// A client that half-closes after its request still gets the answer: the end of its input
    /// reaches Hummingbird (which would close the connection, owing nothing) only after it.
    @Test func theEndOfInputWaitsForTheCallsAnswer() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        try channel.writeInbound(ByteBuffer(string: call("/call/1")))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!handedOn.inputClosed, "a call is in progress")
        let answer = callAnswer(1)
        calls.started[0].reply.answer(answer.head, body: answer.body)
        #expect(try written(on: channel).contains(#"{"n": 1}"#))
        #expect(handedOn.inputClosed, "passed on once the answer has left")
    }

    /// A client that closes the connection is seen first as the end of its input: a call of its
    /// still waiting for an instance is let go at once (it never runs), though the event itself
    /// waits for the call's answer (its refusal).
    @Test func theEndOfInputLetsACallWaitingForAnInstanceGo() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(before: [ClientDisconnectHandler()], calls: calls)
        try channel.writeInbound(ByteBuffer(string: call("/call/1")))
        let handler = try channel.pipeline.syncOperations.handler(type: ClientDisconnectHandler.self)
        let gone = Atomic(false)
        #expect(handler.laneWaits { gone.store(true, ordering: .relaxed) } != nil, "as `LaneCall.wait` registers")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let letGo = gone.load(ordering: .relaxed)
        #expect(letGo, "the waiting call is let go")
        #expect(!handedOn.inputClosed, "its answer is still owed")
    }

    /// A connection whose requests were all answered here is a kept-alive one between requests when
    /// its listener drains: `QuiesceGate` closes it after its short grace, not after the long one it
    /// gives a connection that has sent nothing yet (a restart waited 10 s for every such client).
    @Test func aDrainingConnectionOfAnsweredRequestsGetsTheShortGrace() throws {
        let gate = QuiesceGate(grace: .seconds(2), firstRequestGrace: .seconds(10))
        let (channel, handedOn, _) = try channel(before: [gate])
        try channel.writeInbound(ByteBuffer(string: health()))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!handedOn.quiesced, "the gate holds it for its grace")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(handedOn.quiesced, "after the short grace")
    }

    /// A read the lane takes whole hands the handlers after it nothing, and no read's end either
    /// (it was passed through them after every request); a read it hands on ends for them as usual.
    @Test func onlyAReadHandedOnEndsForTheHandlersAfterTheLane() throws {
        let (channel, handedOn, _) = try channel()
        try channel.writeInbound(ByteBuffer(string: health() + health()))
        #expect(handedOn.readsCompleted == 0 && handedOn.bytes.isEmpty)
        try channel.writeInbound(ByteBuffer(string: "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
        #expect(handedOn.readsCompleted == 1 && handedOn.bytes.hasPrefix("POST /form"))
        try channel.writeInbound(ByteBuffer(string: health()))
        #expect(handedOn.readsCompleted == 2, "the connection is the decoder's now: every read is passed on")
    }

    /// A `POST` with a small body whole in the read is called with that body, and the request
    /// after the body is the next one read here.
    @Test func aCallsSmallBodyIsTakenWithItsHead() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        let post = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"n\": 12}"
        try channel.writeInbound(ByteBuffer(string: post + call("/call/next")))
        #expect(calls.started.map(\.target) == ["/call/op"])
        #expect(calls.started.first?.body == #"{"n": 12}"#)
        #expect(calls.started.first?.fields == ["Content-Type: application/json"])
        let answer = callAnswer(1)
        calls.started[0].reply.answer(answer.head, body: answer.body)
        #expect(calls.started.map(\.target) == ["/call/op", "/call/next"], "the next request starts after the body")
        #expect(calls.started.last?.body == "")
        #expect(handedOn.bytes.isEmpty)
    }

    /// A body whose rest comes in later reads (a client that writes the head and the body apart,
    /// as Python's http.client does) is waited for, and the call taken with it whole; the request
    /// after it is the next one read here.
    @Test func aBodyArrivingInLaterReadsIsTakenWithItsHead() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        let head = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: head))
        try channel.writeInbound(ByteBuffer(string: "{\"n\""))
        #expect(calls.started.isEmpty, "its body is still arriving")
        try channel.writeInbound(ByteBuffer(string: ": 12}" + call("/call/next")))
        #expect(calls.started.map(\.target) == ["/call/op"])
        #expect(calls.started.first?.body == #"{"n": 12}"#)
        let answer = callAnswer(1)
        calls.started[0].reply.answer(answer.head, body: answer.body)
        #expect(calls.started.map(\.target) == ["/call/op", "/call/next"])
        channel.embeddedEventLoop.advanceTime(by: PlainLane.bodyWait * 2)
        #expect(handedOn.bytes.isEmpty, "no wait was left behind to hand anything on")
    }

    /// A body not whole within `bodyWait` is the decoder's, from its head's first byte, with what
    /// comes after it.
    @Test func aBodyNotWholeWithinItsWaitGoesToTheDecoder() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        let head = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: head + "{\"n\""))
        channel.embeddedEventLoop.advanceTime(by: PlainLane.bodyWait - .milliseconds(1))
        #expect(handedOn.bytes.isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(handedOn.bytes == head + #"{"n""#)
        #expect(handedOn.readsCompleted == 1, "what the decoder made of them reaches Hummingbird")
        try channel.writeInbound(ByteBuffer(string: ": 12}"))
        #expect(calls.started.isEmpty)
        #expect(handedOn.bytes == head + #"{"n": 12}"#)
    }

    /// The wait counts from the head, not from the last byte: a body trickled in faster than
    /// `bodyWait` (a byte every 60 ms) is the decoder's once `bodyWait` has passed since its head,
    /// where the lane's wait, started again at every byte, would have held the connection for good.
    @Test func aBodyTrickledFasterThanItsWaitStillGoesToTheDecoder() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        let head = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: head))
        for byte in #"{"n": 1"# {  // 7 of its 9 bytes, 60 ms apart
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
            try channel.writeInbound(ByteBuffer(string: String(byte)))
        }
        #expect(calls.started.isEmpty)
        #expect(handedOn.bytes.hasPrefix(head), "still waited for after \(7 * 60) ms")
    }

    /// The end of the client's input while a body is awaited: the bytes go to the decoder first,
    /// then the event, as they would have without the lane.
    @Test func theEndOfInputWhileABodyArrivesHandsItsBytesOnFirst() throws {
        let (channel, handedOn, _) = try channel()
        let partial = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n{"
        try channel.writeInbound(ByteBuffer(string: partial))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(handedOn.bytes == partial)
        #expect(handedOn.inputClosed)
    }

    /// A request whose body is still arriving behind a call, and the end of input during that
    /// call: once the call is answered, the bytes reach the decoder before the end of input does.
    @Test func theEndOfInputHeldDuringACallFollowsTheBytesOfABodyStillArriving() throws {
        let calls = Calls()
        let (channel, handedOn, _) = try channel(calls: calls)
        let partial = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n{"
        try channel.writeInbound(ByteBuffer(string: call("/call/1") + partial))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let answer = callAnswer(1)
        calls.started[0].reply.answer(answer.head, body: answer.body)
        #expect(handedOn.inputClosed)
        #expect(handedOn.bytesAtInputClosed == partial)
    }

    /// The same when the listener drains.
    @Test func aDrainWhileABodyArrivesHandsItsBytesOnFirst() throws {
        let (channel, handedOn, _) = try channel()
        let partial = "POST /call/op HTTP/1.1\r\nHost: cats.localhost\r\nContent-Length: 9\r\n\r\n{"
        try channel.writeInbound(ByteBuffer(string: partial))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(handedOn.bytes == partial)
        #expect(handedOn.quiesced)
        try channel.writeInbound(ByteBuffer(string: "\"n\": 1}"))
        #expect(handedOn.bytes == partial + #""n": 1}"#, "the connection is the decoder's")
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
