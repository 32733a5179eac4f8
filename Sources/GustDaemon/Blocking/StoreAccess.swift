import GustCore
import NIOCore
import NIOPosix
import Synchronization

/// The store as the request path reaches it: every use runs on NIO's thread
/// pool, never on an event loop, so a slow disk or a long transaction elsewhere
/// holds up no other app's calls. Uses are serialised (one at a time on its own
/// connection), so a transaction is never interleaved with another caller's statements.
final class StoreAccess: Sendable {
    /// Only touched inside `lock`, on a pool thread.
    private nonisolated(unsafe) let store: Store
    private let lock = Mutex(())
    private let pool: NIOThreadPool

    init(home: GustHome, pool: NIOThreadPool = .singleton) throws {
        store = try Store(home: home)
        self.pool = pool
    }

    /// Runs `body` with the store on a pool thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
        try await pool.runIfActive(locked(body))
    }

    /// The same for a caller on an event loop, which must not wait: the future completes on `loop`.
    func future<T: Sendable>(on loop: any EventLoop, _ body: @escaping @Sendable (Store) throws -> T) -> EventLoopFuture<T> {
        pool.runIfActive(eventLoop: loop, locked(body))
    }

    /// `body` as a pool thread runs it: alone with the store.
    private func locked<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) -> @Sendable () throws -> T {
        { [self] in try lock.withLock { _ in try body(store) } }
    }
}
