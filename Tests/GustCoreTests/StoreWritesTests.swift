import Foundation
import GustCore
import GustTesting
import Testing

/// `StoreWrites` against a real SQLite file: what gustd's token checks trust to learn that the
/// store changed under them, whoever wrote it.
@Suite struct StoreWritesTests {
    @Test(.scratchDirectory) func aWriteByAnyConnectionChangesTheGenerationAndAReadDoesNot() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        let gustd = try Store(home: home)
        let writes = StoreWrites(home: home)
        let first = try #require(writes.generation(), "the store's directory is watched")
        #expect(writes.generation() == first, "nothing was written")

        let cli = try Store(home: home)  // another connection, as `gust` opens one
        _ = try cli.apps()
        _ = try gustd.apps()
        #expect(writes.generation() == first, "reads write nothing")

        _ = try cli.createApp(try AppName("cats"))
        let second = try #require(writes.generation())
        #expect(second != first, "another process's commit is seen at the next reading, not later")
        #expect(writes.generation() == second)

        _ = try gustd.createApp(try AppName("dogs"))
        #expect(writes.generation() != second, "and so is gustd's own")
    }

    /// An app's records live in `data/APP/records.sqlite`, below the watched directory: an app
    /// that saves a record on every call leaves its token remembered (docs/benchmarks.md).
    @Test(.scratchDirectory) func anAppsRecordWritesLeaveTheGenerationAlone() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        _ = try Store(home: home)
        let writes = StoreWrites(home: home)
        let first = try #require(writes.generation())
        let app = try AppName("cats")
        try FileManager.default.createDirectory(at: home.data(app), withIntermediateDirectories: true)
        let records = try RecordStore(home: home, app: app)
        for n in 0..<3 { _ = try records.insert("Food", ["name": .string("kibble \(n)")]) }
        #expect(writes.generation() == first)
    }

    @Test(.scratchDirectory) func aStoreReplacedWholeChangesTheGeneration() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        _ = try Store(home: home)
        let writes = StoreWrites(home: home)
        let first = try #require(writes.generation())
        // As a restore puts a copy in place: a rename over the file, no write to it.
        let copy = ScratchDirectory.current.appendingPathComponent("copy.sqlite")
        try FileManager.default.copyItem(at: home.database, to: copy)
        #expect(rename(copy.path, home.database.path) == 0)
        #expect(writes.generation() != first)
    }

    /// Nobody asks for hours while the directory changes: the kernel's queue fills and drops
    /// events. That counts as a write, and the watch goes on seeing the writes after it.
    @Test(.scratchDirectory) func aFullQueueCountsAsAWriteAndTheWatchGoesOn() throws {
        let limit = (try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 16384
        guard limit <= 200_000 else { return }  // too many files to make here; nothing to show
        let home = GustHome(path: ScratchDirectory.current.path)
        let store = try Store(home: home)
        let writes = StoreWrites(home: home)
        let first = try #require(writes.generation())
        for n in 0...limit {  // files of other names, one event each: more than the queue holds
            let fd = open(ScratchDirectory.current.appendingPathComponent("other-\(n)").path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) }
        }
        let second = try #require(writes.generation(), "a full queue is not a lost watch")
        #expect(second != first)
        #expect(writes.generation() == second)
        _ = try store.createApp(try AppName("cats"))
        #expect(writes.generation() != second, "writes after it are seen")
    }

    @Test func aStoreThatCannotBeWatchedHasNoGeneration() {
        let writes = StoreWrites(home: GustHome(path: "/nonexistent/gust-\(UUID().uuidString)"))
        #expect(writes.generation() == nil, "a caller then trusts nothing it saw before")
        #expect(writes.failure?.isEmpty == false, "and gustd can say why")
    }
}
