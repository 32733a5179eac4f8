import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers on the event loop that read them the requests the gateway can
/// answer without Hummingbird (`Gateway.laneAnswer`): an app's `/_/health`
/// at once, from the head alone, and an ordinary call (no body, no upgrade,
/// an instance free) by forwarding it to an instance and writing the answer
/// when it comes (`LaneReply`). No Swift Concurrency task is woken and none
/// of Hummingbird's per-request machinery runs (its `Request` and `Response`,
/// the async channel's iterator and writer). Every other request goes on to
/// Hummingbird as before.
///
/// Answers never overtake each other: while Hummingbird owes an answer, every
/// request goes on to it; while a call the lane started is unanswered, the
/// requests read meanwhile wait here (and, once one waits, no more are read) until it is.
///
/// It sits after HummingbirdCore's connection state handler, which therefore
/// sees these requests and their answers as any other (idle timeout,
/// `Connection: close` on quiesce, a drain waiting for the call in progress),
/// and before the async channel.
final class GatewayLane: ChannelDuplexHandler, RemovableChannelHandler, LaneCallAnswering {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What to do with a request, from its head and its connection, or nil to hand it on.
    typealias Answer = @Sendable (HTTPRequest, any Channel) -> Gateway.LaneAnswer?

    private let answer: Answer
    private let dates: HTTPDate
    private let serverName: String
    /// Requests handed on whose answer's end has not been written yet.
    private var handedOn = 0
    /// A request taken here whose `.end` has not arrived yet: its parts go nowhere.
    private var swallowing = false
    /// Answers written since the last flush.
    private var unflushed = false
    /// A call started here whose answer's end has not been written yet.
    private var calling = false
    /// Parts of the requests read while `calling`: they are taken in turn once its answer is written.
    private var held = CircularBuffer<HTTPRequestPart>()
    /// A read asked for while requests wait in `held` (passed on once the call is answered), or
    /// while the connection is not writable (passed on once it is). A read happens only while
    /// nothing is held, so a client that pipelines requests behind a call has at most one read's
    /// worth of them held here.
    private var readDeferred = false
    /// Parts handed on since the last `channelReadComplete` passed on.
    private var handedSinceComplete = false
    /// Removed from its pipeline (the connection closed): a late answer goes nowhere.
    private var removed = false
    /// The request being answered here said `Connection: close`: the connection closes once its
    /// answer is written, and nothing more is read (RFC 9112, 9.6).
    private var closesAfterAnswer = false
    private var closing = false
    /// The client closed its sending side while a call here was unanswered: the event is passed on
    /// once every request read before it is answered. Passed on at once, it would tell
    /// Hummingbird, which owes no answer then, to close the connection under the call.
    private var inputClosedHeld = false
    /// While `inputClosedHeld`: when the last answer's end written here has left for the socket.
    private var lastEndWritten: EventLoopFuture<Void>?
    /// The streamed answer being relayed: held back (`pause`) while the client's connection takes
    /// no more, so that what the client has not read waits in the instance, not here.
    private var stream: (flow: AnswerFlow, paused: Bool)?
    /// The connection's, with which a call waiting for an instance registers (`LaneReply.waits`).
    private let disconnect: ClientDisconnectHandler?

    init(answer: @escaping Answer, dates: HTTPDate, serverName: String, disconnect: ClientDisconnectHandler? = nil) {
        self.answer = answer
        self.dates = dates
        self.serverName = serverName
        self.disconnect = disconnect
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if closing { return }
        if swallowing {
            if case .end = part { swallowing = false }
            return
        }
        if calling || !held.isEmpty {
            held.append(part)
            return
        }
        take(part, context: context)
    }

    /// A request part in its turn: answered here, or handed on.
    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard case .head(let head) = part else {
            handedSinceComplete = true
            context.fireChannelRead(wrapInboundOut(part))
            return
        }
        if handedOn == 0, let answer = answer(head, context.channel) {
            swallowing = true
            closesAfterAnswer = Gateway.asksToClose(connection: head.headerFields[.connection])
            switch answer {
            case .now(let immediate):
                write(immediate.head, body: immediate.body, context: context)
                unflushed = true  // at the end of this read: answers to pipelined requests leave together
            case .call(let start):
                calling = true
                start(LaneReply(lane: self, context: context, disconnect: disconnect))
            }
            return
        }
        handedOn += 1
        handedSinceComplete = true
        context.fireChannelRead(wrapInboundOut(part))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        handedSinceComplete = false
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // While a call is in progress and nothing waits behind it, reading goes on: a client that
        // sends nothing costs nothing, where holding the read back would take the socket out of
        // epoll's interest and put it back (two system calls a call). Only what arrives is held.
        // Nor is anything read while the connection takes no more of what is written to it: a
        // client that pipelines requests and reads no answers would otherwise pile them up here.
        if calling && !held.isEmpty || !context.channel.isWritable {
            readDeferred = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, calling || !held.isEmpty {
            inputClosedHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only Hummingbird's writes come through here: the lane writes from its own place in the pipeline.
        if case .end = unwrapOutboundIn(data) { handedOn = max(0, handedOn - 1) }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let paused = stream, paused.paused {
            stream?.paused = false
            paused.flow.resume()
        }
        context.fireChannelWritabilityChanged()
        readIfDeferred(context: context)
    }

    /// Passes on a read held back by `read`, once nothing holds it any more.
    private func readIfDeferred(context: ChannelHandlerContext) {
        guard readDeferred, !calling || held.isEmpty, context.channel.isWritable, !removed, !closing else { return }
        readDeferred = false
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        held.removeAll()
        // The client has gone: the rest of a held-back answer is read and dropped, and its call ends.
        if let stream, stream.paused { stream.flow.resume() }
        stream = nil
    }

    /// A whole answer: head (with `Date` and `Server`), body and end.
    private func write(_ head: HTTPResponse, body: ByteBuffer, context: ChannelHandlerContext) {
        writeHead(head, context: context)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        writeEnd(context: context)
    }

    private func writeHead(_ head: HTTPResponse, context: ChannelHandlerContext) {
        var response = head
        Self.set(.date, to: dates.now, in: &response.headerFields)
        Self.set(.server, to: serverName, in: &response.headerFields)
        if closesAfterAnswer { response.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    /// An answer's end; after a request that said `Connection: close`, the connection closes once
    /// it is written (a close before then would drop what the socket has not taken yet).
    private func writeEnd(context: ChannelHandlerContext) {
        guard closesAfterAnswer else {
            guard inputClosedHeld else { return context.write(wrapOutboundOut(.end(nil)), promise: nil) }
            let written = context.eventLoop.makePromise(of: Void.self)
            lastEndWritten = written.futureResult
            return context.write(wrapOutboundOut(.end(nil)), promise: written)
        }
        closing = true
        held.removeAll()
        context.writeThenClose(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// `fields[name] = value`, appended when absent (as it is on every answer the gateway makes itself),
    /// without the subscript's general replacement of every field of that name.
    private static func set(_ name: HTTPField.Name, to value: String, in fields: inout HTTPFields) {
        if fields.contains(name) { fields[name] = value } else { fields.append(HTTPField(name: name, value: value)) }
    }

    // MARK: A call's answer (`LaneReply`), on the channel's event loop

    func answered(_ head: HTTPResponse, body: ByteBuffer, context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        write(head, body: body, context: context)
        callEnded(context: context)
    }

    func streamHead(_ head: HTTPResponse, flow: AnswerFlow, context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        stream = (flow, false)
        writeHead(head, context: context)
        context.flush()
    }

    func streamChunk(_ chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        context.writeAndFlush(wrapOutboundOut(.body(chunk)), promise: nil)
        if !context.channel.isWritable, let held = stream, !held.paused {
            stream?.paused = true
            held.flow.pause()  // until `channelWritabilityChanged` says the client has taken enough
        }
    }

    func streamEnded(context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        stream = nil
        writeEnd(context: context)
        callEnded(context: context)
    }

    /// The answer broke off: the connection closes, as Hummingbird's would.
    func abort(context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        stream = nil
        calling = false
        held.removeAll()
        context.close(promise: nil)
    }

    /// The call's answer is written: the requests that waited for it are taken in turn.
    private func callEnded(context: ChannelHandlerContext) {
        calling = false
        context.flush()
        // The rest of a request the lane took (its end) goes even when that request started a
        // call, as `channelRead` drops it: `held` keeps only requests that wait.
        while !removed, !calling || swallowing, let part = held.popFirst() {
            if swallowing {
                if case .end = part { swallowing = false }
                continue
            }
            take(part, context: context)
        }
        if unflushed {
            unflushed = false
            context.flush()
        }
        if handedSinceComplete {
            handedSinceComplete = false
            context.fireChannelReadComplete()  // what was handed on reaches Hummingbird now
        }
        readIfDeferred(context: context)
        if inputClosedHeld, !calling, held.isEmpty, !removed {
            inputClosedHeld = false
            // After the answers' bytes have left: the connection may close on it, and a close drops
            // what the socket has not taken yet.
            guard let written = lastEndWritten else { return context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            lastEndWritten = nil
            let lane = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            written.whenComplete { _ in
                guard !lane.value.handler.removed else { return }
                lane.value.context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
        }
    }
}

/// A handler that starts calls (`Gateway.laneCall`) and writes their answers: `GatewayLane`
/// after the HTTP codec, `PlainLane` before it. Each is called on the channel's event loop,
/// through `LaneReply`, and does nothing once the call is no longer its own (the connection gone).
protocol LaneCallAnswering: AnyObject {
    /// A whole answer (its head says its `Content-Length`).
    func answered(_ head: HTTPResponse, body: ByteBuffer, context: ChannelHandlerContext)
    /// A streamed answer's head (with its `Content-Length` if the instance gave one, else chunked).
    func streamHead(_ head: HTTPResponse, flow: AnswerFlow, context: ChannelHandlerContext)
    func streamChunk(_ chunk: ByteBuffer, context: ChannelHandlerContext)
    func streamEnded(context: ChannelHandlerContext)
    /// The answer broke off: the connection closes.
    func abort(context: ChannelHandlerContext)
}

/// Where a call the lane started writes its answer, from whichever thread its
/// instance's connection answers on (the channel's own loop, mostly: then at once).
/// Exactly one of: `answer`; `head`, any `body`, then `end` or `abort`.
///
/// Each part is handed over at once on the loop, else carried there: a closure is made only then
/// (one made for every answer was an allocation per call).
struct LaneReply: Sendable {
    private let lane: NIOLoopBound<(handler: any LaneCallAnswering, context: ChannelHandlerContext, disconnect: ClientDisconnectHandler?)>
    /// The client's connection's event loop.
    let eventLoop: any EventLoop

    /// `disconnect`: the connection's `ClientDisconnectHandler`, with which a call waiting for an
    /// instance registers (`waits`).
    init(lane: any LaneCallAnswering, context: ChannelHandlerContext, disconnect: ClientDisconnectHandler?) {
        self.lane = NIOLoopBound((lane, context, disconnect), eventLoop: context.eventLoop)
        eventLoop = context.eventLoop
    }

    /// A whole answer (its head says its `Content-Length`).
    func answer(_ head: HTTPResponse, body: ByteBuffer) {
        guard eventLoop.inEventLoop else { return eventLoop.execute { answer(head, body: body) } }
        lane.value.handler.answered(head, body: body, context: lane.value.context)
    }

    /// A streamed answer's head; its chunks follow, held back through `flow` while the client is slow.
    func head(_ head: HTTPResponse, flow: AnswerFlow) {
        guard eventLoop.inEventLoop else { return eventLoop.execute { self.head(head, flow: flow) } }
        lane.value.handler.streamHead(head, flow: flow, context: lane.value.context)
    }

    func body(_ chunk: ByteBuffer) {
        guard eventLoop.inEventLoop else { return eventLoop.execute { body(chunk) } }
        lane.value.handler.streamChunk(chunk, context: lane.value.context)
    }

    func end() {
        guard eventLoop.inEventLoop else { return eventLoop.execute { end() } }
        lane.value.handler.streamEnded(context: lane.value.context)
    }

    /// A streamed answer that cannot be finished: the connection is closed.
    func abort() {
        guard eventLoop.inEventLoop else { return eventLoop.execute { abort() } }
        lane.value.handler.abort(context: lane.value.context)
    }

    /// For a call about to wait for an instance, on the loop: `leave` runs if the client goes while it
    /// waits, until `waited` is told the id (`ClientDisconnectHandler.laneWaits`). `.gone` if the client
    /// has gone already (the call must not wait); `.unwatched` on a connection with no such handler.
    func waits(leave: @escaping @Sendable () -> Void) -> LaneWait {
        guard let disconnect = lane.value.disconnect else { return .unwatched }
        return disconnect.laneWaits(leave: leave).map(LaneWait.watched) ?? .gone
    }

    /// The call that `waits` registered as `wait` no longer waits, from any thread.
    func waited(_ wait: LaneWait) {
        guard case .watched(let id) = wait else { return }
        guard eventLoop.inEventLoop else { return eventLoop.execute { waited(wait) } }
        lane.value.disconnect?.laneWaited(id)
    }
}

/// A lane call's registration as one waiting for an instance (`LaneReply.waits`).
enum LaneWait: Sendable {
    case watched(UInt64)
    case unwatched
    case gone
}

/// The HTTP/1 channel HummingbirdCore serves (with `ConnectionPersistence`), with a
/// `GatewayLane` after its connection state handler and a `PlainLane` before its codec.
struct GatewayChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: PersistentHTTP1Channel
    let gateway: Gateway
    let dates: HTTPDate
    let serverName: String

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { [gateway, dates, serverName] value in
            let pipeline = channel.pipeline.syncOperations
            let disconnect = try? pipeline.handler(type: ClientDisconnectHandler.self)
            let lane = GatewayLane(answer: gateway.laneAnswer, dates: dates, serverName: serverName, disconnect: disconnect)
            try pipeline.addHandler(lane, position: .after(try pipeline.handler(type: HTTPConnectionStateHandler.self)))
            // The peer's address as text, once per connection rather than once per call.
            let peer = channel.remoteAddress?.ipAddress
            let plain = PlainLane(
                answer: gateway.answerAtOnce,
                call: { head, bytes, channel in gateway.laneCall(head, in: bytes, channel: channel, peer: peer) },
                dates: dates, serverName: serverName,
                idle: try? pipeline.handler(type: IdleConnectionTimer.self), headDeadline: try? pipeline.handler(type: RequestHeadDeadline.self),
                disconnect: disconnect, quiesce: try? pipeline.handler(type: QuiesceGate.self))
            // First of the HTTP handlers (after TLS, if any): what it writes is bytes, past the encoder.
            try pipeline.addHandler(plain, position: .before(try pipeline.handler(type: HTTPResponseEncoder.self)))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}
