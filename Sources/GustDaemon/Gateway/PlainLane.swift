import HTTPTypes
import NIOCore
import NIOHTTP1

/// Answers an app's `/_/health`, and starts and answers the ordinary calls of
/// the gateway's lane (`Gateway.laneCall`), from the connection's bytes, before
/// any HTTP handler: such a request costs gustd no decoding into NIO's head, no
/// conversion to HTTPTypes and back, no pass through the handlers after the
/// codec either way, no encoding, and its answer is one write of one buffer
/// (docs/benchmarks.md, "Health checks answered from the bytes" and "Calls
/// answered from the bytes"). What it answers, and how, is what `GatewayLane`
/// answers (`Gateway.answerAtOnce`, `Gateway.laneCall`), byte for byte but for
/// `Date` and a new `X-Request-Id`.
///
/// It reads only plain heads (`PlainRequestHead`), whole in the bytes at hand,
/// each with its body (a small one, of a `Content-Length`) whole there too. A
/// body whose rest is still arriving (a client that writes the head and the body
/// apart, as Python's http.client does) is waited for, at most `bodyWait`; a body
/// slower than that, like the end of input or a drain while it waits, hands its
/// bytes on to the decoder, whose path has the rules for a slow body.
/// The first request it does not take, and everything after it, goes on to
/// NIO's decoder, and the lane leaves the pipeline: the decoder then owns
/// where each request ends, for the rest of the connection. So does a connection
/// whose listener drains (`ChannelShouldQuiesceEvent`) between calls, so that
/// `QuiesceGate` answers its next request with `Connection: close` as on every
/// connection; one that drains during a call here is closed after its answer,
/// which says `Connection: close` if it has not started yet.
///
/// While a call started here is unanswered, what the client sends meanwhile is
/// held and taken in turn after the answer (and, once something is held, no
/// more is read), so answers never overtake each other; nor is anything read
/// while the connection takes no more of what is written to it. The end of a
/// client's input (a half-close) waits for the answers it is owed.
///
/// As the handlers after the codec never see the requests answered here, it
/// tells the ones that count them: the first head ends `RequestHeadDeadline`,
/// each read counts as use for `IdleConnectionTimer`, and a call keeps the
/// connection in use until its answer is written.
final class PlainLane: ChannelDuplexHandler, RemovableChannelHandler, LaneCallAnswering {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    typealias Answer = (PlainRequestHead) -> Gateway.ImmediateAnswer?
    /// What starts a call for a head at the reader index of the bytes, on a channel, or nil to hand it on.
    typealias Call = (PlainRequestHead, ByteBuffer, any Channel) -> (@Sendable (LaneReply) -> Void)?

    private let answer: Answer
    private let call: Call?
    private let dates: HTTPDate
    private let serverName: String
    private var idle: IdleConnectionTimer?
    private var headDeadline: RequestHeadDeadline?
    /// Told at once when the client closes its sending side during a call: a call still waiting for
    /// an instance then never runs, as on Hummingbird's path (a client that closes the connection
    /// is seen first as the end of its input).
    private let disconnect: ClientDisconnectHandler?
    /// Told of the first request taken here, which it does not see: a draining connection with
    /// requests behind it gets the short grace of one between requests.
    private var quiesce: QuiesceGate?
    /// Still reading requests here; once false, for good (the lane is leaving the pipeline).
    private var reading = true
    /// Answers written since the last flush.
    private var unflushed = false
    /// A read held while the connection takes no more, or while bytes wait behind a call (passed on
    /// once neither holds).
    private var readDeferred = false
    /// A request said `Connection: close` and its answer is written: nothing more is read.
    private var closing = false
    /// A call started here whose answer's end has not been written yet.
    private var calling = false
    /// The answer of the call in progress closes the connection: its request said `Connection:
    /// close`, or the listener drains.
    private var closesAfterAnswer = false
    /// Bytes read during the call, taken in turn once it is answered.
    private var pending: ByteBuffer?
    /// A request whose head is whole and whose body is still arriving, from its head's first byte,
    /// and what hands it on to the decoder once it has waited `bodyWait`.
    private var awaiting: (bytes: ByteBuffer, handOn: Scheduled<Void>)?
    /// When the body waited for is handed on if still not whole: `bodyWait` after its head came,
    /// however often bytes of it arrive (a byte now and then would otherwise hold the connection).
    private var bodyDue: NIODeadline?
    /// The streamed answer being relayed: held back (`pause`) while the client's connection takes
    /// no more; `chunked` when the instance gave no length, so that the lane frames its chunks.
    private var stream: (flow: AnswerFlow, paused: Bool, chunked: Bool)?
    /// The client closed its sending side while answers were owed: passed on once they are written.
    private var inputClosedHeld = false
    /// When the last answer written here has left for the socket.
    private var lastWritten: EventLoopFuture<Void>?
    /// In `channelRead`: what is handed to the decoder then reaches Hummingbird at that read's end.
    private var inRead = false
    /// Removed from its pipeline: a late answer goes nowhere.
    private var removed = false

    /// How long the rest of a body is waited for here: enough for a client's second write (and a
    /// delayed acknowledgement before it), short of a body sent slowly.
    static let bodyWait: TimeAmount = .milliseconds(100)

    init(
        answer: @escaping Answer, call: Call? = nil, dates: HTTPDate, serverName: String, idle: IdleConnectionTimer?,
        headDeadline: RequestHeadDeadline?, disconnect: ClientDisconnectHandler? = nil, quiesce: QuiesceGate? = nil
    ) {
        self.answer = answer
        self.call = call
        self.dates = dates
        self.serverName = serverName
        self.idle = idle
        self.headDeadline = headDeadline
        self.disconnect = disconnect
        self.quiesce = quiesce
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After `Connection: close` nothing is read, here or by the decoder, even while that last answer
        // waits for a client slow to take it.
        if closing { return }
        guard reading else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        idle?.touch()
        if calling {
            if pending == nil { pending = bytes } else { pending!.writeBuffer(&bytes) }
            return
        }
        if var waited = stopAwaiting() {
            waited.writeBuffer(&bytes)
            bytes = waited
        }
        inRead = true
        take(bytes, context: context)
        inRead = false
    }

    /// Requests in turn from `bytes`: answered, called, or (from the first the lane does not take)
    /// handed to the decoder.
    private func take(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        var bytes = bytes
        while bytes.readableBytes > 0 {
            // A head with its body, both whole in the bytes at hand (or the rest of the body waited for).
            guard let head = bytes.withUnsafeReadableBytes(PlainRequestHead.read) else { return handOver(bytes, context: context) }
            guard head.length + head.bodyLength <= bytes.readableBytes else { return awaitBody(bytes, context: context) }
            bodyDue = nil  // this head's body is whole: the next one's wait counts from its own head
            if head.method == .get, head.bodyLength == 0, let answer = answer(head) {
                bytes.moveReaderIndex(forwardBy: head.length)
                firstHeadRead(context)
                let written = wrap(answer.head, body: answer.body, closes: head.closes, allocator: context.channel.allocator)
                if head.closes { return writeLast(written, context: context) }
                write(written, context: context)
                unflushed = true  // at the end of this read: answers to pipelined requests leave together
                continue
            }
            guard let start = call?(head, bytes, context.channel) else { return handOver(bytes, context: context) }
            bytes.moveReaderIndex(forwardBy: head.length + head.bodyLength)
            firstHeadRead(context)
            idle?.callBegan()
            calling = true
            closesAfterAnswer = head.closes
            if bytes.readableBytes > 0 { pending = bytes }
            // Answers written before this call's leave now, not after it.
            flush(context)
            start(LaneReply(lane: self, context: context, disconnect: disconnect))
            return
        }
    }

    /// Holds `bytes`, a head whose body is still arriving, until the next read, or hands them on
    /// after `bodyWait`. (Only a body can be missing: `PlainRequestHead` read a whole head.)
    private func awaitBody(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let lane = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let due = bodyDue ?? context.eventLoop.now + Self.bodyWait
        bodyDue = due
        let handOn = context.eventLoop.scheduleTask(deadline: due) {
            let (handler, context) = lane.value
            guard !handler.removed, let waited = handler.stopAwaiting() else { return }
            handler.handOver(waited, context: context)
        }
        awaiting = (bytes, handOn)
    }

    /// The bytes waited for, if any, no longer waited for.
    private func stopAwaiting() -> ByteBuffer? {
        guard let (bytes, handOn) = awaiting else { return nil }
        awaiting = nil
        handOn.cancel()
        return bytes
    }

    /// The first head read here ends the wait for one, and tells the quiesce gate.
    private func firstHeadRead(_ context: ChannelHandlerContext) {
        if let quiesce {
            self.quiesce = nil
            quiesce.requestTakenBeforeCodec()
        }
        guard let deadline = headDeadline else { return }
        headDeadline = nil
        context.pipeline.syncOperations.removeHandler(deadline, promise: nil)
    }

    /// The last answer on this connection: nothing after it is read (RFC 9112, 9.6), and the
    /// connection closes once it has left.
    private func writeLast(_ written: ByteBuffer, context: ChannelHandlerContext) {
        closing = true
        reading = false
        unflushed = false
        pending = nil
        context.writeThenClose(wrapOutboundOut(written), promise: nil)
        context.flush()
    }

    /// From `bytes` on, the connection is the decoder's.
    private func handOver(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(bytes))
        // Outside a read (after a call's answer), what the decoder made of them reaches Hummingbird now.
        if !inRead { context.fireChannelReadComplete() }
        leave(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context)
        // While the lane reads, the handlers after it were handed nothing in this read (`handOver`
        // ends the lane's reading), so they have no read to complete: not passed on through them
        // (the codec, Hummingbird's handlers), as it was after every request.
        guard !reading else { return }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let waited = stopAwaiting() {
            // A body still arriving at the end of input or a drain: its bytes reach the decoder
            // before the event, as they would have without the lane, and the connection is the decoder's.
            context.fireChannelRead(wrapInboundOut(waited))
            context.fireChannelReadComplete()
            flush(context)
            context.fireUserInboundEventTriggered(event)
            return leave(context)
        }
        if event is ChannelShouldQuiesceEvent, calling {
            // Closed after the call's answer (which says so, if its head is not written yet); the
            // requests held behind it are not taken.
            closesAfterAnswer = true
            return
        }
        if case ChannelEvent.inputClosed = event, reading, calling || pending != nil {
            inputClosedHeld = true
            disconnect?.clientLeft()
            return
        }
        flush(context)
        context.fireUserInboundEventTriggered(event)
        if event is ChannelShouldQuiesceEvent, reading { leave(context) }
    }

    /// Hands the connection to the decoder for good: the lane leaves the pipeline, so that a
    /// connection of requests it does not take pays nothing for it after its first. A read it
    /// held, and the end of input it held, go on.
    private func leave(_ context: ChannelHandlerContext) {
        reading = false
        flush(context)
        guard context.channel.isActive else { return }
        if inputClosedHeld {
            inputClosedHeld = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if readDeferred {
            readDeferred = false
            context.read()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        // As `GatewayLane`: a client that pipelines requests and reads no answers must not make gustd
        // pile them up, nor one that sends on while its call runs.
        if closing { return }
        if reading, !context.channel.isWritable || pending != nil {
            readDeferred = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let held = stream, held.paused {
            stream?.paused = false
            held.flow.resume()
        }
        context.fireChannelWritabilityChanged()
        readIfDeferred(context)
    }

    private func readIfDeferred(_ context: ChannelHandlerContext) {
        guard readDeferred, context.channel.isWritable, pending == nil, !closing, !removed else { return }
        readDeferred = false
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        pending = nil
        _ = stopAwaiting()
        // The client has gone: the rest of a held-back answer is read and dropped, and its call ends.
        if let stream, stream.paused { stream.flow.resume() }
        stream = nil
    }

    private func flush(_ context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    // MARK: A call's answer (`LaneReply`), on the channel's event loop

    func answered(_ head: HTTPResponse, body: ByteBuffer, context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        let written = wrap(head, body: body, closes: closesAfterAnswer, allocator: context.channel.allocator)
        if closesAfterAnswer { return ended(lastWrite: written, context: context) }
        write(written, context: context)
        callEnded(context: context)
    }

    func streamHead(_ head: HTTPResponse, flow: AnswerFlow, context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        let chunked = !head.headerFields.contains(.contentLength)
        stream = (flow, false, chunked)
        var buffer = context.channel.allocator.buffer(capacity: 256)
        writeHead(head, closes: closesAfterAnswer, chunked: chunked, to: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func streamChunk(_ chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard calling, !removed, let current = stream, chunk.readableBytes > 0 else { return }
        if current.chunked {
            // A chunk of its size (in hex), then its bytes; one of size 0 would end the body.
            var framed = context.channel.allocator.buffer(capacity: chunk.readableBytes + 16)
            framed.writeString(String(chunk.readableBytes, radix: 16))
            framed.writeStaticString("\r\n")
            framed.writeImmutableBuffer(chunk)
            framed.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(framed), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        }
        if !context.channel.isWritable, !current.paused {
            stream?.paused = true
            current.flow.pause()  // until `channelWritabilityChanged` says the client has taken enough
        }
    }

    func streamEnded(context: ChannelHandlerContext) {
        guard calling, !removed, let current = stream else { return }
        stream = nil
        var end = context.channel.allocator.buffer(capacity: 5)
        if current.chunked { end.writeStaticString("0\r\n\r\n") }
        if closesAfterAnswer { return ended(lastWrite: end, context: context) }
        write(end, context: context)
        callEnded(context: context)
    }

    func abort(context: ChannelHandlerContext) {
        guard calling, !removed else { return }
        stream = nil
        calling = false
        pending = nil
        idle?.callEnded()
        context.close(promise: nil)
    }

    /// An answer, or a call's answer's end, written; while the end of input is held, its promise
    /// says when the last of them has left.
    private func write(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard inputClosedHeld else { return context.write(wrapOutboundOut(buffer), promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        lastWritten = written.futureResult
        context.write(wrapOutboundOut(buffer), promise: written)
    }

    /// The answer's end, after which the connection closes.
    private func ended(lastWrite: ByteBuffer, context: ChannelHandlerContext) {
        calling = false
        idle?.callEnded()
        writeLast(lastWrite, context: context)
    }

    /// The call's answer is written: what the client sent meanwhile is taken in turn.
    private func callEnded(context: ChannelHandlerContext) {
        calling = false
        idle?.callEnded()
        unflushed = true
        if let rest = pending {
            pending = nil
            take(rest, context: context)
        }
        // The client's input has ended: a body still arriving never will, so its bytes go to the
        // decoder now, ahead of the end of input (`leave` passes it on).
        if inputClosedHeld, let waited = stopAwaiting() { return handOver(waited, context: context) }
        flush(context)
        guard !calling, reading, !removed, !closing else { return }
        readIfDeferred(context)
        guard inputClosedHeld else { return }
        inputClosedHeld = false
        // After the answers' bytes have left: the connection may close on it, and a close drops what
        // the socket has not taken yet.
        guard let written = lastWritten else { return context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        lastWritten = nil
        let lane = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        written.whenComplete { _ in
            guard !lane.value.handler.removed else { return }
            lane.value.context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    // MARK: Bytes of an answer

    /// The answer as bytes: what NIO's encoder makes of the head `GatewayLane` writes.
    private func wrap(_ head: HTTPResponse, body: ByteBuffer, closes: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 + body.readableBytes)
        writeHead(head, closes: closes, chunked: false, to: &buffer)
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    private func writeHead(_ head: HTTPResponse, closes: Bool, chunked: Bool, to buffer: inout ByteBuffer) {
        let status = head.status
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        // NIO's form of the status, as the codec gives it to the encoder (it names a known code's reason).
        buffer.writeString(HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase).reasonPhrase)
        buffer.writeStaticString("\r\n")
        // A 1xx, 204 or 304 has no body, and, as NIO's encoder writes one, no length (RFC 9110, 8.6).
        let bodiless = status.code < 200 || status.code == 204 || status.code == 304
        for field in head.headerFields where field.name != .date && field.name != .server && field.name != .connection {
            if bodiless, field.name == .contentLength || field.name == .transferEncoding { continue }
            Self.write(field.name.rawName, field.value, to: &buffer)
        }
        Self.write("Date", dates.now, to: &buffer)
        Self.write("Server", serverName, to: &buffer)
        if closes { buffer.writeStaticString("Connection: close\r\n") }
        // As NIO's encoder frames an HTTP/1.1 answer without a length.
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("\r\n")
    }

    private static func write(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }
}
