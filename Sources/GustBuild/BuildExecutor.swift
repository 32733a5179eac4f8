import Foundation

/// The threads a build's async work runs on: reading its output line by line,
/// the heartbeat, the steps' bookkeeping. In gustd, tasks otherwise run on the
/// event loops that serve calls, and a build that floods its output (1 GB from
/// `setup.py`) kept one of them busy for minutes, stalling other apps' calls;
/// on these threads it competes only for CPU. Two threads, living as long as
/// the process; jobs run in the order they came.
final class BuildExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BuildExecutor()

    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []

    private init() {
        for index in 0..<2 {
            let thread = Thread { [unowned self] in serve() }
            thread.name = "gust-build-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
