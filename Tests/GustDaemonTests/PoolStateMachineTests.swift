import GustTesting
@testable import GustDaemon
import Testing

/// The pool's rules, driven by hand with a fake clock: no processes, no sleeps.
@Suite struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine
    typealias ID = PoolStateMachine.InstanceID

    let t0 = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }
    func call(_ n: Int) -> Machine.CallID { .init(rawValue: n) }
    func instance(_ n: Int) -> ID { .init(rawValue: n) }

    func machine(min: Int = 1, max: Int = 4, concurrency: Int = 1, idle: Int = 300, queue: Int = 100) -> Machine {
        Machine(settings: PoolSettings(min: min, max: max, concurrency: concurrency, idle: .seconds(idle), queueLimit: queue))
    }

    /// A pool warmed to `count` running instances.
    func warmed(_ machine: inout Machine, _ count: Int) {
        let starts = machine.warm(to: count, now: at(0))
        for case .start(let id) in starts { _ = machine.started(id, now: at(0)) }
    }

    @Test func aCallRunsOnAFreeInstanceAtOnce() {
        var pool = machine()
        #expect(pool.warm(to: 1, now: at(0)) == [.start(instance(1))])
        #expect(pool.started(instance(1), now: at(0)).isEmpty)
        #expect(pool.call(call(1), deadline: at(15), now: at(1)) == [.run(call(1), on: instance(1))])
        #expect(pool.counts.busy == 1)
    }

    @Test func fromZeroTheFirstCallStartsAnInstanceAndWaitsForIt() {
        var pool = machine(min: 0)
        #expect(pool.call(call(1), deadline: at(15), now: at(0)) == [.start(instance(1))])
        #expect(pool.waiting == 1)
        #expect(pool.started(instance(1), now: at(0.1)) == [.run(call(1), on: instance(1))])
    }

    @Test func waitingCallsGrowThePoolUpToMaxAndRunInOrder() {
        var pool = machine(max: 4)
        warmed(&pool, 1)
        #expect(pool.call(call(1), deadline: at(15), now: at(1)) == [.run(call(1), on: instance(1))])
        var starts: [Machine.Action] = []
        for n in 2...10 { starts += pool.call(call(n), deadline: at(15), now: at(1)) }
        #expect(starts == [.start(instance(2)), .start(instance(3)), .start(instance(4))], "one start per waiting call, within max")
        #expect(pool.waiting == 9)
        #expect(pool.started(instance(2), now: at(1.01)) == [.run(call(2), on: instance(2))])
        #expect(pool.finished(call(1), on: instance(1), now: at(1.02)) == [.run(call(3), on: instance(1))])
        #expect(pool.started(instance(3), now: at(1.03)) == [.run(call(4), on: instance(3))])
        #expect(pool.counts == (starting: 1, idle: 0, busy: 3, draining: 0))
    }

    @Test func aFullQueueRefusesAtOnce() {
        var pool = machine(max: 1, queue: 2)
        warmed(&pool, 1)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        #expect(pool.call(call(2), deadline: at(15), now: at(0)).isEmpty)
        #expect(pool.call(call(3), deadline: at(15), now: at(0)).isEmpty)
        #expect(pool.call(call(4), deadline: at(15), now: at(0)) == [.fail(call(4), .queueFull(limit: 2))])
    }

    @Test func aNodeInstanceTakesUpToItsConcurrency() {
        var pool = machine(max: 2, concurrency: 4)
        warmed(&pool, 1)
        for n in 1...4 { #expect(pool.call(call(n), deadline: at(15), now: at(0)) == [.run(call(n), on: instance(1))]) }
        #expect(pool.call(call(5), deadline: at(15), now: at(0)) == [.start(instance(2))])
        #expect(pool.call(call(6), deadline: at(15), now: at(0)).isEmpty, "the starting instance will take four")
    }

    /// The instance with the most room takes a call, the oldest among equals (so that the
    /// youngest go idle, and are the ones stopped).
    @Test func aCallGoesToTheInstanceWithTheMostRoomTheOldestAmongEquals() {
        var pool = machine(max: 3, concurrency: 2)
        warmed(&pool, 3)
        var placed: [Machine.Action] = []
        for n in 1...4 { placed += pool.call(call(n), deadline: at(15), now: at(1)) }
        #expect(placed == [.run(call(1), on: instance(1)), .run(call(2), on: instance(2)), .run(call(3), on: instance(3)), .run(call(4), on: instance(1))])
        _ = pool.finished(call(3), on: instance(3), now: at(2))
        #expect(pool.call(call(5), deadline: at(15), now: at(2)) == [.run(call(5), on: instance(3))], "the one with no call in flight")
        _ = pool.finished(call(2), on: instance(2), now: at(3))
        _ = pool.finished(call(5), on: instance(3), now: at(3))
        #expect(pool.call(call(6), deadline: at(15), now: at(3)) == [.run(call(6), on: instance(2))], "2 and 3 idle: the older")
    }

    @Test func aCallWaitingPastItsDeadlineFailsWithoutRunning() {
        var pool = machine(max: 1)
        warmed(&pool, 1)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        _ = pool.call(call(2), deadline: at(5), now: at(0))
        #expect(pool.nextWakeUp == at(5))
        #expect(pool.tick(now: at(4.9)).isEmpty)
        #expect(pool.tick(now: at(5)) == [.fail(call(2), .timedOut)])
        #expect(pool.finished(call(1), on: instance(1), now: at(6)).isEmpty, "call 2 never runs")
    }

    @Test func aCancelledCallNeverRuns() {
        var pool = machine(max: 1)
        warmed(&pool, 1)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        _ = pool.call(call(2), deadline: at(15), now: at(0))
        _ = pool.call(call(3), deadline: at(15), now: at(0))
        pool.cancel(call(2))
        #expect(pool.finished(call(1), on: instance(1), now: at(1)) == [.run(call(3), on: instance(1))])
    }

    @Test func idleInstancesStopDownToMin() {
        var pool = machine(min: 1, idle: 60)
        warmed(&pool, 3)
        #expect(pool.nextWakeUp == at(60))
        #expect(pool.tick(now: at(59)).isEmpty)
        let stopped = pool.tick(now: at(60))
        #expect(stopped.count == 2 && stopped.allSatisfy { if case .stop = $0 { true } else { false } })
        #expect(pool.counts.idle == 1)
        #expect(pool.nextWakeUp == nil, "min is reached: nothing timed")
    }

    @Test func minZeroScalesToZeroAndTheNextCallStartsAgain() {
        var pool = machine(min: 0, idle: 60)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        _ = pool.started(instance(1), now: at(0))
        _ = pool.finished(call(1), on: instance(1), now: at(1))
        #expect(pool.tick(now: at(61)) == [.stop(instance(1))])
        #expect(pool.instances.isEmpty)
        #expect(pool.call(call(2), deadline: at(80), now: at(70)) == [.start(instance(2))])
    }

    @Test func aBusyInstanceIsNotStoppedForIdleness() {
        var pool = machine(min: 0, idle: 60)
        _ = pool.call(call(1), deadline: at(500), now: at(0))
        _ = pool.started(instance(1), now: at(0))
        #expect(pool.tick(now: at(120)).isEmpty)
    }

    @Test func aReleaseThatCannotStartBacksOffAndSaysWhy() {
        var pool = machine(min: 0)
        #expect(pool.call(call(1), deadline: at(15), now: at(0)) == [.start(instance(1))])
        let failed = pool.startFailed(instance(1), message: "SystemExit at import", now: at(0.1))
        #expect(failed == [.fail(call(1), .cannotStart(message: "SystemExit at import", retryAfter: .seconds(1)))])
        #expect(pool.crashing?.message == "SystemExit at import")
        // During the backoff calls fail at once and nothing starts.
        let refused = pool.call(call(2), deadline: at(15), now: at(0.5))
        #expect(refused.count == 1 && { if case .fail(_, .cannotStart) = refused[0] { true } else { false } }())
        // After it, one start is tried; a second failure doubles the backoff.
        #expect(pool.tick(now: at(1.1)).isEmpty)
        #expect(pool.call(call(3), deadline: at(15), now: at(1.2)) == [.start(instance(2))])
        #expect(pool.startFailed(instance(2), message: "again", now: at(1.3)) == [.fail(call(3), .cannotStart(message: "again", retryAfter: .seconds(2)))])
        #expect(Machine.backoff(afterFailures: 20) == .seconds(60))
        // A start that works clears it.
        _ = pool.tick(now: at(3.4))
        _ = pool.call(call(4), deadline: at(15), now: at(3.5))
        #expect(pool.started(instance(3), now: at(3.6)) == [.run(call(4), on: instance(3))])
        #expect(pool.crashing == nil)
    }

    @Test func anInstanceThatDiesIsReplacedWhileCallsWait() {
        var pool = machine(max: 1)
        warmed(&pool, 1)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        _ = pool.call(call(2), deadline: at(15), now: at(0))
        #expect(pool.exited(instance(1), now: at(1)) == [.start(instance(2))])
        #expect(pool.started(instance(2), now: at(1.1)) == [.run(call(2), on: instance(2))])
    }

    @Test func drainingHandsBackWaitersAndStopsEachInstanceWhenItsCallsAreDone() {
        var pool = machine(max: 2)
        warmed(&pool, 2)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        _ = pool.call(call(2), deadline: at(15), now: at(0))
        _ = pool.call(call(3), deadline: at(15), now: at(0))
        let (actions, waiting) = pool.drain()
        #expect(actions.isEmpty, "both instances are busy")
        #expect(waiting.map(\.call) == [call(3)])
        #expect(pool.call(call(4), deadline: at(15), now: at(0)) == [.fail(call(4), .stopped)])
        #expect(pool.finished(call(1), on: instance(1), now: at(1)) == [.stop(instance(1))])
        #expect(pool.finished(call(2), on: instance(2), now: at(1)) == [.stop(instance(2))])
        #expect(pool.isStopped)
    }

    @Test func anInstanceStillStartingWhenDrainedIsStoppedOnceItStarts() {
        var pool = machine(min: 0)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        let (_, waiting) = pool.drain()
        #expect(waiting.map(\.call) == [call(1)])
        #expect(pool.started(instance(1), now: at(1)) == [.stop(instance(1))])
        #expect(pool.isStopped)
    }

    @Test func lowerMaxRetiresIdleInstancesFirst() {
        var pool = machine(max: 3)
        warmed(&pool, 3)
        _ = pool.call(call(1), deadline: at(15), now: at(0))
        let actions = pool.update(PoolSettings(min: 1, max: 1, concurrency: 1, idle: .seconds(300), queueLimit: 100), now: at(1))
        #expect(actions == [.stop(instance(2)), .stop(instance(3))])
        #expect(pool.counts.busy == 1)
    }

    @Test func warmingFollowsTheOldPoolWithinMax() {
        var pool = machine(min: 1, max: 4)
        #expect(pool.warm(to: 6, now: at(0)).count == 4)
        var small = machine(min: 2, max: 4)
        #expect(small.warm(to: 0, now: at(0)).count == 2)
    }

    @Test func aCallRunsAtOnceOnlyIfAnInstanceIsFreeAndNobodyWaits() {
        var pool = machine(max: 1)
        warmed(&pool, 1)
        #expect(pool.callIfFree(call(1)) == instance(1))
        #expect(pool.callIfFree(call(2)) == nil, "the one instance is busy")
        #expect(pool.waiting == 0, "callIfFree never queues")
        _ = pool.call(call(3), deadline: at(15), now: at(0))
        #expect(pool.finished(call(1), on: instance(1), now: at(1)) == [.run(call(3), on: instance(1))])
        #expect(pool.callIfFree(call(4)) == nil, "call 3 holds it")
    }

    /// The driver's timer (`Pool`) follows `takeWakeUpChange` alone, walking for `nextWakeUp` only
    /// when told `unknown`. Over random events (calls with their own deadlines, finishes, cancels,
    /// starts, failed starts, crashes, new settings, time passing and the timer firing), a timer set
    /// that way must always be at or before the next wake-up: a change not reported would leave
    /// a waiter or an idle stop with no timer, found here as a wake-up earlier than the timer.
    @Test func aTimerKeptByTheReportedChangesIsNeverLaterThanTheNextWakeUp() {
        var random = SplitMix(seed: 23)
        for round in 0..<300 {
            var pool = machine(min: Int.random(in: 0...2, using: &random), max: 4, concurrency: Int.random(in: 1...2, using: &random), idle: 5)
            var timer: ContinuousClock.Instant?
            var now = 0.0
            var nextCall = 1
            var running: [(Machine.CallID, ID)] = []
            var waiting: [Machine.CallID] = []
            var starting: [ID] = []
            func follow(_ actions: [Machine.Action]) {
                for action in actions {
                    switch action {
                    case .start(let id): starting.append(id)
                    case .run(let call, let id):
                        waiting.removeAll { $0 == call }
                        running.append((call, id))
                    case .fail(let call, _): waiting.removeAll { $0 == call }
                    case .stop(let id):
                        starting.removeAll { $0 == id }
                        running.removeAll { $0.1 == id }
                    }
                }
                let due: ContinuousClock.Instant?
                switch pool.takeWakeUpChange() {
                case .none: due = nil
                case .added(let earliest): due = earliest
                case .unknown: due = pool.nextWakeUp
                }
                if let due, timer.map({ due < $0 }) ?? true { timer = due }
            }
            for step in 0..<60 {
                now += Double(Int.random(in: 0...3000, using: &random)) / 1000
                if let due = timer, due <= at(now) {  // the timer fires
                    timer = nil
                    follow(pool.tick(now: at(now)))
                }
                switch Int.random(in: 0..<10, using: &random) {
                case 0, 1, 2:
                    let call = call(nextCall)
                    nextCall += 1
                    waiting.append(call)
                    follow(pool.call(call, deadline: at(now + Double(Int.random(in: 1...40, using: &random))), now: at(now)))
                case 3, 4:
                    guard !running.isEmpty else { continue }
                    let (call, id) = running.remove(at: Int.random(in: 0..<running.count, using: &random))
                    follow(pool.finished(call, on: id, now: at(now), ran: Int.random(in: 0..<5, using: &random) > 0))
                case 5:
                    guard let call = waiting.randomElement(using: &random) else { continue }
                    pool.cancel(call)
                    waiting.removeAll { $0 == call }
                    follow([])
                case 6:
                    guard !starting.isEmpty else { continue }
                    let id = starting.remove(at: Int.random(in: 0..<starting.count, using: &random))
                    if Int.random(in: 0..<6, using: &random) == 0 {
                        follow(pool.startFailed(id, message: "no", now: at(now)))
                    } else {
                        follow(pool.started(id, now: at(now)))
                    }
                case 7:
                    let ids = pool.instances.keys.filter { id in !starting.contains(id) }
                    guard let id = ids.randomElement(using: &random) else { continue }
                    running.removeAll { $0.1 == id }
                    follow(pool.exited(id, now: at(now)))
                case 8:
                    follow(pool.update(
                        PoolSettings(
                            min: Int.random(in: 0...2, using: &random), max: Int.random(in: 1...4, using: &random), concurrency: 1,
                            idle: .seconds(Int.random(in: 1...9, using: &random)), queueLimit: 100),
                        now: at(now)))
                default:
                    follow(pool.tick(now: at(now)))
                }
                if let next = pool.nextWakeUp {
                    #expect(timer.map { $0 <= next } == true, "round \(round), step \(step): a wake-up at \(next - t0) with the timer at \(timer.map { $0 - t0 } as Any)")
                    if timer.map({ $0 <= next }) != true { return }
                }
            }
        }
    }
}
