import Foundation
import GustCore
import Synchronization

/// The zygote of one release, for the launcher of its pool: started on the
/// first launch that needs it, restarted after a crash, stopped after
/// `zygote-idle` with no instance running and when the pool stops, bypassed
/// (instances start on their own) when it cannot be forked safely or keeps
/// failing. `ZygoteLifecycle` makes the decisions; this applies them.
///
/// A class under one lock, not an actor: a fork's exit is reported from the
/// thread that waits for it. Nothing here runs on its own: `upkeep` is a
/// child task of the pool's `run()`, so the zygote never outlives its pool
/// (a deploy retires the pool, shutdown drains it).
final class ReleaseZygote: Sendable {
    private let state = Mutex(State())
    private let pokes: AsyncStream<Void>.Continuation
    private let pokeStream: AsyncStream<Void>
    /// Says something about the zygote in gustd's log and the app's.
    private let note: @Sendable (String) -> Void
    private let stopGrace: Duration

    private struct State {
        var lifecycle = ZygoteLifecycle()
        var zygote: Zygote?
        /// Launches waiting for a start in progress (nil: none in progress).
        var waiting: [CheckedContinuation<Result<Zygote?, any Error>?, Never>]?
        var stopped = false
    }

    init(stopGrace: Duration, note: @escaping @Sendable (String) -> Void) {
        self.stopGrace = stopGrace
        self.note = note
        (pokeStream, pokes) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var lifecycle: ZygoteLifecycle { state.withLock { $0.lifecycle } }

    /// The resident zygote, if one runs now (for `gust ps`).
    var current: Zygote? {
        state.withLock { state in state.zygote.flatMap { $0.process.hasExited ? nil : $0 } }
    }

    /// The resident zygote, started (once, whoever else asks meanwhile) if there is none;
    /// nil when this release's instances start on their own. Throws when the zygote
    /// exits while importing the app (an error an instance started on its own would hit too).
    /// - Parameter start: starts a zygote process and waits for its readiness (bounded).
    func resident(start: @Sendable () async throws -> (Zygote, Zygote.Readiness)) async throws -> Zygote? {
        enum Next { case use(Zygote?), wait, start }
        while true {
            let next = state.withLock { state -> Next in
                guard !state.stopped, state.lifecycle.forksInstances else { return .use(nil) }
                if let zygote = state.zygote {
                    if !zygote.process.hasExited { return .use(zygote) }
                    state.zygote = nil
                    state.lifecycle.zygoteExited()
                }
                if state.waiting != nil { return .wait }
                state.waiting = []
                return .start
            }
            switch next {
            case .use(let zygote):
                return zygote
            case .wait:
                // Nil: the start ended between the look above and now; look again.
                let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Zygote?, any Error>?, Never>) in
                    let waits = state.withLock { state in
                        state.waiting?.append(continuation)
                        return state.waiting != nil
                    }
                    if !waits { continuation.resume(returning: nil) }
                }
                if let outcome { return try outcome.get() }
            case .start:
                let result: Result<Zygote?, any Error>
                do { result = .success(try await startZygote(start)) } catch { result = .failure(error) }
                let waiting = state.withLock { state in
                    defer { state.waiting = nil }
                    return state.waiting ?? []
                }
                waiting.forEach { $0.resume(returning: result) }
                return try result.get()
            }
        }
    }

    private func startZygote(_ start: @Sendable () async throws -> (Zygote, Zygote.Readiness)) async throws -> Zygote? {
        let (zygote, readiness) = try await start()
        switch readiness {
        case .ready:
            let keep = state.withLock { state in
                guard !state.stopped else { return false }
                state.zygote = zygote
                state.lifecycle.started(now: .now)
                return true
            }
            pokes.yield()
            if !keep {
                await zygote.stop(grace: stopGrace)
                return nil
            }
            return zygote
        case .unforkable(let reason):
            bypass(reason)
            await zygote.stop(grace: stopGrace)
            return nil
        }
    }

    /// Instances of this release start on their own from now on, for `reason`.
    func bypass(_ reason: String) {
        state.withLock { $0.lifecycle.unforkable(reason) }
        note("Instances of this release start each in a fresh interpreter, not forked from a zygote: \(reason). See docs/functions.md, \"What is safe at import\".")
    }

    func forked() {
        state.withLock { $0.lifecycle.forked() }
    }

    func forkExited() {
        state.withLock { $0.lifecycle.forkExited(now: .now) }
        pokes.yield()
    }

    /// A fork was asked for and failed; after a few in a row the release bypasses its zygote.
    func forkFailed(_ message: String) {
        let bypassNow = state.withLock { $0.lifecycle.forkFailed(message) }
        if bypassNow, let reason = lifecycle.bypassed { bypass(reason) }
    }

    /// Stops the zygote `zygoteIdle()` after its last instance exited, for as long as the pool
    /// runs; when cancelled (the pool has stopped), stops it and returns once it has exited.
    func upkeep(zygoteIdle: @escaping @Sendable () -> Duration) async {
        var pokes = pokeStream.makeAsyncIterator()
        while !Task.isCancelled {
            let due = state.withLock { $0.lifecycle.stopDue(zygoteIdle: zygoteIdle()) }
            if let due, due <= .now {
                let idle = state.withLock { state -> Zygote? in
                    guard let zygote = state.zygote else { return nil }
                    state.zygote = nil
                    state.lifecycle.zygoteExited()
                    return zygote
                }
                if let idle, !idle.process.hasExited {
                    note("Zygote \(idle.id) stopped: no instance ran for \(zygoteIdle().shortText) (zygote-idle, 4 × the app's idle)")
                    await idle.stop(grace: stopGrace)
                }
            } else if let due {
                // At most a second at a time: a change of scale (a shorter idle) or a new fork
                // moves the due time, and the next look sees it.
                try? await Task.sleep(until: min(due, .now + .seconds(1)), clock: .continuous)
            } else if await pokes.next() == nil {
                break
            }
        }
        let last = state.withLock { state in
            state.stopped = true
            defer { state.zygote = nil }
            return state.zygote
        }
        await last?.stop(grace: stopGrace)
    }
}
