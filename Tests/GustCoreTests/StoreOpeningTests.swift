import Foundation
@testable import GustCore
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

    /// The check above comes before SQLite opens the file by its name, so gustd's user can swap a
    /// link in between. Root then opens it as the home's owner: the link leads only where that
    /// user could write anyway, and root's own database is left whole.
    @Test(.scratchDirectory) func aLinkSwappedInAfterTheCheckLeadsNowhereTheHomesOwnerCouldNotGo() throws {
        guard geteuid() == 0 else { return }  // only root opens as another user
        let root = ScratchDirectory.current
        chmod(root.path, 0o755)
        let roots = root.appendingPathComponent("roots")  // think /root
        try FileManager.default.createDirectory(at: roots, withIntermediateDirectories: false)
        chmod(roots.path, 0o700)
        let theirs = roots.appendingPathComponent("theirs.sqlite")
        do {
            let db = try Database(url: theirs)
            try db.execute("PRAGMA journal_mode = DELETE")
            try db.execute("CREATE TABLE precious (a)")
        }
        let before = try Data(contentsOf: theirs)
        let home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: false)
        let owner = FileOwner(uid: 54_321, gid: 54_322)
        chown(home.path, owner.uid, owner.gid)
        let store = home.appendingPathComponent("gust.sqlite")

        #expect(throws: GustError.self) {
            _ = try Database(url: store, busyTimeout: 500, openedAs: owner, afterTheLinkCheck: {
                try? FileManager.default.createSymbolicLink(at: store, withDestinationURL: theirs)
            })
        }
        #expect(try Data(contentsOf: theirs) == before, "root's database was written through the link")
        #expect(!FileManager.default.fileExists(atPath: theirs.path + "-wal"))

        // The owner's own store opens as before, its files that user's.
        try FileManager.default.removeItem(at: store)
        let opened = try Database(url: store, openedAs: owner)
        try opened.execute("CREATE TABLE mine (a)")
        for name in [store.path, store.path + "-wal", store.path + "-shm"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: name)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == owner.uid, "\(name)")
        }
        #expect(geteuid() == 0 && getuid() == 0, "the process stays root")
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
