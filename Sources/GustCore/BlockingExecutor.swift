import Foundation

/// A serial executor on a thread of its own, for actors whose work blocks
/// (SQLite statements, fsync): gustd runs Swift Concurrency on SwiftNIO's event
/// loops, and an actor on the default executor would run its SQLite there,
/// holding up every connection of that loop. Jobs run in the order they came.
public final class BlockingExecutor: SerialExecutor, @unchecked Sendable {
    /// The record stores' executor: one thread for every app's record writes.
    public static let records = BlockingExecutor(name: "gust-records")

    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    public let name: String

    /// Starts its thread, which lives as long as the process.
    public init(name: String) {
        self.name = name
        let thread = Thread { self.serve() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Whether the caller runs on this executor's thread.
    public var isCurrent: Bool { Thread.current.name == name }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs = []
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }
}
