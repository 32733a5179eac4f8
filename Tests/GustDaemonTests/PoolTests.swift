@testable import GustDaemon
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// The pool's driver with a fake launcher: launches, waits, cancellations,
/// deadlines, crashes and draining, with real tasks and no processes.
@Suite(.timeLimit(.minutes(1)))
struct PoolTests {
    /// Members are numbers; a member "runs" until stopped or crashed.
    final class FakeLauncher: PoolLauncher {
        struct Member: Hashable, Sendable { var number: Int }
        private struct State {
            var launched = 0
            var stopped: [Int] = []
            var exits: [Int: CheckedContinuation<Void, Never>] = [:]
            var gone: Set<Int> = []
            var failNext = false
            var upkeepSettings: (@Sendable () -> PoolSettings)?
            var stoppedWhenUpkeepEnded: [Int]?
        }
        private let state = Mutex(State())

        var launched: Int { state.withLock { $0.launched } }
        var stopped: [Int] { state.withLock { $0.stopped } }
        func failNextLaunch() { state.withLock { $0.failNext = true } }

        func launch() async throws -> Member {
            try state.withLock { state in
                if state.failNext {
                    state.failNext = false
                    throw LaunchError()
                }
                state.launched += 1
                return Member(number: state.launched)
            }
        }

        func stop(_ member: Member) async {
            state.withLock { $0.stopped.append(member.number) }
            end(member)
        }

        func crash(_ number: Int) { end(Member(number: number)) }

        private func end(_ member: Member) {
            let waiter = state.withLock { state in
                state.gone.insert(member.number)
                return state.exits.removeValue(forKey: member.number)
            }
            waiter?.resume()
        }

        func exited(_ member: Member) async {
            await withCheckedContinuation { continuation in
                let gone = state.withLock { state in
                    if state.gone.contains(member.number) { return true }
                    state.exits[member.number] = continuation
                    return false
                }
                if gone { continuation.resume() }
            }
        }

        /// The settings the pool's upkeep reads, once it runs.
        var upkeepSettings: (@Sendable () -> PoolSettings)? { state.withLock { $0.upkeepSettings } }
        /// What was stopped when the pool ended the upkeep (nil: it has not).
        var stoppedWhenUpkeepEnded: [Int]? { state.withLock { $0.stoppedWhenUpkeepEnded } }

        func upkeep(settings: @escaping @Sendable () -> PoolSettings) async {
            state.withLock { $0.upkeepSettings = settings }
            try? await Task.sleep(for: .seconds(3600))  // until the pool cancels it
            state.withLock { $0.stoppedWhenUpkeepEnded = $0.stopped }
        }

        struct LaunchError: Error, CustomStringConvertible { var description: String { "boom at import" } }
    }

    func settings(min: Int = 0, max: Int = 2, queue: Int = 10) -> PoolSettings {
        PoolSettings(min: min, max: max, concurrency: 1, idle: .seconds(300), queueLimit: queue)
    }

    /// A deadline no call should reach (a loaded CI machine can stall for 10 s and more).
    let later = ContinuousClock.now + .seconds(120)

    /// Waits (at most 30 000 steps of 1 ms, so 30 s and more, that let timers and other tasks run) for
    /// `condition`: CI runs every unit suite at once on two cores, where the machine can stall for 10 s.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<30_000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        try #require(condition(), "the pool did not get there within 30 000 steps of 1 ms")
    }

    @Test func aCallFromZeroLaunchesAndGetsTheInstance() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let lease = try await pool.acquire(deadline: later)
            #expect(lease.member.number == 1)
            pool.release(lease)
            let again = try await pool.acquire(deadline: later)
            #expect(again.member.number == 1, "the idle instance serves the next call")
            pool.release(again)
            #expect(launcher.launched == 1)
            pool.drain()
            try await group.next()
            #expect(launcher.stopped == [1])
        }
    }

    /// The gateway's lane takes a free instance without waiting, and gives the slot back
    /// untouched when it cannot send the call after all (its time ran out first).
    @Test func aSlotGivenBackIsFreeAgainAndCountsNoCall() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            #expect(pool.tryAcquire() == nil, "nothing runs yet: a call from zero waits, so the lane leaves it")
            let first = try await pool.acquire(deadline: later)
            pool.release(first)
            let taken = try #require(pool.tryAcquire())
            #expect(pool.tryAcquire() == nil, "its only instance is busy")
            pool.giveBack(taken)
            let again = try #require(pool.tryAcquire(), "the slot is free again")
            pool.release(again)
            #expect(pool.instances.map(\.served) == [2], "two calls ran; the one given back is not counted")
            pool.drain()
            try await group.next()
        }
    }

    @Test func aThirdCallWaitsForOneOfTwoAndACancelledWaiterIsSkipped() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 2), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let first = try await pool.acquire(deadline: later)
            let second = try await pool.acquire(deadline: later)
            #expect(Set([first.member.number, second.member.number]) == [1, 2])
            let cancelled = Task { try await pool.acquire(deadline: later) }
            try await eventually { pool.snapshot.waiting >= 1 }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(pool.snapshot.waiting == 0)
            let third = Task { try await pool.acquire(deadline: later) }
            try await eventually { pool.snapshot.waiting >= 1 }
            pool.release(first)
            #expect(try await third.value.member.number == first.member.number)
            #expect(launcher.launched == 2)
            pool.drain()
            pool.release(second)
            pool.release(try await third.value)
            try await group.next()
        }
    }

    /// A task already cancelled when it asks for an instance it must wait for is out at once,
    /// not queued until its deadline.
    @Test func aCallWhoseTaskIsAlreadyCancelledDoesNotWait() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let busy = try await pool.acquire(deadline: later)
            let cancelled = Task {
                while !Task.isCancelled { await Task.yield() }
                return try await pool.acquire(deadline: .now + .seconds(20))
            }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(pool.snapshot.waiting == 0)
            pool.release(busy)
            pool.drain()
            try await group.next()
        }
    }

    /// What a callback waiter was told, in order.
    final class Told: Sendable {
        private let results = Mutex<[Result<Pool<FakeLauncher>.Lease, any Error>]>([])
        func callAsFunction(_ result: Result<Pool<FakeLauncher>.Lease, any Error>) { results.withLock { $0.append(result) } }
        var all: [Result<Pool<FakeLauncher>.Lease, any Error>] { results.withLock { $0 } }
        var lease: Pool<FakeLauncher>.Lease? { if case .success(let lease) = all.first { lease } else { nil } }
        var failure: (any Error)? { if case .failure(let error) = all.first { error } else { nil } }
    }

    /// The gateway's lane waits without a task: its callback is told once, with the instance
    /// that comes free, with the queue's refusal at once, or with a cancellation when its
    /// client leaves while it waits (`leave`, and then it never takes an instance).
    @Test func aCallbackWaiterGetsTheNextFreeInstanceOrIsToldWhyNot() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1, queue: 2), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let busy = try await pool.acquire(deadline: later)

            let leaving = Told(), staying = Told(), refused = Told()
            let leavingCall = pool.newCall()
            pool.acquire(leavingCall, deadline: later) { leaving($0) }
            pool.acquire(pool.newCall(), deadline: later) { staying($0) }
            #expect(pool.snapshot.waiting == 2)
            pool.acquire(pool.newCall(), deadline: later) { refused($0) }
            #expect(
                (refused.failure as? Pool<FakeLauncher>.Failure)?.reason == .queueFull(limit: 2),
                "told at once: \(refused.all)")

            pool.leave(leavingCall)
            #expect(leaving.failure is CancellationError, "\(leaving.all)")
            #expect(pool.snapshot.waiting == 1, "the call whose client left is out of the queue")
            pool.leave(leavingCall)
            pool.leave(pool.newCall())
            #expect(leaving.all.count == 1 && pool.snapshot.waiting == 1, "leaving again, or a call never queued, changes nothing")

            pool.release(busy)
            let lease = try #require(staying.lease, "the next free instance goes to the waiter still there")
            #expect(lease.member == busy.member)
            #expect([leaving.all.count, staying.all.count, refused.all.count] == [1, 1, 1], "each is told once")
            pool.release(lease)
            #expect(pool.instances.map(\.served) == [2], "the calls whose clients left never ran")

            pool.drain()
            try await group.next()
        }
    }

    /// A call holding its instance for long (a WebSocket) is told when the pool drains, so that
    /// it lets go; one registered after the drain is told at once, one forgotten is never told.
    @Test func whatHoldsAnInstanceIsToldWhenThePoolDrains() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 2), launcher: launcher)
        let told = Mutex<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let socket = try await pool.acquire(deadline: later)
            _ = pool.whenDraining { told.withLock { $0.append("socket") } }
            let forget = pool.whenDraining { told.withLock { $0.append("forgotten") } }
            forget()
            #expect(told.withLock { $0 }.isEmpty)
            pool.drain()
            #expect(told.withLock { $0 } == ["socket"])
            _ = pool.whenDraining { told.withLock { $0.append("late") } }
            #expect(told.withLock { $0 } == ["socket", "late"])
            pool.release(socket)  // the socket let go: the pool can end
            try await group.next()
        }
    }

    /// A call that waits sets the pool's timer for its deadline. Once the queue is empty again the
    /// timer is kept (it ticks for nothing when due) rather than cancelled: under load the queue
    /// fills and empties call after call, and each time a timer was set and cancelled (a lock and
    /// a heap operation on the loop, and a wake-up when set from another thread).
    @Test func aQueueThatEmptiesKeepsItsTimerForTheNextWaiter() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(min: 1, max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            var busy = try await pool.acquire(deadline: later)  // waits for the launch: a timer for `later`
            #expect(pool.timersSet == 1)
            for _ in 0..<3 {
                let waiter = Told()
                pool.acquire(pool.newCall(), deadline: later) { waiter($0) }
                #expect(pool.snapshot.waiting == 1)
                pool.release(busy)
                let lease = try #require(waiter.lease)
                #expect(pool.snapshot.waiting == 0)
                pool.release(lease)
                busy = try #require(pool.tryAcquire())
            }
            #expect(pool.timersSet == 1, "three more waits, and no timer set or cancelled for them")
            pool.release(busy)
            pool.drain()
            try await group.next()
        }
    }

    @Test func aWaiterPastItsDeadlineTimesOut() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let busy = try await pool.acquire(deadline: later)
            await #expect(throws: Pool<FakeLauncher>.Failure(reason: .timedOut)) {
                try await pool.acquire(deadline: .now + .milliseconds(50))
            }
            pool.release(busy)
            pool.drain()
            try await group.next()
        }
    }

    @Test func aCrashedInstanceIsReplacedAndAFailedStartBacksOff() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let lease = try await pool.acquire(deadline: later)
            launcher.crash(lease.member.number)
            pool.release(lease)
            try await eventually { pool.snapshot.counts.idle + pool.snapshot.counts.busy == 0 }
            let next = try await pool.acquire(deadline: later)
            #expect(next.member.number == 2)
            launcher.crash(2)
            pool.release(next)
            try await eventually { pool.snapshot.counts.idle + pool.snapshot.counts.busy == 0 }
            launcher.failNextLaunch()
            do {
                _ = try await pool.acquire(deadline: later)
                Issue.record("a failed start must fail the waiting call")
            } catch let failure as Pool<FakeLauncher>.Failure {
                guard case .cannotStart(let message, _) = failure.reason else { throw failure }
                #expect(message == "boom at import")
            }
            #expect(pool.snapshot.crashing == "boom at import")
            pool.drain()
            try await group.next()
        }
    }

    @Test func drainingFailsWaitersWithStoppedAndLetsTheBusyCallFinish() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let busy = try await pool.acquire(deadline: later)
            let waiter = Task { try await pool.acquire(deadline: later) }
            try await eventually { pool.snapshot.waiting >= 1 }
            pool.drain()
            await #expect(throws: Pool<FakeLauncher>.Failure(reason: .stopped)) { try await waiter.value }
            #expect(launcher.stopped.isEmpty, "the busy instance finishes its call first")
            pool.release(busy)
            try await group.next()
            #expect(launcher.stopped == [1])
        }
    }

    @Test func theLaunchersUpkeepSeesTheCurrentSettingsAndEndsAfterTheLastStop() async throws {
        let launcher = FakeLauncher()
        let pool = Pool(settings: settings(max: 1), launcher: launcher)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            let busy = try await pool.acquire(deadline: later)
            try await eventually { launcher.upkeepSettings != nil }
            #expect(launcher.upkeepSettings?().idle == .seconds(300))
            pool.update(PoolSettings(min: 0, max: 1, concurrency: 1, idle: .seconds(7), queueLimit: 10))
            #expect(launcher.upkeepSettings?().idle == .seconds(7), "a change of scale reaches the launcher")
            pool.drain()
            #expect(launcher.stoppedWhenUpkeepEnded == nil, "the upkeep runs while an instance does")
            pool.release(busy)
            try await group.next()
            #expect(launcher.stoppedWhenUpkeepEnded == [1], "it ends with the pool, after its last instance stopped")
        }
    }
}
