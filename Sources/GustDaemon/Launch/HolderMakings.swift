import Foundation
import Synchronization

/// What `HolderMakings` keeps: alive until it exits or is stopped.
protocol MadeHolder: AnyObject, Sendable {
    var isAlive: Bool { get }
    func stop()
}

/// The table of `SandboxHolders`: one holder per key, each made at most once at a time (a start
/// that finds its holder being made waits for that making, never starts a second), made ahead
/// of the first start in the background (`prepare`) by at most `concurrency` threads at once, so
/// that gustd's start with many apps does not make all their holders at once on a small machine.
/// Kept apart from the bwrap work so that its logic is tested with fakes (`HolderMakingsTests`);
/// `SandboxHolders` owns the one instance.
final class HolderMakings<Key: Hashable & Sendable, Holder: MadeHolder>: Sendable {
    typealias Make = @Sendable () throws -> Holder

    /// One making under way: its one result (the holder kept, or nil), set once by `finish` and
    /// seen by every start waiting on it (a condition, as `BlockingExecutor` and the access log's
    /// writer wait: the state it guards, and a broadcast when it changes).
    final class Flight: @unchecked Sendable {
        private let condition = NSCondition()
        /// Guarded by `condition`: nil while the making runs, then its result.
        private var result: Holder??

        func finish(_ holder: Holder?) {
            condition.lock()
            result = .some(holder)
            condition.broadcast()
            condition.unlock()
        }

        /// The holder kept, or nil (the making failed, or its app stopped being served meanwhile);
        /// nil also after `timeout` (the start then uses bwrap and leaves the making to finish).
        func wait(timeout: Duration) -> Holder? {
            let (seconds, attoseconds) = timeout.components
            let deadline = Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18)
            condition.lock()
            defer { condition.unlock() }
            while result == nil, condition.wait(until: deadline) {}
            return result ?? nil
        }
    }

    /// What a start does after looking at its key's entry.
    private enum Next {
        case use(Holder)
        case wait(Flight)
        case make(Flight)
        case none
    }

    private enum Entry {
        case ready(Holder)
        case making(Flight)
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Keys to make in the background, oldest first, with how.
        var queued: [(key: Key, make: Make)] = []
        /// Background threads running (at most `concurrency`).
        var workers = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let concurrency: Int
    /// How long a start waits for a making under way (a making is itself bounded: bwrap's start within about 2 s).
    private let waitLimit: Duration
    /// Told why a making failed (gustd's log) and whether it was ahead of any start.
    private let failed: @Sendable (Key, any Error, _ inBackground: Bool) -> Void

    init(
        concurrency: Int, waitLimit: Duration = .seconds(10),
        failed: @escaping @Sendable (Key, any Error, _ inBackground: Bool) -> Void = { _, _, _ in }
    ) {
        self.concurrency = max(1, concurrency)
        self.waitLimit = waitLimit
        self.failed = failed
    }

    /// The key's live holder: the one made, the one being made (waited for), or one made now on
    /// this thread; nil when none can be made or the table is stopped.
    func holder(_ key: Key, make: Make) -> Holder? {
        var dead: Holder?
        let next: Next = state.withLock { state in
            switch state.entries[key] {
            case .ready(let holder) where holder.isAlive: return .use(holder)
            case .ready(let holder):
                dead = holder
                state.entries[key] = nil
            case .making(let flight): return .wait(flight)
            case nil: break
            }
            guard !state.stopped else { return .none }
            let flight = Flight()
            state.entries[key] = .making(flight)
            return .make(flight)
        }
        dead?.stop()
        switch next {
        case .use(let holder): return holder
        case .wait(let flight): return flight.wait(timeout: waitLimit)
        case .make(let flight): return run(key, flight, make, inBackground: false)
        case .none: return nil
        }
    }

    /// Makes the key's holder in the background unless it has one, one is being made or it is
    /// queued already; returns at once.
    func prepare(_ key: Key, make: @escaping Make) {
        let startsWorker: Bool = state.withLock { state in
            guard !state.stopped, state.entries[key] == nil, !state.queued.contains(where: { $0.key == key }) else { return false }
            state.queued.append((key, make))
            guard state.workers < concurrency else { return false }
            state.workers += 1
            return true
        }
        // A thread, not a task: a making blocks (bwrap's start) and must not hold a cooperative
        // thread. It ends when the queue is empty; `stop(where:)` and `stopAll` empty it.
        if startsWorker { Thread.detachNewThread { [self] in work() } }
    }

    /// Takes queued keys one by one until none is left; a key made meanwhile by a start is skipped.
    private func work() {
        while true {
            let next: (Key, Flight, Make)? = state.withLock { state in
                while !state.queued.isEmpty {
                    let (key, make) = state.queued.removeFirst()
                    guard state.entries[key] == nil else { continue }
                    let flight = Flight()
                    state.entries[key] = .making(flight)
                    return (key, flight, make)
                }
                state.workers -= 1
                return nil
            }
            guard let next else { return }
            _ = run(next.0, next.1, next.2, inBackground: true)
        }
    }

    /// Makes the holder of `flight` and keeps it, unless its entry was taken away meanwhile (its
    /// app is no longer served, gustd stops): then it is stopped. Every waiter gets the result.
    private func run(_ key: Key, _ flight: Flight, _ make: Make, inBackground: Bool) -> Holder? {
        let made: Holder?
        do { made = try make() } catch {
            failed(key, error, inBackground)
            made = nil
        }
        let kept: Holder? = state.withLock { state in
            guard case .making(let current) = state.entries[key], current === flight else { return nil }
            state.entries[key] = made.map { .ready($0) }
            return made
        }
        if let made, kept == nil { made.stop() }
        flight.finish(kept)
        return kept
    }

    /// A holder whose use failed: forgotten and stopped, so that the next start makes a new one.
    func discard(_ holder: Holder) {
        state.withLock { state in
            for (key, entry) in state.entries {
                if case .ready(let value) = entry, value === holder { state.entries[key] = nil }
            }
        }
        holder.stop()
    }

    /// Stops the holders of the keys that match, forgets their makings under way (each stops what
    /// it makes) and their queued ones.
    func stop(where matches: (Key) -> Bool) {
        let stopping: [Holder] = state.withLock { state in
            state.queued.removeAll { matches($0.key) }
            var holders: [Holder] = []
            for (key, entry) in state.entries where matches(key) {
                if case .ready(let holder) = entry { holders.append(holder) }
                state.entries[key] = nil
            }
            return holders
        }
        stopping.forEach { $0.stop() }
    }

    /// Stops every holder; none is made after.
    func stopAll() {
        state.withLock { $0.stopped = true }
        stop { _ in true }
    }

    /// The live holders.
    var holders: [Key: Holder] {
        state.withLock { state in
            state.entries.compactMapValues { entry in
                guard case .ready(let holder) = entry, holder.isAlive else { return nil }
                return holder
            }
        }
    }

    /// Whether the key's holder is queued or being made (for tests).
    func isPending(_ key: Key) -> Bool {
        state.withLock { state in
            if case .making = state.entries[key] { return true }
            return state.queued.contains { $0.key == key }
        }
    }
}
