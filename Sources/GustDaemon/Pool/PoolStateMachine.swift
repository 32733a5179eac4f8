import NIOCore

/// The instance pool of one release of one app, as pure logic: which instances
/// exist and what each is doing, which calls wait, and what must happen next.
///
/// It owns no process, socket or clock. Its driver (`Pool`) feeds it events
/// (a call arrives, an instance started, a call finished, time passed) and
/// carries out the actions it returns (start or stop an instance, run a call on
/// an instance, fail a call). So every rule here — queueing, scale-out, idle
/// stop, deadlines, crash backoff, draining — is unit-tested with a fake clock
/// and no processes (Tests/GustDaemonTests/PoolStateMachineTests.swift), the
/// way NIO keeps its protocol state machines apart from the handlers that drive them.
///
/// Instance life: starting → idle ⇄ busy → draining → gone.
struct PoolStateMachine: Sendable {
    typealias Instant = ContinuousClock.Instant

    struct InstanceID: Hashable, Sendable, CustomStringConvertible {
        var rawValue: Int
        var description: String { "#\(rawValue)" }
    }

    struct CallID: Hashable, Sendable, CustomStringConvertible {
        var rawValue: Int
        var description: String { "call \(rawValue)" }
    }

    enum InstanceState: Equatable, Sendable {
        case starting
        /// Running, with the number of calls it is serving (0: idle).
        case running(inFlight: Int)
        /// Serves what it has, takes nothing new, stops when done.
        case draining(inFlight: Int)
    }

    struct Instance: Sendable {
        var state: InstanceState
        /// When it last finished a call (or started): what `idle` counts from.
        var lastActive: Instant
        var served = 0
    }

    struct Waiter: Sendable {
        var call: CallID
        var deadline: Instant
    }

    /// Why a call is answered without running.
    enum Failure: Equatable, Sendable {
        /// The queue is full: 503 with Retry-After.
        case queueFull(limit: Int)
        /// Its time limit passed while it waited: 504.
        case timedOut
        /// The release cannot start an instance now: 503, retry after the backoff.
        case cannotStart(message: String, retryAfter: Duration)
        /// The pool stopped (gustd shuts down, or the app is gone): 503.
        case stopped
        /// The instance it was given had already stopped (a guard: not reachable while the pool's
        /// members and its machine stay in step): 503, try again at once.
        case instanceLost
    }

    enum Action: Equatable, Sendable {
        case start(InstanceID)
        case stop(InstanceID)
        case run(CallID, on: InstanceID)
        case fail(CallID, Failure)
    }

    /// What the events since it was last taken did to the timed things (`nextWakeUp`), for the
    /// driver's one timer: the calls of a loaded pool (a waiter queued, an instance gone idle)
    /// only add times, so the driver compares the earliest added with its timer instead of
    /// walking the queue and the instances after every call.
    enum WakeUpChange: Equatable, Sendable {
        /// Nothing timed was added or moved earlier: a timer at or before the last next wake-up still is.
        case none
        /// Timed things were added, the earliest at this time, and nothing else moved earlier.
        case added(Instant)
        /// Anything may have moved: ask `nextWakeUp`.
        case unknown
    }

    /// Scale rules (`gust scale`): see `PoolSettings`.
    private(set) var settings: PoolSettings
    private(set) var instances: [InstanceID: Instance] = [:]
    private var queue = CircularBuffer<Waiter>()
    private var nextInstance = 1
    private var stopping = false
    /// Consecutive failed starts, and when the next start may be tried.
    private(set) var failedStarts = 0
    private var backoffUntil: Instant?
    private var lastStartError = ""
    private var wakeUpChange = WakeUpChange.none

    init(settings: PoolSettings) {
        self.settings = settings
    }

    // MARK: Reading

    var waiting: Int { queue.count }
    var isStopped: Bool { stopping && instances.isEmpty }

    /// Instances by state, for `gust ps` and metrics.
    var counts: (starting: Int, idle: Int, busy: Int, draining: Int) {
        var counts = (starting: 0, idle: 0, busy: 0, draining: 0)
        for instance in instances.values {
            switch instance.state {
            case .starting: counts.starting += 1
            case .running(let inFlight) where inFlight == 0: counts.idle += 1
            case .running: counts.busy += 1
            case .draining: counts.draining += 1
            }
        }
        return counts
    }

    /// Whether starts are failing: health says "crashing" while this holds.
    var crashing: (message: String, until: Instant)? {
        backoffUntil.map { (lastStartError, $0) }
    }

    /// The next time `tick` has something to do: a waiter's deadline, an idle
    /// instance's stop, the end of a backoff. Nil when nothing is timed.
    /// A walk over the queue and the instances: the driver asks it when
    /// `takeWakeUpChange` says it must, keeping a running minimum rather than
    /// gathering the times into an array.
    var nextWakeUp: Instant? {
        var earliest = backoffUntil
        func consider(_ time: Instant) {
            if let sooner = earliest, sooner <= time { return }
            earliest = time
        }
        for waiter in queue { consider(waiter.deadline) }
        if running > settings.min {
            for instance in instances.values where instance.state == .running(inFlight: 0) {
                consider(instance.lastActive + settings.idle)
            }
        }
        return earliest
    }

    /// What changed for the timer since the last time this was asked (`WakeUpChange`); asking resets it.
    mutating func takeWakeUpChange() -> WakeUpChange {
        defer { wakeUpChange = .none }
        return wakeUpChange
    }

    // MARK: Events

    /// A call arrives: it runs on a free instance at once, or waits (and the
    /// pool grows if it may), or is failed when the queue is full.
    mutating func call(_ call: CallID, deadline: Instant, now: Instant) -> [Action] {
        guard !stopping else { return [.fail(call, .stopped)] }
        if queue.isEmpty, let free = freeInstance() {
            occupy(free)
            return [.run(call, on: free)]
        }
        if let backoffUntil, now < backoffUntil, running == 0 {
            return [.fail(call, .cannotStart(message: lastStartError, retryAfter: backoffUntil - now))]
        }
        guard queue.count < settings.queueLimit else { return [.fail(call, .queueFull(limit: settings.queueLimit))] }
        queue.append(Waiter(call: call, deadline: deadline))
        timed(deadline)
        return scale(now: now)
    }

    /// A call that runs only if an instance has room now and nobody waits:
    /// the instance it runs on, or nil (then `call` queues it).
    mutating func callIfFree(_ call: CallID) -> InstanceID? {
        guard !stopping, queue.isEmpty, let free = freeInstance() else { return nil }
        occupy(free)
        return free
    }

    /// Start `count` instances ahead of traffic (a deploy warms the new
    /// release to the size of the old one), within `max`.
    mutating func warm(to count: Int, now: Instant) -> [Action] {
        wakeUpChange = .unknown
        var actions: [Action] = []
        while !stopping && live < min(max(count, settings.min), settings.max) {
            actions.append(.start(newInstance(now: now)))
        }
        return actions
    }

    /// An instance finished starting and answers.
    mutating func started(_ id: InstanceID, now: Instant) -> [Action] {
        guard let instance = instances[id] else { return [] }
        wakeUpChange = .unknown  // one more running instance can make idle ones stoppable
        failedStarts = 0
        backoffUntil = nil
        switch instance.state {
        case .starting: break
        case .draining: return drainIfDone(id)  // retired while it was starting
        case .running: return []
        }
        instances[id] = Instance(state: .running(inFlight: 0), lastActive: now)
        return dispatch(now: now) + scale(now: now)
    }

    /// An instance could not start. With nothing running, the waiting calls
    /// fail and starts back off (1 s, doubling to a minute) so that a release
    /// that crashes at import is not restarted on every request.
    mutating func startFailed(_ id: InstanceID, message: String, now: Instant) -> [Action] {
        guard instances.removeValue(forKey: id) != nil else { return [] }
        wakeUpChange = .unknown
        failedStarts += 1
        lastStartError = message
        let backoff = Self.backoff(afterFailures: failedStarts)
        backoffUntil = now + backoff
        guard running == 0, starting == 0 else { return [] }
        var actions: [Action] = []
        while let waiter = queue.popFirst() {
            actions.append(.fail(waiter.call, .cannotStart(message: message, retryAfter: backoff)))
        }
        return actions
    }

    static func backoff(afterFailures failures: Int) -> Duration {
        .seconds(min(60, 1 << min(max(failures - 1, 0), 6)))
    }

    /// A call on `id` answered (or failed): the instance takes the next waiter.
    /// `ran` false: the call gave its slot back before it ran (counted in nothing).
    mutating func finished(_ call: CallID, on id: InstanceID, now: Instant, ran: Bool = true) -> [Action] {
        guard var instance = instances[id] else { return [] }
        if ran {
            instance.lastActive = now
            instance.served += 1
        }
        switch instance.state {
        case .running(let inFlight):
            instance.state = .running(inFlight: max(inFlight - 1, 0))
            instances.updateValue(instance, forKey: id)
            // Gone idle: stopped after `idle` if more than `min` run (taken again at once if a call waits).
            if inFlight <= 1, running > settings.min { timed(instance.lastActive + settings.idle) }
            return dispatch(now: now)
        case .draining(let inFlight):
            instance.state = .draining(inFlight: max(inFlight - 1, 0))
            instances[id] = instance
            return drainIfDone(id)
        case .starting:
            return []
        }
    }

    /// The caller of a waiting call went away: it never runs.
    mutating func cancel(_ call: CallID) {
        if let index = queue.firstIndex(where: { $0.call == call }) { queue.remove(at: index) }
    }

    /// The instance's process is gone (it crashed, or was stopped). Calls it
    /// was serving are failed by their connections, not here.
    mutating func exited(_ id: InstanceID, now: Instant) -> [Action] {
        guard let instance = instances[id] else { return [] }
        wakeUpChange = .unknown
        if instance.state == .starting { return startFailed(id, message: "its process exited while starting", now: now) }
        instances[id] = nil
        return scale(now: now)
    }

    /// Time passed: fail waiters past their deadline, stop instances idle for
    /// `idle` down to `min`, and try starting again once a backoff is over.
    mutating func tick(now: Instant) -> [Action] {
        wakeUpChange = .unknown
        var actions: [Action] = []
        while let expired = queue.firstIndex(where: { $0.deadline <= now }) {
            actions.append(.fail(queue.remove(at: expired).call, .timedOut))
        }
        if let backoffUntil, now >= backoffUntil { self.backoffUntil = nil }
        let idle = instances.filter { $0.value.state == .running(inFlight: 0) && now - $0.value.lastActive >= settings.idle }
            .sorted { $0.value.lastActive < $1.value.lastActive }
        for (id, _) in idle where running > settings.min {
            instances[id] = nil
            actions.append(.stop(id))
        }
        return actions + scale(now: now)
    }

    /// New scale rules (`gust scale`): the pool grows or shrinks to them.
    mutating func update(_ settings: PoolSettings, now: Instant) -> [Action] {
        self.settings = settings
        wakeUpChange = .unknown
        var actions: [Action] = []
        // Above the new max: stop idle instances first, then drain busy ones.
        let surplus = live - settings.max
        if surplus > 0 {
            let ordered = instances.filter { $0.value.state != .starting && !Self.isDraining($0.value.state) }
                .sorted { (Self.inFlight($0.value.state), $0.key.rawValue) < (Self.inFlight($1.value.state), $1.key.rawValue) }
            for (id, _) in ordered.prefix(surplus) { actions += retire(id) }
        }
        return actions + dispatch(now: now) + scale(now: now)
    }

    /// The release is replaced or gustd stops: take no new calls, hand the
    /// waiting ones back (the new release's pool runs them, or they fail),
    /// stop idle instances now and busy ones once their calls finish.
    mutating func drain() -> (actions: [Action], waiting: [Waiter]) {
        stopping = true
        wakeUpChange = .unknown
        var waiting: [Waiter] = []
        while let waiter = queue.popFirst() { waiting.append(waiter) }
        var actions: [Action] = []
        for id in instances.keys.sorted(by: { $0.rawValue < $1.rawValue }) { actions += retire(id) }
        return (actions, waiting)
    }

    // MARK: Rules

    /// A timed thing was added at `time` (`WakeUpChange`).
    private mutating func timed(_ time: Instant) {
        switch wakeUpChange {
        case .none: wakeUpChange = .added(time)
        case .added(let earliest): wakeUpChange = .added(min(earliest, time))
        case .unknown: break
        }
    }

    /// Instances that serve or will: not draining.
    // Counted without gathering (a `filter` made an array for each count, several times a call).
    private var live: Int { instances.values.count { !Self.isDraining($0.state) } }
    private var running: Int {
        instances.values.count { if case .running = $0.state { true } else { false } }
    }
    private var starting: Int { instances.values.count { $0.state == .starting } }

    /// Grow while calls wait for capacity that starting instances will not
    /// give, within `max`, and never during a backoff; keep `min` up.
    private mutating func scale(now: Instant) -> [Action] {
        guard !stopping else { return [] }
        if let backoffUntil, now < backoffUntil { return [] }
        let concurrency = max(settings.concurrency, 1)
        var wanted = max(settings.min - live, 0)
        let uncovered = queue.count - (starting + wanted) * concurrency
        if uncovered > 0 { wanted += (uncovered + concurrency - 1) / concurrency }
        return (0..<max(min(wanted, settings.max - live), 0)).map { _ in .start(newInstance(now: now)) }
    }

    /// Gives waiting calls, oldest first, to instances with room.
    private mutating func dispatch(now: Instant) -> [Action] {
        var actions: [Action] = []
        while !queue.isEmpty, let free = freeInstance() {
            let waiter = queue.removeFirst()
            occupy(free)
            actions.append(.run(waiter.call, on: free))
        }
        return actions
    }

    /// The running instance with the most room, the oldest among equals (so
    /// that younger ones go idle and are the ones stopped).
    private func freeInstance() -> InstanceID? {
        var best: (id: InstanceID, inFlight: Int)?
        for (id, instance) in instances {
            guard case .running(let inFlight) = instance.state, inFlight < settings.concurrency else { continue }
            if let best, (best.inFlight, best.id.rawValue) < (inFlight, id.rawValue) { continue }
            best = (id, inFlight)
        }
        return best?.id
    }

    private mutating func occupy(_ id: InstanceID) {
        // Read, then written back whole: `instances[id]?.state = …` goes through the dictionary's
        // `_modify` accessor, a coroutine whose frame was allocated on the heap (six `malloc`s a call).
        guard var instance = instances[id], case .running(let inFlight) = instance.state else { return }
        instance.state = .running(inFlight: inFlight + 1)
        instances.updateValue(instance, forKey: id)
    }

    private mutating func newInstance(now: Instant) -> InstanceID {
        let id = InstanceID(rawValue: nextInstance)
        nextInstance += 1
        instances[id] = Instance(state: .starting, lastActive: now)
        return id
    }

    /// Stops an instance now if it serves nothing, else once it has finished.
    private mutating func retire(_ id: InstanceID) -> [Action] {
        guard let instance = instances[id] else { return [] }
        switch instance.state {
        case .starting:
            instances[id]?.state = .draining(inFlight: 0)
            return []  // stopped once it reports `started` (or fails)
        case .running(let inFlight), .draining(let inFlight):
            instances[id]?.state = .draining(inFlight: inFlight)
            return drainIfDone(id)
        }
    }

    private mutating func drainIfDone(_ id: InstanceID) -> [Action] {
        guard instances[id]?.state == .draining(inFlight: 0) else { return [] }
        instances[id] = nil
        return [.stop(id)]
    }

    private static func isDraining(_ state: InstanceState) -> Bool {
        if case .draining = state { true } else { false }
    }

    private static func inFlight(_ state: InstanceState) -> Int {
        switch state {
        case .starting: 0
        case .running(let count), .draining(let count): count
        }
    }
}
