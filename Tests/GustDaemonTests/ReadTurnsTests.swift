import Dispatch
import GustCore
import Synchronization
import Testing

@testable import GustDaemon

/// Whose record query runs next: the rules by hand (apps as letters, waiters as
/// numbers), then `RecordReads` with real threads held by the test, no sleeps.
@Suite struct ReadTurnsTests {
    typealias Turns = ReadTurns<String, Int>

    @Test func anAppRunsOneQueryAtATimeAndItsOthersWaitInOrder() {
        var turns = Turns(threads: 2, waitingLimit: 4)
        #expect(turns.arrive("a", id: 1, 1) == .run)
        #expect(turns.arrive("a", id: 2, 2) == .wait, "a thread is free, but a's query runs")
        #expect(turns.arrive("a", id: 3, 3) == .wait)
        #expect(turns.finish("a") == 2)
        #expect(turns.finish("a") == 3)
        #expect(turns.finish("a") == nil)
        #expect(turns.running.isEmpty)
    }

    @Test func anotherAppRunsBesideABusyOneAndAppsTakeTurnsWhenThreadsAreFull() {
        var turns = Turns(threads: 2, waitingLimit: 4)
        #expect(turns.arrive("a", id: 1, 1) == .run)
        #expect(turns.arrive("a", id: 2, 2) == .wait)
        #expect(turns.arrive("a", id: 3, 3) == .wait)
        #expect(turns.arrive("b", id: 4, 4) == .run, "b is not held up by a's queue")
        #expect(turns.arrive("c", id: 5, 5) == .wait, "both threads busy")
        // a finishes: c has waited longer than a's next query, so c runs first.
        #expect(turns.finish("a") == 5)
        #expect(turns.finish("b") == 2, "then a's next")
        #expect(turns.finish("c") == nil, "a's last waits for a's running one")
        #expect(turns.finish("a") == 3)
        #expect(turns.running == ["a"])
    }

    @Test func pastItsWaitingLimitAnAppsQueryIsRefusedAndOthersAreNot() {
        var turns = Turns(threads: 1, waitingLimit: 2)
        #expect(turns.arrive("a", id: 1, 1) == .run)
        #expect(turns.arrive("a", id: 2, 2) == .wait)
        #expect(turns.arrive("a", id: 3, 3) == .wait)
        #expect(turns.arrive("a", id: 4, 4) == .refuse)
        #expect(turns.arrive("b", id: 5, 5) == .wait)
        #expect(turns.waitingCount(of: "a") == 2)
    }

    @Test func aWithdrawnQueryLeavesTheLineAndAnAppWithNoneLeftLosesItsTurn() {
        var turns = Turns(threads: 1, waitingLimit: 4)
        #expect(turns.arrive("a", id: 1, 1) == .run)
        #expect(turns.arrive("b", id: 2, 2) == .wait)
        #expect(turns.arrive("c", id: 3, 3) == .wait)
        #expect(turns.withdraw("b", id: 2) == 2)
        #expect(turns.withdraw("b", id: 2) == nil, "once")
        #expect(turns.finish("a") == 3, "b has no turn left")
        #expect(turns.finish("c") == nil)
        #expect(turns.finish("c") == nil, "a finish of nothing running frees nothing")
    }

    /// An app whose query holds a thread (the test holds it, as a slow query would) does not
    /// hold up another app's, and its own next query waits for it.
    @Test func aHeldQueryHoldsNoOtherAppsQueryAndItsOwnNextWaits() async throws {
        let (slowApp, other) = (try AppName("slow"), try AppName("other"))
        let reads = RecordReads(threads: 2, waitingLimit: 1)
        let held = Gate()
        let order = Events()
        async let slow: Void = reads.run(slowApp) {
            order.note("slow began")
            held.wait()
            order.note("slow ended")
        }
        try await until { order.all == ["slow began"] }
        async let second: Void = reads.run(slowApp) { order.note("slow's second") }
        try await reads.run(other) { order.note("other") }
        #expect(order.all == ["slow began", "other"])
        // One waits already; one more is refused with the app's name.
        try await until { reads.waiting(of: slowApp) == 1 }
        await #expect { try await reads.run(slowApp) {} } throws: { ($0 as? GustError)?.code == 429 }
        held.open()
        _ = try await (slow, second)
        #expect(order.all == ["slow began", "other", "slow ended", "slow's second"])
    }

    @Test func aCancelledWaitingQueryNeverRunsAndFreesItsPlace() async throws {
        let app = try AppName("a")
        let reads = RecordReads(threads: 1, waitingLimit: 1)
        let held = Gate()
        async let slow: Void = reads.run(app) { held.wait() }
        try await until { reads.running == [app] }
        let ran = Events()
        let waiting = Task { try await reads.run(app) { ran.note("ran") } }
        try await until { reads.waiting(of: app) == 1 }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(reads.waiting(of: app) == 0)
        held.open()
        try await slow
        try await reads.run(app) {}
        #expect(ran.all.isEmpty)
    }

    /// Waits for `condition`, yielding between looks, for 60 s at most: the tasks it waits for run
    /// on the shared cooperative pool (two threads on two cores), which other suites' tests, run
    /// at the same time, can hold for seconds with waits of their own (10 s was once not enough in CI).
    private func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw GustError("gave up waiting") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// A door a pool thread waits at until the test opens it (90 s at most, should a test fail first:
/// longer than `until` waits).
private final class Gate: Sendable {
    private let door = DispatchSemaphore(value: 0)
    func open() { door.signal() }
    func wait() { _ = door.wait(timeout: .now() + 90) }
}

/// What the queries did, in order.
private final class Events: Sendable {
    private let events = Mutex<[String]>([])
    func note(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}
