import Foundation
import GustCore
import Synchronization

/// The unpacks of releases under way in one gustd: a release's instances
/// start together (a deploy's four, a rollback's), and each finds its
/// directory missing; one of them unpacks, the others wait for it and get
/// the same directory, or the same error. A failed unpack is forgotten at
/// once, so the next start tries again.
///
/// One per gustd (the supervisor's), shared by every launcher: two pools can
/// start the same release (a rollback while its old pool still drains). The
/// unpack runs in the task of the first start to ask (no task of its own),
/// so nothing here outlives the launches waiting for it.
final class ReleaseUnpacks: Sendable {
    struct Key: Hashable, Sendable {
        var app: AppName
        var version: Int
    }

    private let flights = Mutex<[Key: Flight]>([:])

    init() {}

    /// The directory `unpack` makes, unpacked once for all who ask while it runs.
    /// - Parameter unpack: unpacks the release (checking first whether an earlier unpack left it there).
    func directory(of key: Key, unpack: @Sendable () async throws -> URL) async throws -> URL {
        let (flight, unpacks) = flights.withLock { flights in
            if let flight = flights[key] { return (flight, false) }
            let flight = Flight()
            flights[key] = flight
            return (flight, true)
        }
        guard unpacks else { return try await flight.result().get() }
        let result: Result<URL, any Error>
        do { result = .success(try await unpack()) } catch { result = .failure(error) }
        flights.withLock { $0[key] = nil }  // done: the next start looks at the disk (or, after a failure, tries again)
        flight.finish(result)
        return try result.get()
    }

    /// How many starts wait for the unpack of `key` now (for tests).
    func waiting(for key: Key) -> Int {
        flights.withLock { $0[key] }?.waiting ?? 0
    }

    /// One unpack under way: the starts waiting for it, then its result. A waiter whose task is
    /// cancelled (its launch given up: a deploy cancelled, gustd stopping) leaves at once with
    /// `CancellationError`; the unpack goes on for the others.
    private final class Flight: Sendable {
        private typealias Waiter = CheckedContinuation<Result<URL, any Error>, Never>

        private enum State {
            case running(next: Int, waiting: [Int: Waiter])
            case finished(Result<URL, any Error>)
        }

        private let state = Mutex(State.running(next: 0, waiting: [:]))

        var waiting: Int {
            state.withLock { state in
                if case .running(_, let waiting) = state { waiting.count } else { 0 }
            }
        }

        func result() async -> Result<URL, any Error> {
            let id = state.withLock { state -> Int in
                guard case .running(let next, let waiting) = state else { return -1 }
                state = .running(next: next + 1, waiting: waiting)
                return next
            }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Result<URL, any Error>? in
                        switch state {
                        case .running(let next, var waiting):
                            // Cancelled before it got here: the handler found nothing to resume.
                            if Task.isCancelled { return .failure(CancellationError()) }
                            waiting[id] = continuation
                            state = .running(next: next, waiting: waiting)
                            return nil
                        case .finished(let result):
                            return result
                        }
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                let left = state.withLock { state -> Waiter? in
                    guard case .running(let next, var waiting) = state, let waiter = waiting.removeValue(forKey: id) else { return nil }
                    state = .running(next: next, waiting: waiting)
                    return waiter
                }
                left?.resume(returning: .failure(CancellationError()))
            }
        }

        func finish(_ result: Result<URL, any Error>) {
            let waiting = state.withLock { state in
                defer { state = .finished(result) }
                if case .running(_, let waiting) = state { return Array(waiting.values) }
                return []
            }
            for continuation in waiting { continuation.resume(returning: result) }
        }
    }
}
