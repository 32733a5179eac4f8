import Foundation
import GustCore
import GustTesting
import Testing

/// gustd runs a pushed app's schedules: repeatedly, on the anchor's grid across
/// redeploys and restarts, never overlapping; a bad spec rejects the push.
/// Serialized: these tests measure timing, and a 2-core box running them side
/// by side would blur what they measure.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct ScheduleTests {
    /// An app with one schedule that prints `gust-tick: LABEL START END` (Unix times) on each run,
    /// read back from the app's log in `home` (a sandboxed app writes no file the test sees).
    static func tickingApp(_ work: GitWorkspace, file home: GustHome, label: String, every spec: String = "2s", sleep: Double = 0) throws {
        try work.write("__init__.py", """
            import time

            import gust

            @gust.every('\(spec)')
            def tick():
                start = time.time()
                print('tick tock from \(label)', flush=True)
                time.sleep(\(sleep))
                print(f'gust-tick: \(label) {start} {time.time()}', flush=True)

            @gust.op('hello')
            def hello():
                return '\(label)'

            """)
    }

    /// The runs the app's log holds so far: (label, start, end).
    static func ticks(_ home: GustHome) -> [(label: String, start: Double, end: Double)] {
        AppLogMarks.read(home, app: "cats", prefix: "gust-tick: ").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, let start = Double(parts[1]), let end = Double(parts[2]) else { return nil }
            return (String(parts[0]), start, end)
        }
    }

    /// Waits (bounded) until `condition` holds.
    static func wait(upTo seconds: Double, until condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    /// How far `time` is from the nearest point of `anchor + k × step`.
    static func offGrid(_ time: Double, anchor: Double, step: Double) -> Double {
        let phase = (time - anchor).truncatingRemainder(dividingBy: step)
        return min(abs(phase), step - abs(phase))
    }

    @Test(.scratchDirectory) func aTwoSecondScheduleRunsRepeatedlyAndIsListed() throws {
        let fixture = try PushFixture()
        let ticks = fixture.home
        let work = try fixture.workspace("py")
        try Self.tickingApp(work, file: ticks, label: "one")
        try work.commit("Ticks")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("remote:        schedule tick every 2s"), "\(push.stderr)")

        #expect(Self.wait(upTo: 20) { Self.ticks(ticks).count >= 3 }, "three runs within 20 s")
        let starts = Self.ticks(ticks).map(\.start)
        for (earlier, later) in zip(starts, starts.dropFirst()) {
            #expect(abs(later - earlier - 2) < 0.8, "runs 2 s apart: \(starts)")
        }

        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "200"]).stdout
        #expect(logs.contains("tick tock from one"), "\(logs)")
        #expect(logs.contains("[schedule tick] Run started"))
        #expect(logs.contains("[schedule tick] Run finished in"))
        let onlyTick = try GustBinaries.gust(fixture.home, ["logs", "cats", "--function", "tick"]).stdout
        #expect(onlyTick.contains("Run finished"))
        // What the function itself printed is tagged with it too.
        #expect(onlyTick.contains("[schedule tick] tick tock from one"), "\(onlyTick)")
        let noSuchFunction = try GustBinaries.gust(fixture.home, ["logs", "cats", "--function", "tock"]).stdout
        #expect(!noSuchFunction.contains("tick tock"), "\(noSuchFunction)")

        let listing = try GustBinaries.gust(fixture.home, ["schedules", "cats"])
        #expect(listing.status == 0, "\(listing.output)")
        #expect(listing.stdout.contains("tick  every 2s  next "), "\(listing.stdout)")
        #expect(listing.stdout.contains("ok"))
        let json = try GustBinaries.gust(fixture.home, ["schedules", "cats", "--json"])
        let schedules = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(schedules.count == 1)
        #expect(schedules.first?["name"] as? String == "tick")
        // Shown from the anchor's grid: a run 2 s or less ahead. gustd wrote it when it installed the
        // schedule, not at every run since (each a write of the shared store).
        let shownNext = (schedules.first?["nextRun"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
        let ahead = (shownNext ?? .distantPast).timeIntervalSinceNow
        #expect(ahead > -1 && ahead <= 3, "\(String(describing: schedules.first?["nextRun"]))")
        let stored = try #require(try fixture.store().schedules(try AppName("cats")).first)
        #expect((stored.nextRun ?? .distantPast) < Date(), "the stored next run is the one of the install: \(String(describing: stored.nextRun))")
        let runs = schedules.first?["runs"] as? [[String: Any]] ?? []
        #expect(runs.count >= 2)
        #expect(runs.contains { $0["status"] as? String == "ok" && $0["release"] as? Int == 1 })
    }

    @Test(.scratchDirectory) func aRedeployAndARestartKeepTheAnchorsGrid() throws {
        let fixture = try PushFixture()
        let app = try AppName("cats")
        let ticks = fixture.home
        let work = try fixture.workspace("py")
        try Self.tickingApp(work, file: ticks, label: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(Self.wait(upTo: 20) { Self.ticks(ticks).count >= 2 })
        let anchor = try #require(try fixture.store().schedules(app).first?.anchor.timeIntervalSince1970)

        try Self.tickingApp(work, file: ticks, label: "two")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let deployed = Date().timeIntervalSince1970
        #expect(Self.wait(upTo: 20) { Self.ticks(ticks).filter { $0.label == "two" }.count >= 2 })
        #expect(try fixture.store().schedules(app).first?.anchor.timeIntervalSince1970 == anchor, "the redeploy kept the anchor")

        let runs = try fixture.store().runs(app, schedule: "tick").reversed()
        let firstOfTwo = try #require(runs.first { $0.release == 2 })
        let started = firstOfTwo.startedAt.timeIntervalSince1970
        #expect(Self.offGrid(started, anchor: anchor, step: 2) < 0.5, "first run after the redeploy at \(started) is on the grid of \(anchor)")
        #expect(started - deployed < 2.5, "it came at the next grid point, not 2 s after the deploy ended")
        for run in runs where run.status == .ok {
            #expect(Self.offGrid(run.startedAt.timeIntervalSince1970, anchor: anchor, step: 2) < 0.5, "run \(run.startedAt.timeIntervalSince1970 - anchor) of v\(run.release) \(run.status) \(run.error ?? ""); all: \(runs.map { ($0.startedAt.timeIntervalSince1970 - anchor, $0.release, $0.status.rawValue) })")
        }

        // SIGKILL and start again: same anchor, runs stay on the grid.
        let gustd = try #require(fixture.gustd)
        gustd.kill9()
        try gustd.start()
        let restarted = Date()
        #expect(try Self.wait(upTo: 20) { try fixture.store().runs(app, schedule: "tick").contains { $0.startedAt > restarted && $0.status == .ok } })
        #expect(try fixture.store().schedules(app).first?.anchor.timeIntervalSince1970 == anchor)
        for run in try fixture.store().runs(app, schedule: "tick") where run.startedAt > restarted {
            #expect(Self.offGrid(run.startedAt.timeIntervalSince1970, anchor: anchor, step: 2) < 0.5, "run \(run.startedAt.timeIntervalSince1970 - anchor) of v\(run.release) \(run.status) \(run.error ?? ""); all: \(runs.map { ($0.startedAt.timeIntervalSince1970 - anchor, $0.release, $0.status.rawValue) })")
        }
        #expect(try fixture.store().runs(app, schedule: "tick").allSatisfy { $0.status != .running || $0.startedAt > restarted })

        // A deploy without the schedule stops it.
        try work.write("__init__.py", "import gust\n\n@gust.op('hello')\ndef hello():\n    return 'three'\n")
        try work.commit("Three")
        #expect(try work.push(to: fixture.remote).status == 0)
        let count = Self.ticks(ticks).count
        Thread.sleep(forTimeInterval: 3)
        #expect(Self.ticks(ticks).count <= count + 1, "at most a run already in flight finishes")
        #expect(try fixture.store().schedules(app).isEmpty)
    }

    @Test(.scratchDirectory) func aRunThatOutlastsItsIntervalIsNeverOverlapped() throws {
        let fixture = try PushFixture()
        let app = try AppName("cats")
        let ticks = fixture.home
        let work = try fixture.workspace("py")
        try Self.tickingApp(work, file: ticks, label: "slow", every: "1s", sleep: 2.5)
        try work.commit("Slow")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(Self.wait(upTo: 25) { Self.ticks(ticks).count >= 3 })

        let runs = Self.ticks(ticks)
        for (earlier, later) in zip(runs, runs.dropFirst()) {
            #expect(later.start >= earlier.end, "run starting at \(later.start) began before the one before it ended at \(earlier.end)")
        }
        let recorded = try fixture.store().runs(app, schedule: "tick")
        #expect(recorded.contains { $0.status == .skipped })
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "200"]).stdout
        #expect(logs.contains("skipped: the previous run was still going"), "\(logs)")
        let listing = try GustBinaries.gust(fixture.home, ["schedules", "cats"]).stdout
        #expect(listing.contains("skipped"))
    }

    /// A release that stops declaring a schedule while its run goes on, then one that declares it
    /// again: the run in flight still counts. It was forgotten with the entry, so the next run
    /// began beside it, and its end then cleared the new run's mark, so that runs kept overlapping.
    @Test(.scratchDirectory) func aScheduleDroppedAndDeclaredAgainDuringARunIsNeverOverlapped() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import os
            import time

            import gust

            if os.environ.get('TICK') != 'off':
                @gust.every('1s')
                def tick():
                    start = time.time()
                    time.sleep(6)
                    print(f'gust-tick: slow {start} {time.time()}', flush=True)

            @gust.op('hello')
            def hello():
                return 'hi'

            """)
        try work.commit("Ticking")
        #expect(try work.push(to: fixture.remote).status == 0)
        // A run is going (its start is printed at its end: wait for the first to be under way).
        #expect(Self.wait(upTo: 10) { (try? fixture.store().runs(try AppName("cats"), schedule: "tick").isEmpty == false) ?? false })
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "TICK=off"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["config", "unset", "cats", "TICK"]).status == 0)
        #expect(Self.wait(upTo: 40) { Self.ticks(fixture.home).count >= 3 })
        let runs = Self.ticks(fixture.home).sorted { $0.start < $1.start }
        for (earlier, later) in zip(runs, runs.dropFirst()) {
            #expect(later.start >= earlier.end, "a run starting at \(later.start) began before the one before it ended at \(earlier.end)")
        }
    }

    @Test(.scratchDirectory) func aBadSpecRejectsThePushAndTheOldReleaseKeepsServing() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", "import gust\n\n@gust.op('hello')\ndef hello():\n    return {'v': 'one'}\n")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)

        // The runtime lets 61 through (it checks the shape); gustd's parser, the one that runs it, refuses it.
        try work.write("__init__.py", """
            import gust

            @gust.cron('61 * * * *')
            def nightly():
                print('never')

            @gust.op('hello')
            def hello():
                return {'v': 'two'}

            """)
        try work.commit("Bad cron")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0)
        #expect(push.stderr.contains("schedule nightly: '61 * * * *' is not a valid cron expression"), "\(push.stderr)")
        #expect(push.stderr.contains("keeps serving v1"))
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").json?["v"] as? String == "one")

        // One the runtime refuses at import names the function and spec too. An amount whose seconds
        // overflow an Int the runtime lets through, and gustd's parser trapped on it (one push took
        // every app down with gustd): it is refused as too long.
        for (spec, saying) in [("2 minutes", "is not an interval"), ("999999999999999999h", "is longer than a schedule's interval may be: at most 366 days")] {
            try work.write("__init__.py", "import gust\n\n@gust.every('\(spec)')\ndef meow():\n    pass\n")
            try work.commit("Every \(spec)")
            let again = try work.push(to: fixture.remote)
            #expect(again.status != 0)
            #expect(again.stderr.contains("schedule meow: '\(spec)' \(saying)"), "\(again.stderr)")
            #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").json?["v"] as? String == "one")
        }
        #expect(try fixture.releases().first?["status"] as? String == "failed")
    }
}
