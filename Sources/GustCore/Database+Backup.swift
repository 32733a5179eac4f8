#if canImport(Glibc)
import Glibc
#endif
import CSQLite
public import Foundation

extension Database {
    /// Copies the database into a new file at `url` through SQLite's online
    /// backup API: one consistent snapshot, taken while gustd and pushes keep
    /// writing (a copy of the file and its WAL could catch half a transaction).
    /// Copies in steps, waiting out a writer's lock between them.
    public func backup(to url: URL) throws(GustError) {
        guard !FileManager.default.fileExists(atPath: url.path) else {
            throw GustError("\(url.path) already exists; a backup writes only new files.")
        }
        var destination: OpaquePointer?
        guard sqlite3_open_v2(url.path, &destination, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let destination else {
            sqlite3_close(destination)
            throw GustError.internal("Cannot create \(url.path) for the backup.")
        }
        defer { sqlite3_close(destination) }
        chmod(url.path, 0o600)
        guard let backup = sqlite3_backup_init(destination, "main", handle, "main") else {
            throw GustError.internal("Cannot back up into \(url.path): \(String(cString: sqlite3_errmsg(destination)))")
        }
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(backup, 256)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED { sqlite3_sleep(25) }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(destination))
            try? FileManager.default.removeItem(at: url)
            throw GustError.internal("The backup into \(url.path) failed (SQLite error \(rc)): \(message)")
        }
    }
}
