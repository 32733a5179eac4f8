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

    @Test func aStoreThatCannotBeWatchedHasNoGeneration() {
        let writes = StoreWrites(home: GustHome(path: "/nonexistent/gust-\(UUID().uuidString)"))
        #expect(writes.generation() == nil, "a caller then trusts nothing it saw before")
        #expect(writes.failure?.isEmpty == false, "and gustd can say why")
    }
}
