import GustCore
import NIOCore
import NIOPosix
import Synchronization

/// The threads that run apps' record queries, kept apart from NIO's shared pool
/// (gustd's store, logs and manifests use that one) and shared out by `ReadTurns`:
/// one query per app at a time, apps taking turns. With `RecordStore.queryLimit`
/// on each query, an app's slow queries cost other apps a wait of one query's
/// time limit at most per app ahead of them, and never hold up gustd itself.
final class RecordReads: Sendable {
    /// How many queries of one app may wait for its running one.
    static let waitingLimit = 16

    let waitingLimit: Int
    private let pool: NIOThreadPool
    private let turns: Mutex<(turns: ReadTurns<AppName, CheckedContinuation<Void, any Error>>, nextID: Int)>

    init(threads: Int = max(2, System.coreCount), waitingLimit: Int = RecordReads.waitingLimit) {
        self.waitingLimit = waitingLimit
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        turns = Mutex((ReadTurns(threads: threads, waitingLimit: waitingLimit), 0))
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    /// Runs `body` on a thread of the pool when it is `app`'s turn: a 429 error if
    /// too many of the app's queries wait already, `CancellationError` if the task
    /// is cancelled while it waits.
    func run<T: Sendable>(_ app: AppName, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await turn(app)
        defer { finish(app) }
        return try await pool.runIfActive(body)
    }

    private func turn(_ app: AppName) async throws {
        let id = turns.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                let arrival = turns.withLock { state -> ReadTurns<AppName, CheckedContinuation<Void, any Error>>.Arrival in
                    // Checked under the lock: a cancellation that came before finds nothing to withdraw.
                    if Task.isCancelled { return .refuse }
                    return state.turns.arrive(app, id: id, waiter)
                }
                switch arrival {
                case .run: waiter.resume()
                case .wait: break
                case .refuse:
                    if Task.isCancelled { return waiter.resume(throwing: CancellationError()) }
                    waiter.resume(throwing: tooMany(app))
                }
            }
        } onCancel: {
            turns.withLock { $0.turns.withdraw(app, id: id) }?.resume(throwing: CancellationError())
        }
    }

    /// The apps with a query running, and how many of an app's wait (for tests and the console).
    var running: Set<AppName> { turns.withLock { $0.turns.running } }
    func waiting(of app: AppName) -> Int { turns.withLock { $0.turns.waitingCount(of: app) } }

    private func finish(_ app: AppName) {
        turns.withLock { $0.turns.finish(app) }?.resume()
    }

    private func tooMany(_ app: AppName) -> GustError {
        GustError(
            "\(app) has \(waitingLimit) record queries waiting for the one it is running; this one was not queued. "
                + "Wait for answers before asking more, or make queries quicker (see docs/records.md).",
            code: 429
        )
    }
}
