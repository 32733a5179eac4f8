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
        let third = Task {
            for _ in 0..<20 { await Task.yield() }  // asks after the second
            await turns.take(cats)
            log.append("third")
            turns.give(cats)
        }
        for _ in 0..<100 { await Task.yield() }  // the others run as far as they can
        log.append("first")
        turns.give(cats)
        await second.value
        await third.value
        #expect(log.entries == ["first", "second", "third"])
        await turns.take(cats)  // free again
        turns.give(cats)
    }
}

/// What the builds did, in order.
private final class Log: Sendable {
    private let storage = Mutex<[String]>([])
    var entries: [String] { storage.withLock { $0 } }
    func append(_ entry: String) { storage.withLock { $0.append(entry) } }
}
