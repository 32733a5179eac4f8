import Foundation
import GustCore
import GustTesting
import Testing

/// The way from "no instance" to the first answer, behind a real gustd: the call that
/// made an instance start is sent on the connection the start opened (and read the
/// manifest on), not on a new one. The Python runtime serves the first connection on
/// its main thread and each other on a thread of its own, so the instance shows it:
/// the call runs on the main thread, and no other serves.
/// (How long a start takes is the benchmarks' business: docs/benchmarks.md.)
@Suite(.timeLimit(.minutes(20)))
struct StartHandOffTests {
    static let app = """
        import os
        import threading

        import gust

        @gust.op('threads')
        def threads():
            return {'pid': os.getpid(), 'thread': threading.current_thread().name,
                    'threads': sorted(t.name for t in threading.enumerate())}
        """

    @Test(.scratchDirectory) func theFirstCallAfterAStartTakesTheConnectionTheStartOpened() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "\(push.output)")
        let scale = try GustBinaries.gust(fixture.home, ["scale", "cats", "--min", "0", "--max", "1", "--idle", "1s"])
        try #require(scale.status == 0, "\(scale.output)")

        // gustd runs an event loop per core and a call prefers a connection on its own loop: without
        // the hand-off, about every other first call would open a second connection.
        var pids: Set<Int> = []
        for round in 1...5 {
            var stopped = false
            for _ in 0..<200 {
                let ps = try GustBinaries.gust(fixture.home, ["ps", "cats", "--json"])
                if ps.status == 0, ((try? JSONSerialization.jsonObject(with: Data(ps.stdout.utf8))) as? [Any])?.isEmpty == true {
                    stopped = true
                    break
                }
                usleep(50_000)
            }
            try #require(stopped, "round \(round): the instance did not stop after idle")
            let answer = try fixture.call("POST", "/_/functions/threads", body: "{}")
            try #require(answer.status == 200, "\(answer.text)")
            let threads = answer.json?["threads"] as? [String] ?? []
            #expect(answer.json?["thread"] as? String == "MainThread" && threads == ["MainThread"], "round \(round): \(answer.text)")
            pids.insert(answer.json?["pid"] as? Int ?? 0)
        }
        #expect(pids.count == 5, "each round was a new instance: \(pids)")
    }
}
