import HTTPTypes
import NIOCore
import NIOHTTP1

/// Answers an app's `/_/health` from the connection's bytes, before any HTTP
/// handler: a load balancer's or an uptime checker's request costs gustd no
/// decoding into NIO's head, no conversion to HTTPTypes and back, no encoding,
/// and one write of one buffer (docs/benchmarks.md, "Health checks answered
/// from the bytes"). What it answers, and how, is what `GatewayLane` answers at
/// once (`Gateway.answerAtOnce`), byte for byte but for `Date` and a new
/// `X-Request-Id`.
///
/// It reads only plain heads (`PlainRequestHead`), whole in the bytes at hand.
/// The first request it does not answer, and everything after it, goes on to
/// NIO's decoder, and the lane leaves the pipeline: the decoder then owns
/// where each request ends, for the rest of the connection. So does a connection
/// whose listener drains (`ChannelShouldQuiesceEvent`), so that `QuiesceGate`
/// answers its next request with `Connection: close` as on every connection.
///
/// As the handlers after the codec never see the requests answered here, it
/// tells the ones that count them: the first head ends `RequestHeadDeadline`,
/// and each read counts as use for `IdleConnectionTimer`.
final class HealthLane: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    typealias Answer = (PlainRequestHead) -> Gateway.ImmediateAnswer?

    private let answer: Answer
    private let dates: HTTPDate
    private let serverName: String
    private var idle: IdleConnectionTimer?
    private var headDeadline: RequestHeadDeadline?
    /// Still reading requests here; once false, for good (the lane is leaving the pipeline).
    private var reading = true
    /// Answers written since the last flush.
    private var unflushed = false
    /// A read held while the connection takes no more (passed on once it does).
    private var readDeferred = false
    /// A request said `Connection: close`: its answer was the last.
    private var closing = false

    init(answer: @escaping Answer, dates: HTTPDate, serverName: String, idle: IdleConnectionTimer?, headDeadline: RequestHeadDeadline?) {
        self.answer = answer
        self.dates = dates
        self.serverName = serverName
        self.idle = idle
        self.headDeadline = headDeadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After `Connection: close` nothing is read, here or by the decoder, even while that last answer
        // waits for a client slow to take it.
        if closing { return }
        guard reading else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        while bytes.readableBytes > 0 {
            guard let head = bytes.withUnsafeReadableBytes(PlainRequestHead.read), let answer = answer(head) else {
                // From here on the decoder's, starting with this request.
                context.fireChannelRead(wrapInboundOut(bytes))
                return leave(context)
            }
            bytes.moveReaderIndex(forwardBy: head.length)
            if let deadline = headDeadline {
                headDeadline = nil
                context.pipeline.syncOperations.removeHandler(deadline, promise: nil)
            }
            idle?.touch()
            let written = wrap(answer, closes: head.closes, allocator: context.channel.allocator)
            if head.closes {
                // Nothing after it is read (RFC 9112, 9.6); the connection closes once the answer has left.
                closing = true
                reading = false
                unflushed = false
                context.writeThenClose(wrapOutboundOut(written), promise: nil)
                context.flush()
                return
            }
            context.write(wrapOutboundOut(written), promise: nil)
            unflushed = true  // at the end of this read: answers to pipelined requests leave together
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        flush(context)
        context.fireUserInboundEventTriggered(event)
        if event is ChannelShouldQuiesceEvent, reading { leave(context) }
    }

    /// Hands the connection to the decoder for good: the lane leaves the pipeline, so that a
    /// connection of calls pays nothing for it after its first request. A read it held goes on.
    private func leave(_ context: ChannelHandlerContext) {
        reading = false
        flush(context)
        guard context.channel.isActive else { return }
        if readDeferred {
            readDeferred = false
            context.read()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        // As `GatewayLane`: a client that pipelines health checks and reads no answers must not
        // make gustd pile them up.
        if closing { return }
        if reading, !context.channel.isWritable {
            readDeferred = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.fireChannelWritabilityChanged()
        if readDeferred, context.channel.isWritable, !closing {
            readDeferred = false
            context.read()
        }
    }

    private func flush(_ context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    /// The answer as bytes: what NIO's encoder makes of the head `GatewayLane` writes.
    private func wrap(_ answer: Gateway.ImmediateAnswer, closes: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        let status = answer.head.status
        var buffer = allocator.buffer(capacity: 256 + answer.body.readableBytes)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        // NIO's form of the status, as the codec gives it to the encoder (it names a known code's reason).
        buffer.writeString(HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase).reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in answer.head.headerFields where field.name != .date && field.name != .server && field.name != .connection {
            Self.write(field.name.rawName, field.value, to: &buffer)
        }
        Self.write("Date", dates.now, to: &buffer)
        Self.write("Server", serverName, to: &buffer)
        if closes { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(answer.body)
        return buffer
    }

    private static func write(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }
}
