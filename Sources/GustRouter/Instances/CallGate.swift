import NIOCore
import NIOPosix
import Synchronization

/// Why a call left an instance's queue without running.
enum CallGateError: Error, Equatable, CustomStringConvertible {
    /// Its time limit, counted from its arrival, passed while it waited.
    case deadlinePassed
    /// Its client closed the connection while it waited.
    case clientGone

    var description: String {
        switch self {
        case .deadlinePassed: "its time limit passed while it waited for the instance"
        case .clientGone: "its client closed the connection while it waited"
        }
    }
}

/// Lets one call at a time into an instance (the runtimes' contract today),
/// first come first served. A waiting call leaves the queue when its deadline
/// passes, its client goes or its task is cancelled: nothing runs for a caller
/// that has given up, and no waiter is left behind. The pool of issue 11 can
/// keep one per instance.
final class CallGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var busy = false
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private enum Arrival {
        case enter, wait, late, cancelled
    }

    private let state = Mutex(State())

    /// Returns holding the gate, or throws without it: `CallGateError` when
    /// `deadline` passes or `clientGone` completes first, `CancellationError`
    /// when the task is cancelled. `clientGone` is asked for only when the call
    /// has to wait, so a free instance costs nothing more.
    func enter(
        deadline: ContinuousClock.Instant? = nil,
        clientGone: (@Sendable () async -> EventLoopFuture<Void>?)? = nil
    ) async throws {
        let id: UInt64? = state.withLock { state in
            if !state.busy {
                state.busy = true
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        let gone = await clientGone?()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let arrival = state.withLock { state -> Arrival in
                    if !state.busy {
                        state.busy = true
                        return .enter
                    }
                    if Task.isCancelled { return .cancelled }
                    if let deadline, deadline <= .now { return .late }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch arrival {
                case .enter: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .late: continuation.resume(throwing: CallGateError.deadlinePassed)
                case .wait: watch(id, deadline: deadline, gone: gone)
                }
            }
        } onCancel: {
            leaveQueue(id, because: CancellationError())
        }
    }

    /// Hands the gate to the first waiter, or opens it.
    func leave() {
        let (next, idle) = state.withLock { state -> (Waiter?, [CheckedContinuation<Void, Never>]) in
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), []) }  // stays busy: handed straight over
            state.busy = false
            defer { state.idleWaiters = [] }
            return (nil, state.idleWaiters)
        }
        next?.timer?.cancel()
        next?.continuation.resume()
        idle.forEach { $0.resume() }
    }

    /// Returns once no call is running or waiting.
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                if !state.busy && state.waiters.isEmpty { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Takes a waiter out of the queue when its deadline passes or its client goes.
    private func watch(_ id: UInt64, deadline: ContinuousClock.Instant?, gone: EventLoopFuture<Void>?) {
        if let deadline {
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(deadline - .now)) {
                self.leaveQueue(id, because: CallGateError.deadlinePassed)
            }
            let kept = state.withLock { state -> Bool in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
                state.waiters[index].timer = timer
                return true
            }
            if !kept { timer.cancel() }  // it got the gate, or left, meanwhile
        }
        gone?.whenComplete { _ in self.leaveQueue(id, because: CallGateError.clientGone) }
    }

    /// Resumes a waiter that is still queued with `error`; one that has the gate by now keeps it.
    private func leaveQueue(_ id: UInt64, because error: any Error) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(throwing: error)
    }
}
