import GustCore
import Synchronization
import Testing

@testable import GustDaemon

/// One build of an app at a time, in order; other apps' builds do not wait.
struct BuildTurnsTests {
    @Test func aSecondBuildOfAnAppWaitsForTheFirstAndAnotherAppsDoesNot() async throws {
        let turns = BuildTurns()
        let cats = try AppName("cats")
        let log = Log()
        await turns.take(cats)
        await turns.take(try AppName("dogs"))  // returns at once: another app
        let second = Task {
            await turns.take(cats)
            log.append("second")
            turns.give(cats)
        }
        try await Self.settle { turns.waitingCount(cats) == 1 }
        let third = Task {  // asks after the second
            await turns.take(cats)
            log.append("third")
            turns.give(cats)
        }
        try await Self.settle { turns.waitingCount(cats) == 2 }
        log.append("first")
        turns.give(cats)
        await second.value
        await third.value
        #expect(log.entries == ["first", "second", "third"])
        await turns.take(cats)  // free again
        turns.give(cats)
    }

    /// Waits for `condition`, at most 30 000 steps of 1 ms (30 s and more: CI runs every unit suite
    /// at once on two cores, where the machine can stall for 10 s), not a count of yields a stalled thread outlasts.
    static func settle(_ condition: () -> Bool) async throws {
        for _ in 0..<30_000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        try #require(condition())
    }
}

/// What the builds did, in order.
private final class Log: Sendable {
    private let storage = Mutex<[String]>([])
    var entries: [String] { storage.withLock { $0 } }
    func append(_ entry: String) { storage.withLock { $0.append(entry) } }
}
