import NIOCore

/// Notices when a client closes its side of the connection, or the connection
/// goes, so that a call still waiting for its instance is not run for nobody.
/// Hummingbird lets a peer half-close, so the channel's close future alone
/// would not tell: the `inputClosed` event does. One per connection, after
/// the HTTP codec; a call that must wait for an instance registers with `watch`.
final class ClientDisconnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    /// One promise per call still going on this connection, fulfilled when the
    /// client leaves or the call ends, whichever is first (see `watch`).
    private var calls: [UInt64: EventLoopPromise<Void>] = [:]
    private var nextCall: UInt64 = 0
    private var left = false
    /// The lane's call waiting for an instance on this connection, if one is, and what lets it go
    /// (`laneWaits`). One slot: the lane runs one call at a time per connection.
    private var laneWait: (id: UInt64, leave: @Sendable () -> Void)?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clientLeft()  // never leave a promise unfulfilled
    }

    /// The client has gone, or closed its sending side: every call waiting for an instance is let go.
    /// Also called by `PlainLane`, which holds the end of input back from the handlers after the codec
    /// while a call it started is unanswered.
    func clientLeft() {
        left = true
        let waiting = calls.values
        calls = [:]
        waiting.forEach { $0.succeed() }
        if let wait = laneWait {
            laneWait = nil
            wait.leave()
        }
    }

    /// For the lane's call about to wait for an instance (on the channel's loop): `leave` runs,
    /// once, if the client goes before `laneWaited` is told the same id. Nil, and `leave` never
    /// runs, if the client has gone already: the call must not wait. What `watchOnLoop` does
    /// with a promise, a callback on it and a closure to forget it, for every call that waits.
    func laneWaits(leave: @escaping @Sendable () -> Void) -> UInt64? {
        guard !left else { return nil }
        defer { nextCall += 1 }
        laneWait = (nextCall, leave)
        return nextCall
    }

    /// The lane's waiting call `id` has its instance (or its answer): its client's going no longer concerns it.
    func laneWaited(_ id: UInt64) {
        if laneWait?.id == id { laneWait = nil }
    }

    /// For one call: a future that completes when the client of `channel`
    /// leaves, and `done` to call when the call ends (it then completes too,
    /// and the handler forgets it, so a long keep-alive connection holds
    /// nothing of the calls it served). Nil if the pipeline has no such handler.
    static func watch(_ channel: any Channel) async -> (gone: EventLoopFuture<Void>, done: @Sendable () -> Void)? {
        let loop = channel.eventLoop
        let registered = loop.submit { watchOnLoop(channel) }
        return (try? await registered.get()) ?? nil
    }

    /// `watch` on the channel's own event loop.
    private static func watchOnLoop(_ channel: any Channel) -> (gone: EventLoopFuture<Void>, done: @Sendable () -> Void)? {
        let loop = channel.eventLoop
        loop.preconditionInEventLoop()
        guard let handler = try? channel.pipeline.syncOperations.handler(type: ClientDisconnectHandler.self) else { return nil }
        let promise = loop.makePromise(of: Void.self)
        if handler.left {
            promise.succeed()
            return (promise.futureResult, {})
        }
        let id = handler.nextCall
        handler.nextCall += 1
        handler.calls[id] = promise
        let bound = NIOLoopBound(handler, eventLoop: loop)
        return (promise.futureResult, {
            if loop.inEventLoop {
                bound.value.calls.removeValue(forKey: id)?.succeed()
            } else {
                loop.execute { bound.value.calls.removeValue(forKey: id)?.succeed() }
            }
        })
    }
}
