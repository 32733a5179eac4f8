import Foundation
import GustCore
import GustTesting
import Testing

/// The schedules table keeps an `every` schedule's anchor across deploys and
/// restarts; the runs table stays bounded.
@Suite struct ScheduleStoreTests {
    func declared(_ name: String, _ spec: String, kind: String = "every", zone: String = "UTC") -> StoredSchedule {
        StoredSchedule(app: try! AppName("cats"), name: name, kind: kind, spec: spec, anchor: .distantPast, timeZone: zone, release: 0)
    }

    func storeWithApp() throws -> (Store, AppName) {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats")
        _ = try store.createApp(cats)
        return (store, cats)
    }

    @Test(.scratchDirectory) func aRedeployKeepsAnchorsAChangedSpecReanchorsARemovedScheduleGoes() throws {
        let (store, cats) = try storeWithApp()
        let first = Date(timeIntervalSince1970: 1_000)
        try store.replaceSchedules(cats, release: 1, with: [declared("tick", "2s"), declared("tock", "1m"), declared("old", "1h")], now: first)

        let later = Date(timeIntervalSince1970: 1_333)
        let after = try store.replaceSchedules(cats, release: 2, with: [declared("tick", "2s"), declared("tock", "5m")], now: later)
        #expect(after.map(\.name) == ["tick", "tock"])
        #expect(after.map(\.release) == [Int]([2, 2]))
        #expect(after[0].anchor == first, "unchanged spec: the count goes on")
        #expect(after[1].anchor == later, "changed spec: anchored anew")

        // What a restarted gustd reads.
        let reopened = try Store(home: store.home)
        #expect(try reopened.schedules(cats).first?.anchor == first)
        #expect(try reopened.liveSchedules().isEmpty, "cats has no live release")
        try reopened.setLive(cats, version: 2)
        #expect(try reopened.liveSchedules().map(\.name) == ["tick", "tock"])
    }

    /// SQLite keys names by their bytes, Swift compares them by canonical equivalence: "é" as one
    /// scalar and as "e" + U+0301 are two rows, one String. Building a dictionary of them trapped
    /// gustd at the app's next deploy and at every start.
    @Test(.scratchDirectory) func namesEqualToSwiftButNotToSQLiteAreKeptApartByTheirBytes() throws {
        let (store, cats) = try storeWithApp()
        let (composed, decomposed) = ("\u{E9}t\u{E9}", "e\u{301}te\u{301}")
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        let first = Date(timeIntervalSince1970: 1_000)
        try store.replaceSchedules(cats, release: 1, with: [declared(composed, "2s"), declared(decomposed, "1m")], now: first)
        #expect(try store.schedules(cats).count == 2)

        let later = Date(timeIntervalSince1970: 1_333)
        let after = try store.replaceSchedules(cats, release: 2, with: [declared(decomposed, "1m")], now: later)
        #expect(after.count == 1 && Array(after[0].name.utf8) == Array(decomposed.utf8), "the other spelling is removed")
        #expect(after[0].anchor == first, "the same bytes and spec: the count goes on")
    }

    @Test(.scratchDirectory) func theNextRunFollowsTheAnchorAndTheZone() throws {
        let (store, cats) = try storeWithApp()
        let anchor = Date(timeIntervalSince1970: 1_000)
        let stored = try store.replaceSchedules(
            cats, release: 1, with: [declared("tick", "2s"), declared("wake", "0 8 * * *", kind: "cron", zone: "America/New_York")], now: anchor
        )
        #expect(stored[0].next(after: Date(timeIntervalSince1970: 1_003.5)) == Date(timeIntervalSince1970: 1_004))
        // 2026-01-10 (no DST in January): 08:00 in New York is 13:00 UTC.
        let morning = ISO8601DateFormatter().date(from: "2026-01-10T13:00:00Z")!
        #expect(stored[1].next(after: ISO8601DateFormatter().date(from: "2026-01-10T09:00:00Z")!) == morning)
    }

    @Test(.scratchDirectory) func runsAreRecordedBoundedAndAbandonedOnesBecomeErrors() throws {
        let (store, cats) = try storeWithApp()
        for index in 0..<(Store.runsKeptPerSchedule + 7) {
            let id = try store.recordRun(cats, schedule: "tick", release: 1, startedAt: Date(timeIntervalSince1970: Double(index)))
            try store.finishRun(id, seconds: 0.5, status: .ok)
        }
        _ = try store.recordRun(cats, schedule: "tock", release: 1, startedAt: Date(), status: .skipped, error: "skipped: busy")
        let running = try store.recordRun(cats, schedule: "tick", release: 1, startedAt: Date(timeIntervalSince1970: 999))

        let runs = try store.runs(cats, schedule: "tick")
        #expect(runs.count == Store.runsKeptPerSchedule)
        #expect(runs.first?.id == running)
        #expect(runs.first?.status == .running)
        #expect(runs.last?.startedAt == Date(timeIntervalSince1970: 8), "the oldest went first")
        #expect(try store.runs(cats, schedule: "tock").first?.status == .skipped)

        #expect(try store.abandonRunningRuns(because: "gustd stopped") == 1)
        let abandoned = try store.runs(cats, schedule: "tick", limit: 1).first
        #expect(abandoned?.status == .error)
        #expect(abandoned?.error == "gustd stopped")
    }

    /// gustd writes a schedule's next run when it installs it, not at every run: what is shown
    /// is that time while it is ahead, else the next on the anchor's grid.
    @Test func theUpcomingRunIsTheStoredOneWhileAheadElseTheNextOnTheGrid() throws {
        let anchor = Date(timeIntervalSince1970: 1_000_000)
        var schedule = StoredSchedule(
            app: try AppName("cats"), name: "tick", kind: "every", spec: "10s", anchor: anchor, release: 1,
            nextRun: anchor.addingTimeInterval(10))
        #expect(schedule.upcoming(at: anchor.addingTimeInterval(3)) == anchor.addingTimeInterval(10))
        #expect(schedule.upcoming(at: anchor.addingTimeInterval(3_604)) == anchor.addingTimeInterval(3_610))
        schedule.nextRun = nil
        #expect(schedule.upcoming(at: anchor.addingTimeInterval(25)) == anchor.addingTimeInterval(30))
    }
}
