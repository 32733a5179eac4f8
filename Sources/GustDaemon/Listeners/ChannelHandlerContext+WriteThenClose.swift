import NIOCore

extension ChannelHandlerContext {
    /// Writes `data` and closes the channel once it is written: a close before then would drop
    /// what the socket has not taken yet. `promise`, if any, completes with the write.
    func writeThenClose(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        let written = promise ?? eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [channel] _ in channel.close(promise: nil) }
        write(data, promise: written)
    }
}
