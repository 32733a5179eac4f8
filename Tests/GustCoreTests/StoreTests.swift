import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

@Suite struct StoreTests {
    @Test(.scratchDirectory) func versionsAreAllocatedInOrderPerApp() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats")
        let dogs = try AppName("dogs")
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        let first = try store.recordRelease(cats, NewRelease(status: .built, description: "Deploy a"))
        let failed = try store.recordRelease(cats, NewRelease(status: .failed, description: "Deploy b"))
        let other = try store.recordRelease(dogs, NewRelease(status: .built, description: "Deploy c"))
        #expect([first.version, failed.version, other.version] == [Int]([1, 2, 1]))
        try store.setLive(cats, version: 1)
        let statuses = try store.releases(cats).map(\.status)
        #expect(statuses == [.failed, .live])
    }

    /// Whether gustd hands a release's instances their socket (a read-only socket directory) is the
    /// store's to say, never the slug's: every release recorded now, and a reuse (rollback, config
    /// change) as its artifact's was; one recorded before the column came is not.
    @Test(.scratchDirectory) func aReleaseHandedItsSocketIsSoForGoodAndAReuseKeepsItsArtifacts() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats")
        _ = try store.createApp(cats)
        let built = try store.recordRelease(cats, NewRelease(status: .built, description: "Deploy"))
        #expect(built.passesListener)
        #expect(try store.recordReuse(of: built, description: "Set X", config: ["X": "1"], secretNames: []).passesListener)
        // As a row recorded before migration 13 reads: the column's default.
        try store.db.run("INSERT INTO releases (app, version, status, created_at, description) VALUES ('cats', 9, 'built', 0, 'Old')")
        let old = try #require(try store.release(cats, version: 9))
        #expect(!old.passesListener)
        #expect(!(try store.recordReuse(of: old, description: "Rollback to v9", rollbackOf: 9, config: [:], secretNames: []).passesListener))
    }

    /// A release keeps at most 512 KiB of its build's output, its start and its end at line ends:
    /// every push records one, in the store every app shares, and a build may print 8 MB.
    @Test(.scratchDirectory) func aReleaseKeepsTheStartAndEndOfALongBuildLog() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats")
        _ = try store.createApp(cats)
        let lines = (0..<40_000).map { "line \($0) of the build, with a café in it" }
        let log = lines.joined(separator: "\n") + "\nwhy it failed\n"
        let kept = try store.recordRelease(cats, NewRelease(status: .failed, description: "Deploy", log: log)).log
        #expect(log.utf8.count > 1_700_000)
        #expect(kept.utf8.count <= Store.storedLogBytes + 200, "\(kept.utf8.count) bytes kept")
        #expect(kept.hasPrefix("line 0 of the build") && kept.hasSuffix("why it failed\n"))
        let said = kept.split(separator: "\n").filter { $0.hasPrefix("… ") }
        #expect(said.count == 1 && said[0].contains("bytes of the build's output are not kept here"), "\(said)")
        #expect(kept.split(separator: "\n").allSatisfy { $0.hasPrefix("line ") || $0.hasPrefix("… ") || $0 == "why it failed" })
        let short = "a short log\n"
        #expect(try store.recordRelease(cats, NewRelease(status: .failed, description: "Deploy", log: short)).log == short)
    }

    /// Only an app's newest releases and its live one keep their build logs: each push records a
    /// release, and all of them lived, log and all, in the store every app shares.
    @Test(.scratchDirectory) func onlyTheNewestReleasesAndTheLiveOneKeepTheirLogs() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let cats = try AppName("cats"), dogs = try AppName("dogs")
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        try store.recordRelease(dogs, NewRelease(status: .failed, description: "Deploy", log: "dogs v1\n"))
        try store.recordRelease(cats, NewRelease(status: .built, artifact: "a", description: "Deploy", log: "cats v1\n"))
        try store.setLive(cats, version: 1)
        let pushes = Store.releasesKeepingLogs + 5
        for version in 2...pushes {
            try store.recordRelease(cats, NewRelease(status: .failed, description: "Deploy", log: "cats v\(version)\n"))
        }
        let logs = Dictionary(uniqueKeysWithValues: try store.releases(cats).map { ($0.version, $0.log) })
        #expect(logs[1] == "cats v1\n", "the live release keeps its log")
        for version in 2...pushes {
            let kept = version > pushes - Store.releasesKeepingLogs
            #expect((logs[version] == "cats v\(version)\n") == kept, "v\(version): \(logs[version] ?? "")")
        }
        #expect(logs[2]?.contains("no longer kept") == true)
        #expect(try store.release(dogs, version: 1)?.log == "dogs v1\n", "another app's logs are its own")
    }

    /// An app's number (and so its host uid under the sandbox) is never one an app had before, even
    /// once the newest app is destroyed: SQLite's next rowid was that app's again.
    @Test(.scratchDirectory) func anAppNumberIsNeverGivenTwice() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let (cats, dogs, owls) = (try AppName("cats"), try AppName("dogs"), try AppName("owls"))
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        let dogsNumber = try store.appNumber(dogs)
        try store.deleteApp(dogs)
        _ = try store.createApp(owls)
        #expect(try store.appNumber(owls) > dogsNumber)
        _ = try store.createApp(dogs)
        #expect(try store.appNumber(dogs) > store.appNumber(owls), "the same name, a new number")
        #expect(try store.appNumber(cats) == 1)
    }

    @Test(.scratchDirectory) func creatingAnExistingAppIsRefused() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        _ = try store.createApp(try AppName("cats"))
        #expect(throws: GustError.self) { try store.createApp(try AppName("cats")) }
    }

    @Test(arguments: ["Cats", "1cats", "-cats", "cats_1", "", "a/b", "..", String(repeating: "a", count: 64)])
    func invalidAppNamesAreRefused(_ raw: String) {
        #expect(throws: GustError.self) { try AppName(raw) }
    }

    @Test(arguments: ["cats", "a", "cat-food-2", String(repeating: "a", count: 63)])
    func validAppNamesAreAccepted(_ raw: String) throws {
        let name = try AppName(raw)
        #expect(name.rawValue == raw)
    }

    @Test(.scratchDirectory) func reopeningKeepsTheSchemaAndData() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        do {
            let store = try Store(home: home)
            _ = try store.createApp(try AppName("cats"))
        }
        let reopened = try Store(home: home)
        #expect(try reopened.apps().map(\.name.rawValue) == ["cats"])
    }

    /// Ten `gust keys add` at once on a new home each open the store while it is still a
    /// rollback-journal file. Turning it into WAL takes an exclusive lock that SQLite does not
    /// wait for (a reader upgrading would deadlock), so an opener could fail "database is
    /// locked" (seen in CI, about 1 open in 170 here).
    @Test(.scratchDirectory) func storesOpenedAtOnceOnANewHomeAllOpen() throws {
        let failures = Mutex<[String]>([])
        for round in 0..<40 {
            let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("h\(round)").path)
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                do {
                    let store = try Store(home: home)
                    _ = try store.createApp(try AppName("app\(index)"))
                } catch {
                    failures.withLock { $0.append("round \(round), opener \(index): \(error)") }
                }
            }
            if round == 0 { #expect(try Store(home: home).apps().count == 8) }
        }
        #expect(failures.withLock { $0 } == [])
    }

    /// A command opening the store while gustd holds the write lock (a deploy's records, a long
    /// write) reads at once: an open of a current schema takes no lock of its own.
    @Test(.scratchDirectory) func anOpenDoesNotWaitForAnotherWriter() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        _ = try Store(home: home).createApp(try AppName("cats"))
        let writer = try Store(home: home)
        try writer.db.execute("BEGIN IMMEDIATE")
        let opened = DispatchSemaphore(value: 0)
        let apps = Mutex<[String]>([])
        Thread.detachNewThread {
            if let names = try? Store(home: home).apps().map(\.name.rawValue) { apps.withLock { $0 = names } }
            opened.signal()
        }
        let openedAtOnce = opened.wait(timeout: .now() + 5) == .success
        #expect(openedAtOnce, "the open waited for the other writer")
        try writer.db.execute("ROLLBACK")
        if !openedAtOnce { opened.wait() }  // the thread has ended before the scratch directory goes
        #expect(apps.withLock { $0 } == ["cats"])
    }
}
