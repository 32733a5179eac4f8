#if canImport(Glibc)
import Glibc
#endif
import CSQLite
public import Foundation

/// A thin owner of one SQLite connection.
///
/// Gust's state is small and its processes are short-lived (a hook, a CLI
/// command), so a direct binding keeps start-up cheap; see docs/architecture.md.
/// A connection is used from one thread at a time; the type is not `Sendable`.
public final class Database {
    let handle: OpaquePointer
    /// What a write past `limitSize` says, instead of "the disk is full".
    private var sizeLimitMessage: String?

    /// Opens (creating if needed) the database at `url` in WAL mode with a busy
    /// timeout, so concurrent pushes and commands wait for each other instead
    /// of failing.
    ///
    /// `owner`: the user whose directory holds the database, when it may not be this process's
    /// (root's commands on gustd's home). Root then opens it, and its `-wal` and `-shm`, as that
    /// user (`FileSystemIdentity`): a link swapped in after the check below leads nowhere that
    /// user could not write anyway.
    public convenience init(url: URL, busyTimeout: Int32 = 15_000, openedAs owner: FileOwner? = nil) throws(GustError) {
        try self.init(url: url, busyTimeout: busyTimeout, openedAs: owner, afterTheLinkCheck: {})
    }

    /// `afterTheLinkCheck` runs between the check that the database is not a link and SQLite's
    /// open: where a test swaps one in.
    init(url: URL, busyTimeout: Int32, openedAs owner: FileOwner?, afterTheLinkCheck: () -> Void) throws(GustError) {
        handle = try FileSystemIdentity.acting(as: owner) { () throws(GustError) -> OpaquePointer in
            let handle = try Self.open(url, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, afterTheLinkCheck: afterTheLinkCheck)
            // Tokens, secrets and records: the owner's alone, also in a store an earlier version made 0644
            // (SQLite gives the -wal and -shm files the database's mode when it creates them).
            // Through no link (root opens the store too; SQLite itself opens -wal and -shm with O_NOFOLLOW).
            for suffix in ["", "-wal", "-shm"] { NoFollowMode.setFile(url.path + suffix, 0o600) }
            sqlite3_busy_timeout(handle, busyTimeout)
            // The first read opens the -wal and -shm files: as `owner` too.
            do throws(GustError) { try Self.enterWAL(handle, waitingUpTo: busyTimeout) } catch {
                sqlite3_close_v2(handle)
                throw error
            }
            return handle
        }
        try execute("PRAGMA synchronous = NORMAL")
        try execute("PRAGMA foreign_keys = ON")
    }

    /// Opens a second connection to a database another one made and keeps in WAL mode, for reads
    /// only: it reads what is committed, never waiting for a write in progress nor holding one up.
    public init(readingFrom url: URL, busyTimeout: Int32 = 15_000) throws(GustError) {
        handle = try Self.open(url, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX)
        sqlite3_busy_timeout(handle, busyTimeout)
    }

    /// A database file that is a link is refused: gustd's user could plant one in the home for root
    /// to write Gust's schema into what it points at. (Not `SQLITE_OPEN_NOFOLLOW`, which refuses a
    /// link anywhere in the path: a home under a linked directory, or a `/proc/self/fd` path.)
    private static func open(_ url: URL, flags: Int32, afterTheLinkCheck: () -> Void = {}) throws(GustError) -> OpaquePointer {
        var status = stat()
        if lstat(url.path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK {
            throw GustError("\(url.path) is a link, not a database: refused (it could name another's file).",
                            hint: "Move the database itself there, not a link to it.")
        }
        afterTheLinkCheck()
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(url.path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw GustError.internal("Cannot open database \(url.path): \(message)")
        }
        return db
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs `body`, whose statements SQLite stops once `deadline` has passed: the statement
    /// running then fails, and `body` fails with `stopped` instead of SQLite's "interrupted".
    /// SQLite looks at the clock every thousand steps of its virtual machine.
    public func stopping<T>(at deadline: ContinuousClock.Instant, with stopped: GustError, _ body: () throws -> T) throws -> T {
        let watch = Deadline(deadline)
        let context = Unmanaged.passRetained(watch)
        sqlite3_progress_handler(handle, 1000, { context in
            guard let context else { return 0 }
            let watch = Unmanaged<Deadline>.fromOpaque(context).takeUnretainedValue()
            guard ContinuousClock.now >= watch.deadline else { return 0 }
            watch.passed = true
            return 1
        }, context.toOpaque())
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            context.release()
        }
        do {
            return try body()
        } catch {
            if watch.passed { throw stopped }
            throw error
        }
    }

    /// The deadline `stopping` hands SQLite's progress handler, and whether it has passed.
    private final class Deadline {
        let deadline: ContinuousClock.Instant
        var passed = false
        init(_ deadline: ContinuousClock.Instant) { self.deadline = deadline }
    }

    /// Switches a new file to WAL (a no-op once it is). The switch takes an exclusive lock from a
    /// read lock, which SQLite refuses at once instead of calling the busy handler (two readers
    /// upgrading would deadlock), so several processes opening a new home at once retry here,
    /// for as long as the busy timeout, until the first of them has made the switch.
    private static func enterWAL(_ handle: OpaquePointer, waitingUpTo milliseconds: Int32) throws(GustError) {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        var pause = 1
        while true {
            var message: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(handle, "PRAGMA journal_mode = WAL", nil, nil, &message)
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            if rc == SQLITE_OK { return }
            guard rc == SQLITE_BUSY, ContinuousClock.now < deadline else {
                if rc & 0xff == SQLITE_FULL || (rc & 0xff == SQLITE_IOERR && sqlite3_system_errno(handle) == ENOSPC) {
                    throw GustError.diskFull("Could not write \(String(cString: sqlite3_db_filename(handle, "main")))")
                }
                throw GustError.internal("SQLite: \(text)")  // SQLite's own words
            }
            usleep(useconds_t(pause * 1000))
            pause = min(pause * 2, 50)
        }
    }

    /// Bounds the file at about `bytes` (SQLite's max_page_count; nil: unbounded): a write past it
    /// is rolled back, nothing of it kept, and fails with `message` (HTTP 507).
    public func limitSize(toBytes bytes: Int?, message: String) throws(GustError) {
        let pageSize = try query("PRAGMA page_size").first?.int("page_size") ?? 4096
        let pages = bytes.map { max($0 / pageSize, 1) } ?? 4_294_967_294
        try query("PRAGMA max_page_count = \(pages)")
        sizeLimitMessage = bytes == nil ? nil : message
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(GustError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            if let full = diskFull(rc) { throw full }
            throw GustError.internal("SQLite: \(text)")
        }
    }

    /// Runs a statement with bound values and returns every row.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(GustError) -> [Row] {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        for (index, value) in values.enumerated() {
            try bind(value, at: Int32(index + 1), in: statement)
        }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            rows.append(Row(statement: statement))
        }
        return rows
    }

    /// Runs a query and hands each row to `body` as it is stepped, until
    /// `body` returns false: a reader that stops early never copies the rest.
    public func forEachRow(_ sql: String, _ values: [SQLValue] = [], _ body: (Row) throws -> Bool) throws {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        for (index, value) in values.enumerated() {
            try bind(value, at: Int32(index + 1), in: statement)
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc) }
            guard try body(Row(statement: statement)) else { return }
        }
    }

    public func run(_ sql: String, _ values: [SQLValue] = []) throws(GustError) {
        try query(sql, values)
    }

    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` in an immediate transaction: the write lock is taken at
    /// `BEGIN`, so two writers never deadlock upgrading a read lock.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepare(_ sql: String) throws(GustError) -> OpaquePointer {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        return statement
    }

    private func bind(_ value: SQLValue, at index: Int32, in statement: OpaquePointer) throws(GustError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(statement, index)
        case .integer(let int): rc = sqlite3_bind_int64(statement, index, int)
        case .real(let double): rc = sqlite3_bind_double(statement, index, double)
        case .text(let text): rc = sqlite3_bind_text(statement, index, text, -1, sqliteTransient)
        case .blob(let bytes):
            rc = bytes.withUnsafeBytes { buffer in
                sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), sqliteTransient)
            }
        }
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    private func error(_ rc: Int32) -> GustError {
        if let full = diskFull(rc) { return full }
        return GustError.internal("SQLite error \(rc): \(String(cString: sqlite3_errmsg(handle)))")
    }

    /// A write that met a full disk, as its own error (HTTP 507) that says so:
    /// SQLite has rolled the write back, so nothing of it is stored.
    private func diskFull(_ rc: Int32) -> GustError? {
        let full = rc & 0xff == SQLITE_FULL || (rc & 0xff == SQLITE_IOERR && sqlite3_system_errno(handle) == ENOSPC)
        guard full else { return nil }
        let path = sqlite3_db_filename(handle, "main").map { String(cString: $0) } ?? "the database"
        // Full by max_page_count while the device still has room (more than a record's worth): the limit's own message.
        if rc & 0xff == SQLITE_FULL, let sizeLimitMessage {
            var device = statvfs()
            if statvfs((path as NSString).deletingLastPathComponent, &device) == 0,
                UInt64(device.f_bavail) * UInt64(device.f_frsize) > 4 << 20
            {
                return GustError(sizeLimitMessage, code: 507)
            }
        }
        return GustError.diskFull("Could not write \(path)")
    }
}

/// SQLite's "copy this buffer now" destructor, which Swift cannot spell directly.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(nilLiteral: ()) { self = .null }

    public init(_ text: String?) { self = text.map(SQLValue.text) ?? .null }
    public init(_ int: Int?) { self = int.map { .integer(Int64($0)) } ?? .null }
    public init(_ double: Double?) { self = double.map(SQLValue.real) ?? .null }
    public init(_ bool: Bool) { self = .integer(bool ? 1 : 0) }
}

/// One result row, copied out of the statement so it outlives it.
public struct Row: Sendable {
    private var columns: [String: SQLValue] = [:]

    init(statement: OpaquePointer) {
        for index in 0..<sqlite3_column_count(statement) {
            let name = String(cString: sqlite3_column_name(statement, index))
            switch sqlite3_column_type(statement, index) {
            case SQLITE_INTEGER: columns[name] = .integer(sqlite3_column_int64(statement, index))
            case SQLITE_FLOAT: columns[name] = .real(sqlite3_column_double(statement, index))
            case SQLITE_TEXT: columns[name] = .text(String(cString: sqlite3_column_text(statement, index)))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(statement, index))
                let base = sqlite3_column_blob(statement, index)
                columns[name] = .blob(base.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? [])
            default: columns[name] = .null
            }
        }
    }

    public subscript(_ name: String) -> SQLValue { columns[name] ?? .null }

    public func string(_ name: String) -> String? {
        if case .text(let text) = self[name] { return text }
        return nil
    }

    public func int(_ name: String) -> Int? {
        switch self[name] {
        case .integer(let int): Int(int)
        case .real(let double): Int(double)
        default: nil
        }
    }

    public func double(_ name: String) -> Double? {
        switch self[name] {
        case .integer(let int): Double(int)
        case .real(let double): double
        default: nil
        }
    }

    public func bool(_ name: String) -> Bool { int(name).map { $0 != 0 } ?? false }
}
