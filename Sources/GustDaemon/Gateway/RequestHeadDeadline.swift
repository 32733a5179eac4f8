import NIOCore

/// Closes a connection whose first request head has not fully arrived within
/// `timeout` of connecting. Bytes short of a whole head reach no handler that
/// counts as activity, so without this a client trickling a head byte by byte
/// (a slowloris) would hold one of gustd's descriptors for ever. Later heads
/// on a kept-alive connection are bounded by the idle timeout, which
/// Hummingbird counts from the last whole request part.
///
/// It sits after the HTTP codec, where the first thing to arrive is the
/// head: any read ends the deadline, and the handler then leaves the pipeline.
final class RequestHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var headArrived = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !headArrived {
            headArrived = true
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
        // Its work is done: every later read of a kept-alive connection skips it (one hop fewer per part).
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil, !headArrived else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }
}
