import NIOCore
import NIOPosix
import Synchronization

/// What a pool starts and stops: the launcher behind it (the direct one, the
/// sandboxed one, a fake in tests) and the instances it makes.
protocol PoolLauncher: Sendable {
    associatedtype Member: Sendable
    /// Starts an instance and returns once it answers (its manifest read).
    func launch() async throws -> Member
    /// Stops an instance (it serves nothing by then).
    func stop(_ member: Member) async
    /// Returns once the instance's process has exited by itself (a crash);
    /// cancelled when the pool stops the instance.
    func exited(_ member: Member) async
    /// A launch failed; the pool backs off `nextTry` before the next.
    func failedToStart(_ message: String, inARow failures: Int, nextTry: Duration)
    /// A launch ended (started, or failed) after `duration`: for metrics.
    func launchEnded(succeeded: Bool, after duration: Duration)
    /// The launcher's own work for as long as the pool runs (a zygote's idle stop), with the
    /// pool's settings as they are at each moment; cancelled once the pool has stopped its
    /// last instance, and returns when what it started has stopped.
    func upkeep(settings: @escaping @Sendable () -> PoolSettings) async
}

extension PoolLauncher {
    func failedToStart(_ message: String, inARow failures: Int, nextTry: Duration) {}
    func launchEnded(succeeded: Bool, after duration: Duration) {}
    func upkeep(settings: @escaping @Sendable () -> PoolSettings) async {}
}

/// A pool at one moment, for health, `GET /v1/status` and a deploy's warm-up.
struct PoolSnapshot: Sendable {
    var counts: (starting: Int, idle: Int, busy: Int, draining: Int)
    var waiting: Int
    /// Why starts fail, while they do.
    var crashing: String?

    /// Instances that answer calls (idle or busy).
    var serving: Int { counts.idle + counts.busy }

    /// `running`, `starting`, `crashing` (starts fail; backing off) or `idle` (scaled to zero).
    var state: String {
        if serving > 0 { return "running" }
        if crashing != nil { return "crashing" }
        return counts.starting > 0 ? "starting" : "idle"
    }
}

/// Drives a `PoolStateMachine`: turns its actions into launches, stops, timers
/// and answers to waiting callers.
///
/// A class with its state under one lock rather than an actor: a caller that
/// goes away is taken out of the queue from a cancellation handler, the
/// wake-up timer fires on an event loop, and the gateway's lane waits with a
/// callback, all synchronous contexts. No lock is held across an `await`;
/// waiters are told after the lock is let go.
/// Launches and stops run as child tasks of `run()`, which the pool's owner
/// runs for the pool's whole life, so nothing outlives shutdown.
final class Pool<Launcher: PoolLauncher>: Sendable {
    typealias Member = Launcher.Member
    typealias Machine = PoolStateMachine

    /// A call's hold on an instance, from `acquire` until `release`.
    struct Lease: Sendable {
        let member: Member
        let instance: Machine.InstanceID
        let call: Machine.CallID
    }

    struct Failure: Error, Equatable {
        var reason: Machine.Failure
    }

    /// What a waiting call is told, once: its lease, or why it gets none.
    typealias Waiter = @Sendable (Result<Lease, any Error>) -> Void

    private struct State {
        var machine: Machine
        var members: [Machine.InstanceID: Member] = [:]
        var waiting: [Machine.CallID: Waiter] = [:]
        var nextCall = 1
        var timer: Scheduled<Void>?
        var timerDue: ContinuousClock.Instant?
        /// Timers set so far (`timersSet`).
        var timersSet = 0
        /// What must let go of its instance when the pool drains (`whenDraining`), and whether it has.
        var onDrain: [Int: @Sendable () -> Void] = [:]
        var nextOnDrain = 0
        var drained = false
    }

    /// What `run()` must do outside the lock.
    private enum Work: Sendable {
        case start(Machine.InstanceID)
        case stop(Member)
    }

    private let state: Mutex<State>
    private let launcher: Launcher
    private let work: AsyncStream<Work>.Continuation
    private let workStream: AsyncStream<Work>
    private let loop: any EventLoop

    init(settings: PoolSettings, launcher: Launcher, loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        state = Mutex(State(machine: Machine(settings: settings)))
        self.launcher = launcher
        self.loop = loop
        (workStream, work) = AsyncStream.makeStream(of: Work.self)
    }

    // MARK: Calls

    /// Waits for an instance with room, at most until `deadline`. Throws
    /// `Failure` (queue full, timed out, cannot start, stopped) or
    /// `CancellationError` if the caller goes away first: its task is
    /// cancelled, or `abandonWhen` completes (its client closed the connection)
    /// while it still waits.
    func acquire(deadline: ContinuousClock.Instant, abandonWhen: EventLoopFuture<Void>? = nil) async throws -> Lease {
        let call = newCall()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                wait(call, deadline: deadline, abandonWhen: abandonWhen) { continuation.resume(with: $0) }
                // A task cancelled before the call was queued: `onCancel` found nothing to take out.
                if Task.isCancelled { leave(call) }
            }
        } onCancel: {
            self.leave(call)
        }
    }

    /// `acquire` for a caller that is not a task (the gateway's lane for calls), as `call` (from
    /// `newCall`): `then` is told once, on whichever thread settles the wait (at once, if an
    /// instance has room or the queue is full; else where an instance comes free, a deadline
    /// passes, or `leave(call)` is called: its client has gone).
    func acquire(_ call: Machine.CallID, deadline: ContinuousClock.Instant, then: @escaping @Sendable (Result<Lease, any Error>) -> Void) {
        wait(call, deadline: deadline, abandonWhen: nil, then)
    }

    /// A new call's id, for `acquire(_:deadline:then:)` and `leave`.
    func newCall() -> Machine.CallID {
        state.withLock { state in
            defer { state.nextCall += 1 }
            return Machine.CallID(rawValue: state.nextCall)
        }
    }

    private func wait(
        _ call: Machine.CallID, deadline: ContinuousClock.Instant, abandonWhen: EventLoopFuture<Void>?, _ waiter: @escaping Waiter
    ) {
        apply { state in
            state.waiting[call] = waiter
            return state.machine.call(call, deadline: deadline, now: .now)
        }
        // After the call is known: a client already gone takes it out of the queue at once.
        abandonWhen?.whenComplete { [weak self] _ in self?.leave(call) }
    }

    /// An instance with room now, without waiting: the common case, which
    /// then needs nothing set up for a wait (a deadline, a client to watch).
    func tryAcquire() -> Lease? {
        state.withLock { state in
            let call = Machine.CallID(rawValue: state.nextCall)
            guard let id = state.machine.callIfFree(call) else { return nil }
            state.nextCall += 1
            guard let member = state.members[id] else {
                _ = state.machine.finished(call, on: id, now: .now)
                rescheduleTimer(&state)
                return nil
            }
            return Lease(member: member, instance: id, call: call)
        }
    }

    /// Takes a waiting call out of the queue (its caller went away): it is told `CancellationError`.
    /// One that already holds an instance, or has had its answer, is not affected (a task's call
    /// that waited is left once it has its lease: its `abandonWhen` completes then too).
    func leave(_ call: Machine.CallID) {
        let waiter = state.withLock { state -> Waiter? in
            // A call in the machine's queue always has its waiter here, so one without is in no
            // queue either: nothing to walk the queue for.
            guard let waiter = state.waiting.removeValue(forKey: call) else { return nil }
            state.machine.cancel(call)
            return waiter
        }
        waiter?(.failure(CancellationError()))
    }

    /// The call is done with its instance: it takes the next waiting call.
    func release(_ lease: Lease) {
        apply { $0.machine.finished(lease.call, on: lease.instance, now: .now) }
    }

    /// The call of `lease` did not run after all (the gateway's lane found no connection to
    /// send it on, and hands it to the ordinary path): the slot is free again, nothing counted.
    func giveBack(_ lease: Lease) {
        apply { $0.machine.finished(lease.call, on: lease.instance, now: .now, ran: false) }
    }

    /// The instance of `lease` is broken (past a time limit, or its
    /// connection lost): it takes no more calls and is stopped.
    func discard(_ lease: Lease) {
        apply { state in
            guard let member = state.members.removeValue(forKey: lease.instance) else { return [] }
            self.work.yield(.stop(member))
            return state.machine.exited(lease.instance, now: .now)
        }
    }

    // MARK: Scale

    func warm(to count: Int) {
        apply { $0.machine.warm(to: count, now: .now) }
    }

    func update(_ settings: PoolSettings) {
        apply { $0.machine.update(settings, now: .now) }
    }

    /// Stops taking calls: callers still waiting fail with `.stopped` (at a
    /// switch the gateway retries them on the new release's pool; at shutdown
    /// they get 503), idle instances stop now and busy ones once their calls
    /// are done; then `run()` returns.
    func drain() {
        tellHeldCalls(draining: true)
        apply { state in
            let (actions, waiting) = state.machine.drain()
            return actions + waiting.map { .fail($0.call, .stopped) }
        }
    }

    /// Tells the calls that hold their instances for as long as their clients like (WebSockets) to
    /// let go now, without draining: gustd's sockets pass to the next gustd, whose listeners must
    /// not wait for them (the listeners drain before the pools, and waited up to the shutdown bound).
    func letHeldCallsGo() {
        tellHeldCalls(draining: false)
    }

    /// Runs (and forgets) every `whenDraining` action; `draining` also marks the pool drained.
    private func tellHeldCalls(draining: Bool) {
        let told = state.withLock { state in
            defer { state.onDrain = [:] }
            if draining { state.drained = true }
            return Array(state.onDrain.values)
        }
        told.forEach { $0() }
    }

    /// Runs `action` when the pool drains (at once if it has): a call that holds its
    /// instance for as long as its client likes (a WebSocket) lets go then, so that
    /// a deploy or gustd's shutdown does not wait for it. The returned function
    /// forgets `action` (call it when the call ends).
    func whenDraining(_ action: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        let key = state.withLock { state -> Int? in
            guard !state.drained else { return nil }
            defer { state.nextOnDrain += 1 }
            state.onDrain[state.nextOnDrain] = action
            return state.nextOnDrain
        }
        guard let key else {
            action()
            return {}
        }
        return { [weak self] in _ = self?.state.withLock { $0.onDrain.removeValue(forKey: key) } }
    }

    /// Each instance with its state and the calls it answered, and the
    /// launched member once it runs (a starting instance has none yet).
    var instances: [(state: Machine.InstanceState, served: Int, member: Member?)] {
        state.withLock { state in
            state.machine.instances.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { ($0.value.state, $0.value.served, state.members[$0.key]) }
        }
    }

    /// How many wake-up timers the pool has set (`PoolTests`: a queue that fills and empties sets none).
    var timersSet: Int { state.withLock { $0.timersSet } }

    var snapshot: PoolSnapshot {
        state.withLock { PoolSnapshot(counts: $0.machine.counts, waiting: $0.machine.waiting, crashing: $0.machine.crashing?.message) }
    }

    // MARK: Running

    /// Launches and stops instances as the machine asks, until the pool is
    /// drained and its last instance stopped; then ends the launcher's upkeep.
    /// Cancelling it stops them all.
    func run() async {
        await withTaskGroup(of: Void.self) { upkeep in
            upkeep.addTask { await self.launcher.upkeep(settings: { self.state.withLock { $0.machine.settings } }) }
            await withDiscardingTaskGroup { group in
                for await item in workStream {
                    switch item {
                    case .start(let id):
                        group.addTask { await self.launch(id) }
                    case .stop(let member):
                        group.addTask { await self.launcher.stop(member) }
                    }
                }
            }
            upkeep.cancelAll()
        }
        state.withLock { $0.timer?.cancel() }
    }

    private func launch(_ id: Machine.InstanceID) async {
        let member: Member
        let began = ContinuousClock.now
        do {
            member = try await launcher.launch()
            launcher.launchEnded(succeeded: true, after: .now - began)
        } catch {
            launcher.launchEnded(succeeded: false, after: .now - began)
            let message = String(describing: error)
            apply { $0.machine.startFailed(id, message: message, now: .now) }
            let (failures, until) = state.withLock { ($0.machine.failedStarts, $0.machine.crashing?.until) }
            launcher.failedToStart(message, inARow: failures, nextTry: until.map { $0 - .now } ?? .zero)
            return
        }
        apply { state in
            state.members[id] = member
            return state.machine.started(id, now: .now)
        }
        // Watch for a crash for as long as the instance is a member.
        await launcher.exited(member)
        apply { state in
            guard state.members[id] != nil else { return [] }
            state.members[id] = nil
            return state.machine.exited(id, now: .now)
        }
    }

    // MARK: Applying actions

    /// Runs `event` on the state under the lock, then carries out the actions
    /// it returns: answers outside the lock, launches and stops through `run()`.
    private func apply(_ event: (inout State) -> [Machine.Action]) {
        var answers = Answers()
        let (queued, stopped): ([Work], Bool) = state.withLock { state in
            var queued: [Work] = []
            var actions = event(&state)
            while !actions.isEmpty {
                let action = actions.removeFirst()
                switch action {
                case .start(let id):
                    queued.append(.start(id))
                case .stop(let id):
                    if let member = state.members.removeValue(forKey: id) { queued.append(.stop(member)) }
                case .run(let call, let id):
                    guard let waiter = state.waiting.removeValue(forKey: call) else {
                        // The caller left between the machine's choice and now: free the slot.
                        actions += state.machine.finished(call, on: id, now: .now)
                        continue
                    }
                    guard let member = state.members[id] else {
                        // Not reachable while members and the machine are kept in step (a member is
                        // added with `started`, removed with `exited`); were it, the instance is
                        // as good as gone, and the caller gets an answer rather than silence.
                        actions += state.machine.exited(id, now: .now)
                        answers.append((waiter, .failure(Failure(reason: .instanceLost))))
                        continue
                    }
                    answers.append((waiter, .success(Lease(member: member, instance: id, call: call))))
                case .fail(let call, let reason):
                    if let waiter = state.waiting.removeValue(forKey: call) {
                        answers.append((waiter, .failure(Failure(reason: reason))))
                    }
                }
            }
            rescheduleTimer(&state)
            return (queued, state.machine.isStopped)
        }
        for item in queued { work.yield(item) }
        if stopped { work.finish() }
        answers.tell()
    }

    /// The waiters an event answers, told once the lock is let go: most events answer one or
    /// none, so the first is kept without an array (a `malloc` saved on every call that waited).
    private struct Answers {
        private var first: (Waiter, Result<Lease, any Error>)?
        private var more: [(Waiter, Result<Lease, any Error>)] = []

        mutating func append(_ answer: (Waiter, Result<Lease, any Error>)) {
            if first == nil { first = answer } else { more.append(answer) }
        }

        func tell() {
            guard let (waiter, result) = first else { return }
            waiter(result)
            for (waiter, result) in more { waiter(result) }
        }
    }

    /// One timer per pool, at or before the machine's next wake-up (a waiter's
    /// deadline, an idle stop, the end of a backoff). A timer already set is kept
    /// when the wake-up moves later or there is none any more: it ticks the
    /// machine (which finds nothing due yet) and is set again then. So a call
    /// that moves an idle stop later, as every call does, and a queue that
    /// empties, as it does call after call under load, cost no timer (setting
    /// one is a lock and a heap operation on the loop, and wakes it from another
    /// thread; cancelling one is as much again). After a call's events the
    /// machine says only what they added (`WakeUpChange`), so that they cost no
    /// walk over the queue and the instances either.
    private func rescheduleTimer(_ state: inout State) {
        let due: ContinuousClock.Instant
        switch state.machine.takeWakeUpChange() {
        case .none:
            return
        case .added(let earliest):
            due = earliest
        case .unknown:
            guard let next = state.machine.nextWakeUp else { return }
            due = next
        }
        if let set = state.timerDue, set <= due { return }
        state.timer?.cancel()
        state.timerDue = due
        let delay = due - .now
        state.timersSet += 1
        state.timer = loop.scheduleTask(in: .nanoseconds(max(Int64(delay.nanoseconds), 0))) { [weak self] in
            self?.state.withLock { $0.timerDue = nil }
            self?.apply { $0.machine.tick(now: .now) }
        }
    }

}

extension Duration {
    /// Saturating at Int64's bounds (292 years): a deadline that far off is as good as none,
    /// and an overflow would trap gustd.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowToo) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowToo ? (whole < 0 ? .min : .max) : sum
    }
}
