import GustCore
import Synchronization

/// One build of an app at a time, in the order they asked. The hook's deploy
/// lock serialises pushes, but a push whose hook went away leaves gustd
/// stopping its build (killing it, giving its files back, removing them) for a
/// moment after the lock is free, and the next push of the app must not share
/// its cache with it meanwhile.
final class BuildTurns: Sendable {
    /// Apps with a build under way, and the builds waiting for it, first first.
    private let waiting = Mutex<[AppName: [CheckedContinuation<Void, Never>]]>([:])

    /// Returns once it is this caller's turn; `give(_:)` must follow.
    func take(_ app: AppName) async {
        await withCheckedContinuation { continuation in
            let now = waiting.withLock { waiting in
                guard waiting[app] != nil else {
                    waiting[app] = []
                    return true
                }
                waiting[app]?.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// How many builds of `app` wait for their turn.
    func waitingCount(_ app: AppName) -> Int {
        waiting.withLock { $0[app]?.count ?? 0 }
    }

    /// Ends this caller's turn: the next waiting build of the app goes on.
    func give(_ app: AppName) {
        let next = waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard var queue = waiting[app], !queue.isEmpty else {
                waiting[app] = nil
                return nil
            }
            let next = queue.removeFirst()
            waiting[app] = queue
            return next
        }
        next?.resume()
    }
}
