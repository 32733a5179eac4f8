import Foundation
import Synchronization

/// One thread that lives as long as gustd, for spawns whose child must die
/// with gustd: PR_SET_PDEATHSIG fires when the *thread* that forked the child
/// ends, and the threads gustd's tasks run on may end when idle (which would
/// kill an instance that is serving). A child forked here gets its signal only
/// when gustd's process is gone, SIGKILLed included.
///
/// Callers block until their spawn has run (a fork and an exec's hand-off:
/// about a millisecond), as `InstanceProcess` already blocks while it spawns.
final class SpawnThread: Sendable {
    static let shared = SpawnThread()

    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
        var started = false
    }

    private let queue = Mutex(Queue())
    private let waiting = DispatchSemaphore(value: 0)

    private init() {}

    /// Runs `body` on the thread and returns what it returned (or throws what it threw).
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let start = queue.withLock { queue in
            queue.jobs.append {
                result.withLock { $0 = Result { try body() } }
                done.signal()
            }
            defer { queue.started = true }
            return !queue.started
        }
        if start {
            let thread = Thread { [self] in loop() }
            thread.name = "gustd spawns"
            thread.start()
        }
        waiting.signal()
        done.wait()
        return try result.withLock { $0! }.get()
    }

    private func loop() {
        while true {
            waiting.wait()
            let job = queue.withLock { $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }
            job?()
        }
    }
}
