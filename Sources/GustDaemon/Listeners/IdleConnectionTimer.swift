import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection left idle for `timeout`: no request part read and no
/// answer in progress. It counts as HummingbirdCore's connection state handler
/// would (whose own timer gustd's listeners leave off), and also what
/// `PlainLane` answers before the HTTP codec, which no handler after the
/// codec sees: `touch` says that the connection was just used. Without it, a
/// load balancer's kept-alive health checks, all answered there, would have
/// their connection closed under them every `timeout`.
///
/// It sits after the HTTP codec, with the other per-connection handlers.
final class IdleConnectionTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var lastActive = NIODeadline.now()
    /// Requests read whose answer has not been written to its end.
    private var inProgress = 0
    /// A request whose end has not been read yet (its body is still coming).
    private var reading = false
    /// Its place in the pipeline, for `callEnded`, from a handler before the codec.
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// The connection was used outside the HTTP codec (a request answered before it).
    func touch() {
        lastActive = .now()
    }

    /// A call started outside the HTTP codec (`PlainLane`): the connection is in use until `callEnded`,
    /// as with a request read whole here.
    func callBegan() {
        lastActive = .now()
        inProgress += 1
    }

    /// Its answer is written: counted as an answer's end written here.
    func callEnded() {
        guard let context else { return }
        answerEnded(context)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(context, at: .now() + timeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        lastActive = .now()
        arm(context, at: lastActive + timeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            lastActive = .now()
            inProgress += 1
            reading = true
        case .body:
            // A body still coming after its answer (a 404 written before the body was read, which
            // the server then reads off and drops) is not use: a byte now and then would keep
            // the connection, and a place in gustd's budget, for good.
            if inProgress > 0 { lastActive = .now() }
        case .end:
            lastActive = .now()
            reading = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { answerEnded(context) }
        context.write(data, promise: promise)
    }

    private func answerEnded(_ context: ChannelHandlerContext) {
        inProgress = max(0, inProgress - 1)
        guard inProgress == 0 else { return }
        lastActive = .now()
        // Counted again from now: an answer that took longer than `timeout` left no timer behind.
        arm(context, at: lastActive + timeout)
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            // A request read whole and not answered yet is not idle: its answer's end arms the timer again.
            if inProgress > 0, !reading { return }
            let due = lastActive + timeout
            if NIODeadline.now() >= due {
                context.close(promise: nil)
            } else {
                arm(context, at: due)
            }
        }
    }
}
