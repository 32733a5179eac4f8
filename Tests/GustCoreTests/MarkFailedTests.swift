import Foundation
import GustCore
import GustTesting
import Testing

/// Marking a release failed is what a push or a rollback does when its deploy
/// went wrong; it must never touch the release that serves.
@Suite struct MarkFailedTests {
    @Test(.scratchDirectory) func theLiveReleaseIsNeverMarkedFailed() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats")
        _ = try store.createApp(cats)
        try store.recordRelease(cats, NewRelease(status: .built, description: "Deploy a", log: "built\n"))
        try store.recordRelease(cats, NewRelease(status: .built, description: "Deploy b", log: "built\n"))
        try store.setLive(cats, version: 1)

        _ = try store.markFailed(cats, version: 1, error: "lost gustd", appendingLog: "late\n")
        let live = try store.requireRelease(cats, version: 1)
        #expect(live.status == .live)
        #expect(live.error == nil)
        #expect(live.log == "built\n")

        _ = try store.markFailed(cats, version: 2, error: "could not start", appendingLog: "boom\n")
        let failed = try store.requireRelease(cats, version: 2)
        #expect(failed.status == .failed)
        #expect(failed.error == "could not start")
        #expect(try store.app(cats)?.liveVersion == 1)
    }
}
