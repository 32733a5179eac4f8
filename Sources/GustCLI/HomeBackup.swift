import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GustCore

/// A copy of a home that `gust restore` can bring back on another server (or
/// after a lost disk): the store and every app's record store through SQLite's
/// online backup, then the artifacts, repositories, keys, logs and whatever
/// else the home keeps (certificates, secrets' keys), but nothing that is
/// rebuilt or belongs to one running gustd (unpacked releases, the buildpack
/// cache, sockets, locks, scratch files) and no stacks: a stack is hundreds of
/// MB of Debian's packages (with device nodes a copy cannot make) that `gust
/// stacks build NAME --version N` makes again under the name and version its
/// releases record; `gust restore` names the ones a restored home needs.
///
/// The order makes a backup taken while gustd serves and pushes land usable:
/// the store's snapshot comes first, so every release it lists has its
/// artifact (artifacts are immutable and written before their release row).
enum HomeBackup {
    static let manifestName = "gust-backup.json"
    static let format = 1

    /// What a backup holds, written last: a directory without it is not a finished backup.
    struct Manifest: Codable {
        var format: Int
        var createdAt: Date
        var home: String
        var apps: [String: Int?]
    }

    /// Entries of the home that are not copied as they are.
    private static let skipped: Set<String> = ["gust.sqlite", "gust.sqlite-wal", "gust.sqlite-shm", "run", "locks", "tmp", "releases", "cache", "data", "stacks"]

    static func backup(_ home: GustHome, to directory: URL) throws -> Manifest {
        let fm = FileManager.default
        var info = stat()
        if lstat(directory.path, &info) == 0 {
            // One made beforehand must be this user's own and private: whoever else could write in
            // it could swap what the backup writes there (as root) for links, or swap the backup.
            guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
                throw GustError(
                    "\(directory.path) is not a private directory of this user's (a link, another user's, or open to others).",
                    hint: "Back up into a new directory; gust backup makes it, 0700."
                )
            }
            guard (try? fm.contentsOfDirectory(atPath: directory.path))?.isEmpty == true else {
                throw GustError("\(directory.path) is not empty.", hint: "Back up into a new directory.")
            }
        }
        try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try Store(home: home)
        try store.db.backup(to: directory.appendingPathComponent("gust.sqlite"))
        let apps = try store.apps()
        for app in apps {
            try copyData(from: home.data(app.name), to: directory.appendingPathComponent("data/\(app.name)"), openingStoresAs: home.ownerWhenRoot)
        }
        for name in try fm.contentsOfDirectory(atPath: home.path).sorted() where !skipped.contains(name) {
            try copyTree(name, of: home.root, to: directory.appendingPathComponent(name))
        }
        let manifest = Manifest(
            format: format, createdAt: Date(), home: home.path,
            apps: Dictionary(uniqueKeysWithValues: apps.map { ($0.name.rawValue, $0.liveVersion) })
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try encoder.encode(manifest), to: directory.appendingPathComponent(manifestName), mode: 0o600)
        return manifest
    }

    /// Restores into a home that has no store yet, then points every app's
    /// hooks and the SSH keys' forced command at this installation and home.
    ///
    /// Staged so that one stopped half-way (a full disk, a bad file, Ctrl-C) loses nothing and
    /// can be run again: `restoreUnfinished` is written first and removed last, the store is
    /// copied after everything else, and while the marker is there the next restore replaces
    /// what this one left (gustd refuses to start on such a home). It holds gustd's lock throughout.
    static func restore(from directory: URL, into home: GustHome, installation: Installation) throws -> Manifest {
        let fm = FileManager.default
        try checkPrivate(backup: directory)
        guard let data = fm.contents(atPath: directory.appendingPathComponent(manifestName).path) else {
            throw GustError("\(directory.path) is not a finished Gust backup: it has no \(manifestName).", hint: "Make one with `gust backup DIR`.")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest = try decoder.decode(Manifest.self, from: data)
        guard manifest.format == format else {
            throw GustError("\(directory.path) is a backup in format \(manifest.format); this gust reads format \(format).")
        }
        let resumed = fm.fileExists(atPath: home.restoreUnfinished.path)
        guard resumed || !fm.fileExists(atPath: home.database.path) else {
            throw GustError(
                "\(home.path) already has a store: restore only into a new home.",
                hint: "Choose an empty --home (or move \(home.path) aside), then restore again."
            )
        }
        try home.prepare()
        // gustd's lock, held while the restore runs, so that no gustd starts on a half-filled home.
        guard let lock = FileLock(ifFree: home.daemonLock) else {
            throw GustError("A gustd is running for \(home.path).", hint: "Restore into a new home, with no gustd running for it.")
        }
        defer { withExtendedLifetime(lock) {} }
        if resumed {
            // The store goes in last: one there is this unfinished restore's.
            for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: home.database.path + suffix) {
                try fm.removeItem(atPath: home.database.path + suffix)
            }
        } else {
            try AtomicFile.write(Data(), to: home.restoreUnfinished, mode: 0o600)
        }
        for name in try fm.contentsOfDirectory(atPath: directory.path).sorted() where name != manifestName && name != "gust.sqlite" {
            let source = directory.appendingPathComponent(name)
            if name == "data" {
                for app in try fm.contentsOfDirectory(atPath: source.path) {
                    let destination = home.data.appendingPathComponent(app)
                    try clear(destination, named: "data/\(app)", in: home, resumed: resumed)
                    try copyData(from: source.appendingPathComponent(app), to: destination)
                }
            } else {
                let destination = home.root.appendingPathComponent(name)
                try clear(destination, named: name, in: home, resumed: resumed)
                try copyTree(name, of: directory, to: destination)
            }
        }
        try Database(url: directory.appendingPathComponent("gust.sqlite")).backup(to: home.database)
        let store = try Store(home: home)
        for app in try store.apps() where fm.fileExists(atPath: home.repository(app.name).path) {
            try AppAdmin.installHooks(into: home.repository(app.name), home: home, installation: installation)
        }
        try AuthorizedKeys.update(store, gust: installation.executable("gust")) {}
        try fm.removeItem(at: home.restoreUnfinished)
        return manifest
    }

    /// A backup holds the store, the keys and `secrets.key`: one that another user could have
    /// written (a link, theirs, open to group or others) could hand this home their keys and
    /// repositories, so it is refused. `gust backup` makes its directory 0700.
    private static func checkPrivate(backup directory: URL) throws {
        var info = stat()
        guard lstat(directory.path, &info) == 0 else {
            throw GustError("There is no backup at \(directory.path).", hint: "Give the directory `gust backup DIR` made.")
        }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() || info.st_uid == 0, info.st_mode & 0o022 == 0 else {
            throw GustError(
                "\(directory.path) is not a backup only this user could have written (a link, another user's, or open for others to write in).",
                hint: "Keep backups private, as gust backup makes them (0700), and restore from there."
            )
        }
    }

    /// Makes way for an entry of the backup: nothing there, or an empty directory (`prepare`
    /// makes them), goes ahead; what an unfinished restore left is removed; anything else was
    /// not put there by a restore, and is refused rather than overwritten.
    private static func clear(_ destination: URL, named name: String, in home: GustHome, resumed: Bool) throws {
        let fm = FileManager.default
        var info = stat()
        guard lstat(destination.path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR, (try? fm.contentsOfDirectory(atPath: destination.path))?.isEmpty == true { return }
        guard resumed else {
            throw GustError(
                "\(home.path) already has \(name), which the backup has too: restore only into a new home.",
                hint: "Choose an empty --home (or move \(home.path) aside), then restore again."
            )
        }
        NoFollowRemoval.removeTree(at: destination)
    }

    /// An app's data directory: SQLite files through the backup API, anything else copied. Each
    /// level is opened without following a link (`data` and the app's directory included), and a
    /// store is opened through its directory's descriptor, so a name swapped meanwhile is not
    /// followed out of the home.
    /// `owner`: whose the stores are, when not this process's (root backing up gustd's home): they
    /// are opened as that user (`FileSystemIdentity`), a link swapped in after the check leading
    /// nowhere that user could not write.
    private static func copyData(from source: URL, to destination: URL, openingStoresAs owner: FileOwner? = nil) throws {
        let root = open(source.deletingLastPathComponent().deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { return }
        defer { close(root) }
        let data = openat(root, source.deletingLastPathComponent().lastPathComponent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard data >= 0 else { return }
        defer { close(data) }
        let app = openat(data, source.lastPathComponent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard app >= 0 else {
            // Not a directory (a link stays a link), or none.
            return try NoFollowCopy.copyEntry(source.lastPathComponent, in: data, shownAs: source.path, to: destination, leavingOut: isTemporary)
        }
        defer { close(app) }
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd/\(app)")
        for name in names.sorted() where !name.hasSuffix("-wal") && !name.hasSuffix("-shm") {
            var entry = stat()
            if name.hasSuffix(".sqlite"), fstatat(app, name, &entry, AT_SYMLINK_NOFOLLOW) == 0, entry.st_mode & S_IFMT == S_IFREG {
                // By the directory's descriptor; the store itself is opened refusing a link.
                try Database(url: URL(fileURLWithPath: "/proc/self/fd/\(app)/\(name)"), openedAs: owner)
                    .backup(to: destination.appendingPathComponent(name))
            } else {
                try NoFollowCopy.copyEntry(name, in: app, shownAs: source.appendingPathComponent(name).path,
                                           to: destination.appendingPathComponent(name), leavingOut: isTemporary)
            }
        }
    }

    /// Copies the entry `name` of the home's `directory`: a file or a directory tree, keeping modes
    /// (no setuid or setgid bit), leaving out temporary files of writes in progress. The home is the
    /// `gust` user's and a backup often runs as root: nothing is followed, not even a directory
    /// swapped for a link while the copy is under way (`NoFollowCopy`). A link stays a link (a link
    /// to `/root` was copied through, and a restore handed the contents to the `gust` user), and
    /// what is neither a file, a directory nor a link is left out and named (reading a FIFO hung
    /// the backup for good).
    private static func copyTree(_ name: String, of directory: URL, to destination: URL) throws {
        try NoFollowCopy.copy(name, of: directory, to: destination, leavingOut: isTemporary)
    }

    private static func isTemporary(_ name: String) -> Bool { name.hasSuffix(".tmp") }
}
