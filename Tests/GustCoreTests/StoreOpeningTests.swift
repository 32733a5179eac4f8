import Foundation
import GustCore
import GustTesting
import Testing

/// Opening the store tightens the home's modes (0700 directories, 0600 database files) and is done
/// by root too (`gust stacks list`, `gust backup`), on a home whose names gustd's user controls: a
/// link planted there must not have root chmod, or write Gust's schema into, what it points at.
@Suite struct StoreOpeningTests {
    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test(.scratchDirectory) func openingTheStoreChangesNothingALinkInTheHomePointsAt() throws {
        let root = ScratchDirectory.current
        let home = GustHome(path: root.appendingPathComponent("home").path)
        _ = try Store(home: home)
        let outside = root.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: false)
        chmod(outside.path, 0o755)
        let file = outside.appendingPathComponent("file")
        try Data("precious\n".utf8).write(to: file)
        chmod(file.path, 0o644)

        try FileManager.default.removeItem(at: home.tls)
        try FileManager.default.createSymbolicLink(at: home.tls, withDestinationURL: outside)
        for suffix in ["-wal", "-shm"] {
            let name = home.database.path + suffix
            try? FileManager.default.removeItem(atPath: name)
            try FileManager.default.createSymbolicLink(atPath: name, withDestinationPath: file.path)
        }
        _ = try? Store(home: home)  // SQLite itself refuses -wal and -shm links (O_NOFOLLOW)
        #expect(try mode(outside.path) == 0o755)
        #expect(try mode(file.path) == 0o644)
        #expect(try String(contentsOf: file, encoding: .utf8) == "precious\n")
    }

    @Test(.scratchDirectory) func aStoreThatIsALinkIsRefused() throws {
        let root = ScratchDirectory.current
        let other = root.appendingPathComponent("other.sqlite")
        do {
            let db = try Database(url: other)
            try db.execute("CREATE TABLE mine (a)")
        }
        chmod(other.path, 0o644)
        let home = GustHome(path: root.appendingPathComponent("home").path)
        try home.prepare()
        try FileManager.default.createSymbolicLink(at: home.database, withDestinationURL: other)
        #expect(throws: (any Error).self) { _ = try Store(home: home) }
        #expect(try mode(other.path) == 0o644)
        let tables = try Database(readingFrom: other).query("SELECT name FROM sqlite_master WHERE type = 'table'")
        #expect(tables.compactMap { $0.string("name") } == ["mine"])
    }

    /// Root opening the home of gustd's user (`gust stacks list`) on a home an earlier version
    /// made, without `tls/`: the directory it makes is that user's, or gustd could not write in it.
    @Test(.scratchDirectory) func aDirectoryRootMakesInAnotherUsersHomeIsThatUsers() throws {
        guard geteuid() == 0 else { return }  // only root can make a home another user's
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        _ = try Store(home: home)
        let (uid, gid): (uid_t, gid_t) = (54_321, 54_322)
        for name in try FileManager.default.contentsOfDirectory(atPath: home.path) {
            lchown(home.root.appendingPathComponent(name).path, uid, gid)
        }
        chown(home.path, uid, gid)
        try FileManager.default.removeItem(at: home.tls)
        _ = try Store(home: home)
        let attributes = try FileManager.default.attributesOfItem(atPath: home.tls.path)
        #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == uid)
        #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == gid)
        #expect(try mode(home.tls.path) == 0o700)
    }
}
