@testable import GustDaemon
import GustCore
import Testing

/// Schedule names come from the app's own code: gustd takes each name once, in a form it can
/// store, list and log, and refuses the deploy otherwise, naming what to change.
@Suite struct ScheduleNamesTests {
    func manifest(_ names: [String]) -> FunctionManifest {
        FunctionManifest(
            protocolVersion: 2, runtime: nil, ops: [], handlers: [],
            schedules: names.map { .init(name: $0, every: "1h", cron: nil, params: nil) }, hooks: []
        )
    }

    func declared(_ names: [String]) throws(GustError) -> [StoredSchedule] {
        try Scheduler.declared(by: manifest(names), app: try! AppName("cats"), release: 3, config: [:])
    }

    @Test func ordinaryNamesAreTaken() throws {
        #expect(try declared(["tick", "<lambda>", "été", "nightly_report"]).map(\.name) == ["tick", "<lambda>", "été", "nightly_report"])
    }

    @Test(arguments: [
        (["tick", "tick"], "schedule tick is declared twice"),
        (["\u{E9}t\u{E9}", "e\u{301}te\u{301}"], "is declared twice"),
        ([""], "has no name"),
        (["tick\nschedule forged"], "control character"),
        (["tick\u{7}"], "control character"),
        ([String(repeating: "a", count: 129)], "longer than 128 characters"),
    ])
    func namesGustdCannotKeepApartOrShowAreRefused(_ names: [String], _ saying: String) {
        do {
            let taken = try declared(names)
            Issue.record("\(names) taken as \(taken.map(\.name))")
        } catch {
            #expect(error.message.contains(saying), "\(error.message)")
            #expect(error.message.hasPrefix("v3: "), "\(error.message)")
        }
    }
}
