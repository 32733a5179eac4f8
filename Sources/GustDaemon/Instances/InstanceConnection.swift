import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request gustd sends to an instance (runtime protocol, docs/runtime-protocol.md).
struct InstanceRequest: Sendable {
    var method: HTTPMethod
    var target: String
    var headers: HTTPHeaders = HTTPHeaders()
    var body: ByteBuffer = ByteBuffer()
    /// Whether a chunked answer is handed over at its head, its body following as it comes
    /// (`InstanceResponse.rest`), rather than collected whole: a handler's or a mount's answer.
    /// So is one with its length over `InstanceConnection.streamedAbove`, whatever that length.
    var streamsAnswer = false
    /// Whether an answer with its length over `streamedAbove`, and within the call's limit, is
    /// handed over at its head too (an op's): collected whole and handed to a client that does not
    /// read it, it would wait in gustd's memory, the instance free for the next call. One longer
    /// than the limit is refused at its head.
    var relaysLongAnswer = false
    /// The call's id (`CallTag`), sent as `X-Gust-Call` in place of any such field in `headers`: set
    /// by the instance that sends it, without copying `headers` to add a field.
    var callTag: String? = nil

    /// Whether the request is for the runtime's internal surface, which
    /// answers only requests carrying the instance's secret.
    var isInternal: Bool { target == "/_gust" || target.hasPrefix("/_gust/") || target.hasPrefix("/_gust?") }

    /// The function this request runs, as logs name it: `op NAME`, `schedule
    /// NAME`, `hook EVENT TYPE`, `handler PATH`; nil for gustd's own calls.
    var function: String? {
        let path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
        let name = { (prefix: String) -> String in
            let rest = String(path.dropFirst(prefix.count))
            return rest.contains("%") ? rest.removingPercentEncoding ?? rest : rest
        }
        if path.hasPrefix("/_gust/ops/") { return "op " + name("/_gust/ops/") }
        if path.hasPrefix("/_gust/schedules/") { return "schedule " + name("/_gust/schedules/") }
        if path.hasPrefix("/_gust/hooks/") { return "hook " + name("/_gust/hooks/").replacingOccurrences(of: "/", with: " ") }
        if path.hasPrefix("/_gust/") { return nil }
        return "handler " + path
    }
}

struct InstanceResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The rest of a streamed answer (`body` is then empty), nil for a whole one.
    var rest: StreamedBody? = nil
}

/// The body of a chunked answer as the instance sends it: `chunks` yields each
/// piece as it arrives and ends with the answer (or throws if the connection
/// fails or the call passes its time limit first); `done` completes then too,
/// for whoever holds the instance until the answer is over. The connection is
/// closed once it is done. At most about `ChunkBacklog`'s `high` bytes wait in
/// memory for a slow client: past that the instance is held back.
struct StreamedBody: Sendable {
    var chunks: AsyncMapSequence<AsyncThrowingStream<ByteBuffer, any Error>, ByteBuffer>
    var done: EventLoopFuture<Void>
    /// For the relay whose client has gone: the rest of the answer is read and dropped, so that
    /// the call ends now rather than at its time limit.
    var abandon: @Sendable () -> Void
}

enum InstanceCallError: Error, Equatable {
    /// The connection closed before the answer was complete: the process died or hung up.
    case connectionClosed
    /// No complete answer within the time limit.
    case timedOut
    /// The answer's body passed the size the caller allowed (the connection is closed).
    case tooLarge
    /// The instance wrote what is not an answer gustd reads (`InstanceAnswerDecoder`; the connection is closed).
    case malformedAnswer
    /// A streamed answer did not end within the time limit, and its client had held it back
    /// (`AnswerFlow`): the client's slowness, not the instance's, so the instance is kept.
    case clientTooSlow

    /// Whether the instance is to be given up after this failure (its connection's state, or the
    /// process, unknown); the one failure that was not the instance's keeps it.
    var discardsInstance: Bool { self != .clientTooSlow }
}

/// One persistent HTTP/1.1 connection to an instance's Unix socket, one
/// exchange at a time (the caller serialises). Python's runtime serves one
/// connection at a time, so an instance gets exactly one of these.
///
/// Every request to the runtime's internal surface (`/_gust/...`) leaves with
/// the instance's secret in `X-Gust-Internal`, and no other request carries
/// that header: the runtime answers its internal endpoints only to gustd, and
/// a handler never sees the secret (docs/runtime-protocol.md).
final class InstanceConnection: Sendable {
    private let channel: any Channel
    /// The instance's secret for its internal surface (`GUST_INTERNAL_TOKEN` in its environment).
    let internalToken: String

    private init(channel: any Channel, internalToken: String) {
        self.channel = channel
        self.internalToken = internalToken
    }

    /// Connects to the instance's socket `socketPath`, below `base` (gustd's `run/instances`), never
    /// through a link the app put on the way (`NoFollowPath`).
    static func connect(
        socketPath: String, below base: String, internalToken: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> InstanceConnection {
        try await connecting(socketPath: socketPath, below: base, internalToken: internalToken, group: group).get()
    }

    /// `connect` for a caller that is not a task.
    static func connecting(
        socketPath: String, below base: String, internalToken: String, group: any EventLoopGroup
    ) -> EventLoopFuture<InstanceConnection> {
        let loop = group.next()
        let socket: NoFollowPath.Socket
        do { socket = try NoFollowPath.socket(socketPath, below: base) } catch { return loop.makeFailedFuture(error) }
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(internalToken: internalToken))
                }
            }
            .connect(unixDomainSocketPath: socket.address)
            .always { _ in socket.close() }
            .map { InstanceConnection(channel: $0, internalToken: internalToken) }
    }

    var isOpen: Bool { channel.isActive }
    var eventLoop: any EventLoop { channel.eventLoop }

    /// The most of an answer gustd collects whole (as Cloud Run's limit for an answer that is not
    /// streamed): past it a call fails with `tooLarge`, its connection closed. An answer the request
    /// `streamsAnswer` for is relayed as it comes once it is chunked or longer than `streamedAbove`,
    /// and has no limit: a slow client holds its instance back (`AnswerFlow`), not gustd's memory.
    /// A whole answer is handed to the client's connection and waits there until the client has
    /// read it, the instance free: `streamedAbove` bounds how much of gustd each connection can
    /// hold so (16 clients not reading 16 MiB op answers held 265 MB of it when ops' answers were
    /// collected whole). An op's answer past it is relayed too, whatever its framing (its length,
    /// chunked, or the connection's end: an app's code can frame its own answers), and still
    /// fails past `maxBodyBytes`.
    static let wholeAnswerLimit = 32 * 1024 * 1024
    static let streamedAbove = 64 * 1024

    /// Sends `request` and collects the answer, failing with `tooLarge` once
    /// its body passes `maxBodyBytes`.
    func send(_ request: InstanceRequest, timeout: Duration, maxBodyBytes: Int = wholeAnswerLimit) async throws -> InstanceResponse {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: InstanceResponse.self)
        // A streamed answer's chunks and end, once its head has come (all on the connection's loop).
        let stream = NIOLoopBoundBox.makeEmptyBox(
            valueType: (AsyncThrowingStream<ByteBuffer, any Error>.Continuation, EventLoopPromise<Void>, ChunkBacklog).self, eventLoop: loop)
        start(request, timeout: timeout, maxBodyBytes: maxBodyBytes) { part in
            switch part {
            case .whole(let response):
                promise.succeed(response)
            case .head(let status, let headers, let flow):
                let (chunks, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
                let done = loop.makePromise(of: Void.self)
                let backlog = ChunkBacklog(flow: flow)
                // Let go when Hummingbird stops taking chunks; `Gateway.forward` also lets go when the
                // client's connection closes (Hummingbird's writer, waiting for that client, was seen to stay).
                continuation.onTermination = { _ in backlog.abandoned() }
                stream.value = (continuation, done, backlog)
                let taken = chunks.map { chunk in
                    backlog.taken(chunk.readableBytes)
                    return chunk
                }
                promise.succeed(InstanceResponse(
                    status: status, headers: headers, body: ByteBuffer(), rest: StreamedBody(
                        chunks: taken, done: done.futureResult,
                        // Weakly: a relay may keep this until its client's connection closes, long after the answer.
                        abandon: { [weak backlog] in backlog?.abandoned() })))
            case .chunk(let chunk):
                stream.value?.2.added(chunk.readableBytes)
                stream.value?.0.yield(chunk)
            case .end:
                stream.value?.0.finish()
                stream.value?.1.succeed()
                stream.value = nil
            case .failed(let error):
                promise.fail(error)
            case .streamFailed(let error):
                stream.value?.0.finish(throwing: error)
                stream.value?.1.fail(error)
                stream.value = nil
            }
        }
        return try await promise.futureResult.get()
    }

    /// Sends `request` without waiting: `deliver` is given its answer's parts, on the connection's
    /// event loop, as they come (`InstanceAnswerPart`). What `send` does, for a caller that is not a task
    /// (the gateway's lane for calls, `GatewayLane`).
    func start(
        _ request: InstanceRequest, timeout: Duration, maxBodyBytes: Int = wholeAnswerLimit,
        deliver: @escaping @Sendable (InstanceAnswerPart) -> Void
    ) {
        let exchange = Exchange(request: request, deliver: deliver, timeout: timeout, maxBodyBytes: maxBodyBytes)
        // On the connection's loop with the channel open, the write reaches `ExchangeHandler` now
        // (the pipeline is torn down only after the channel closes), and the handler answers
        // whatever becomes of it: no promise (a future and a callback for every call) is needed.
        if channel.eventLoop.inEventLoop, channel.isActive {
            return channel.writeAndFlush(exchange, promise: nil)
        }
        // Fails only if the exchange never reached the handler (the connection had closed): no answer will come.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in deliver(.failed(.connectionClosed)) }
        channel.writeAndFlush(exchange, promise: written)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// An instance's answer as `InstanceConnection.start` hands it over, in this order: `whole`, or
/// `failed`; or, for a chunked answer the request `streamsAnswer` for, `head`, then `chunk`s, then
/// `end` or `streamFailed`.
enum InstanceAnswerPart: Sendable {
    /// A whole answer, its body collected.
    case whole(InstanceResponse)
    /// A streamed answer's head: its chunks follow as the instance writes them, as fast as
    /// `flow` lets them.
    case head(status: Int, headers: HTTPHeaders, flow: AnswerFlow)
    case chunk(ByteBuffer)
    case end
    /// No answer: the connection closed, or the time limit passed, before it came.
    case failed(InstanceCallError)
    /// A streamed answer broke off after its head.
    case streamFailed(InstanceCallError)
}

/// What the handler is asked to do: send `request`, hand its answer to `deliver`.
struct Exchange: Sendable {
    var request: InstanceRequest
    var deliver: @Sendable (InstanceAnswerPart) -> Void
    var timeout: Duration
    var maxBodyBytes: Int
}

/// Writes one request and collects its response; fails the exchange if the
/// connection closes or the time limit passes first (and then closes the
/// connection, since its state is unknown). The connection's bytes are its own: requests
/// written by `InstanceRequest.write(into:internalToken:)`, answers read by
/// `InstanceAnswerDecoder` (an answer it refuses, or bytes no exchange asked for, close the
/// connection as its end would).
final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Exchange
    typealias OutboundOut = ByteBuffer

    private let internalToken: String
    private var decoder = InstanceAnswerDecoder()
    /// The connection was given up (an answer refused, or one too large): what else comes is not read.
    private var givenUp = false
    /// Who waits for the answer in progress, until its head (streamed) or its end (whole).
    private var deliver: (@Sendable (InstanceAnswerPart) -> Void)?
    /// When the exchange in progress runs out of time; nil between exchanges.
    private var deadline: NIODeadline?
    /// The connection's one timer and when it is due: set for an exchange's deadline, and left set
    /// when the exchange ends in time (when it fires, it finds the next exchange's deadline, if
    /// any, later, and is set again for it). A call's timer set and cancelled was a heap insert
    /// and removal on the loop, for a limit of seconds that calls of a millisecond never reach.
    private var timer: (task: Scheduled<Void>, due: NIODeadline)?
    private var head: (status: Int, headers: HTTPHeaders)?
    private var body = ByteBuffer()
    private var maxBodyBytes = Int.max
    private var streamsAnswer = false
    private var relaysLongAnswer = false
    /// A streamed answer in progress: its head went out, its chunks and end go here.
    private var streaming: (@Sendable (InstanceAnswerPart) -> Void)?
    /// What of a relayed answer the request does not stream (an op's) has gone out: it is still held
    /// to `maxBodyBytes`, as it would be collected whole.
    private var relayedBytes = 0
    /// The streamed answer's receiver asked for a pause (`AnswerFlow`): reads wait.
    private var readingPaused = false
    /// A read asked for while paused, passed on at `resume`.
    private var readHeld = false
    /// The answer in progress was paused at least once: if it then runs out of time, its client
    /// had a hand in it (`clientTooSlow`).
    private var heldBack = false

    init(internalToken: String) { self.internalToken = internalToken }

    func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        // The exchange is the handler's from here: what becomes of it goes to `deliver`.
        writePromise?.succeed()
        guard deliver == nil, streaming == nil, !givenUp, context.channel.isActive else {
            exchange.deliver(.failed(.connectionClosed))
            return
        }
        deliver = exchange.deliver
        maxBodyBytes = exchange.maxBodyBytes
        streamsAnswer = exchange.request.streamsAnswer
        relaysLongAnswer = exchange.request.streamsAnswer || exchange.request.relaysLongAnswer
        head = nil
        relayedBytes = 0
        body = ByteBuffer()  // no storage: `clear()` on the shared empty one allocated a new one for every call
        heldBack = false
        let deadline = context.eventLoop.now + .nanoseconds(exchange.timeout.nanoseconds)
        self.deadline = deadline
        if timer.map({ $0.due > deadline }) ?? true { setTimer(for: deadline, context: context) }

        decoder.expectAnswer(to: exchange.request.method)
        var bytes = context.channel.allocator.buffer(capacity: 512 + exchange.request.body.readableBytes)
        exchange.request.write(into: &bytes, internalToken: internalToken)
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    private func setTimer(for due: NIODeadline, context: ChannelHandlerContext) {
        timer?.task.cancel()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: due) { bound.value.handler.timerFired(context: bound.value.context) }
        timer = (task, due)
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let deadline else { return }  // the exchange it was set for ended in time, and none is going on
        guard deadline <= context.eventLoop.now else { return setTimer(for: deadline, context: context) }
        fail(heldBack ? InstanceCallError.clientTooSlow : InstanceCallError.timedOut)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !givenUp else { return }
        decoder.add(unwrapInboundIn(data))
        do {
            // Parts are read while an exchange waits for them (taking one may start the next exchange).
            while deliver != nil || streaming != nil, !givenUp, let part = try decoder.next() {
                take(part, context: context)
            }
        } catch {
            return giveUp(context: context, .malformedAnswer)
        }
        if !givenUp, decoder.hasUnread, deliver == nil, streaming == nil { giveUp(context: context, .malformedAnswer) }  // bytes nobody asked for
    }

    /// Fails the exchange in progress and closes the connection: its bytes can no longer be read as answers.
    private func giveUp(context: ChannelHandlerContext, _ error: InstanceCallError) {
        givenUp = true
        fail(error)
        context.close(promise: nil)
    }

    private func take(_ part: InstanceAnswerDecoder.Part, context: ChannelHandlerContext) {
        switch part {
        case .head(let status, let headers, let framing):
            head = (status, headers)
            // A long answer with its length is relayed as it comes too: held whole, it would sit in gustd's memory.
            let relayed = switch framing {
            case .chunked: streamsAnswer
            case .length(let length): relaysLongAnswer && length > InstanceConnection.streamedAbove
            case .none, .untilClose: false
            }
            // Past the call's limit by its own length, and not streamed without one: refused now, unread.
            if !streamsAnswer, case .length(let length) = framing, length > maxBodyBytes, deliver != nil {
                return giveUp(context: context, .tooLarge)
            }
            if relayed, let deliver { relay(status: status, headers: headers, to: deliver, context: context) }
        case .body(var chunk):
            if let streaming {
                relayedBytes += chunk.readableBytes
                if !streamsAnswer, relayedBytes > maxBodyBytes { return giveUp(context: context, .tooLarge) }
                streaming(.chunk(chunk))
                return
            }
            guard let deliver else { return }
            // An answer without its length (chunked, or ended by the connection) that the request
            // does not stream, an op's: held whole up to its limit, each client that did not read
            // it held that much of gustd (32 MiB). Past `streamedAbove` it is relayed as it comes,
            // as a long answer with its length is.
            if relaysLongAnswer, let head, body.readableBytes + chunk.readableBytes > InstanceConnection.streamedAbove {
                var collected = body
                body = ByteBuffer()
                collected.writeBuffer(&chunk)
                relay(status: head.status, headers: head.headers, to: deliver, context: context)
                return take(.body(collected), context: context)
            }
            guard chunk.readableBytes <= maxBodyBytes - body.readableBytes else {
                body = ByteBuffer()
                return giveUp(context: context, .tooLarge)
            }
            if body.readableBytes == 0 {
                body = chunk  // a slice of the read, not a copy: the usual answer has its body in one read
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            // Bytes past the answer's end (a length the instance got wrong, a header its app let a
            // client split) can be no answer of this connection's: the lane sends the next call
            // from the delivery below, in this same read, and they would be read as its answer,
            // another client's. The connection takes no next exchange, and closes once this
            // answer is delivered.
            let overrun = decoder.hasUnread
            if overrun { givenUp = true }
            defer { if overrun { context.close(promise: nil) } }
            if let streaming {
                deadline = nil
                self.streaming = nil
                setReading(paused: false, context: context)
                streaming(.end)
                return
            }
            guard let head, let deliver else { return }
            deadline = nil
            self.deliver = nil
            let whole = InstanceResponse(status: head.status, headers: head.headers, body: body)
            body = ByteBuffer()
            deliver(.whole(whole))
        }
    }

    /// Hands the answer over now, as a stream: its chunks follow as the instance writes them, read
    /// only as fast as the receiver takes them (`AnswerFlow`).
    private func relay(
        status: Int, headers: HTTPHeaders, to deliver: @escaping @Sendable (InstanceAnswerPart) -> Void, context: ChannelHandlerContext
    ) {
        streaming = deliver
        self.deliver = nil
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let flow = AnswerFlow { paused in
            if bound.eventLoop.inEventLoop { return bound.value.handler.setReading(paused: paused, context: bound.value.context) }
            bound.eventLoop.execute { bound.value.handler.setReading(paused: paused, context: bound.value.context) }
        }
        deliver(.head(status: status, headers: headers, flow: flow))
    }

    func read(context: ChannelHandlerContext) {
        guard !readingPaused else {
            readHeld = true
            return
        }
        context.read()
    }

    /// `AnswerFlow`'s pause and resume; a pause after the streamed answer has ended does nothing.
    private func setReading(paused: Bool, context: ChannelHandlerContext) {
        readingPaused = paused && streaming != nil
        if readingPaused { heldBack = true }
        if !readingPaused, readHeld {
            readHeld = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // An answer framed by the connection's end is whole now; any other is cut short.
        if !givenUp, deliver != nil || streaming != nil, let end = try? decoder.inputEnded() { take(end, context: context) }
        fail(InstanceCallError.connectionClosed)
        timer?.task.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(InstanceCallError.connectionClosed)
        context.close(promise: nil)
    }

    private func fail(_ error: InstanceCallError) {
        deadline = nil
        let pending = deliver
        deliver = nil
        pending?(.failed(error))
        if let streaming {
            self.streaming = nil
            streaming(.streamFailed(error))
        }
    }
}
