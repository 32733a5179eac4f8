import NIOCore

/// Notices when a client closes its side of the connection, or the connection
/// goes, so that a call still waiting for its instance is not run for nobody.
/// Hummingbird lets a peer half-close, so the channel's close future alone
/// would not tell: the `inputClosed` event does. One per connection, after
/// the HTTP codec; the gateway finds it with `gone(of:)` when a call must wait.
final class ClientDisconnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private var promise: EventLoopPromise<Void>?
    private var future: EventLoopFuture<Void>?

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.promise = promise
        future = promise.futureResult
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clientLeft()  // never leave the promise unfulfilled
    }

    private func clientLeft() {
        let pending = promise
        promise = nil
        pending?.succeed()
    }

    /// Completes when the client of `channel` has gone; nil if its pipeline has no such handler.
    static func gone(of channel: any Channel) async -> EventLoopFuture<Void>? {
        let lookup = channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ClientDisconnectHandler.self).future
        }
        return (try? await lookup.get()) ?? nil
    }
}
