#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// An app's log: JSON lines in `logs/APP.log`, rotated into `APP.log.1` … `APP.log.N` as its
/// `LogRetention` says, so storage stays bounded and the oldest lines go first.
///
/// gustd is the only writer, from several threads (instances' output, hooks, schedules); every
/// entry is one `write(2)` in append mode, and rotation happens under a `flock` so two writers
/// never rotate the same file twice. Readers (`gust logs`, drains) follow the files by inode.
public struct AppLog: Sendable {
    public static let defaultMaxBytes = LogRetention.defaultMaxBytes

    public let app: AppName
    public let current: URL
    public let retention: LogRetention
    /// `.APP.log.lock`, which writers hold while they rotate.
    public let lockFile: URL

    public init(home: GustHome, app: AppName, retention: LogRetention = .default) {
        self.app = app
        current = home.logs.appendingPathComponent("\(app).log")
        lockFile = home.logs.appendingPathComponent(".\(app).log.lock")
        self.retention = retention
    }

    public init(home: GustHome, app: AppName, maxBytes: Int) {
        self.init(home: home, app: app, retention: LogRetention(maxBytes: maxBytes))
    }

    /// `APP.log.N`, the Nth most recent rotated file.
    public func rotated(_ index: Int) -> URL {
        current.deletingLastPathComponent().appendingPathComponent("\(current.lastPathComponent).\(index)")
    }

    /// The most recent rotated file, `APP.log.1`.
    public var previous: URL { rotated(1) }

    /// The files that hold lines, oldest first: the rotated ones that exist, then the current one.
    public var files: [URL] {
        var rotatedFiles: [URL] = []
        var index = 1
        while FileManager.default.fileExists(atPath: rotated(index).path) {
            rotatedFiles.append(rotated(index))
            index += 1
        }
        return rotatedFiles.reversed() + [current]
    }

    /// Appends entries with one `write(2)` in append mode, so concurrent writers
    /// never interleave within a line. Secret values are masked before they are stored.
    public func append(_ entries: [LogEntry], masking secrets: [String] = []) throws {
        guard !entries.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        var data = Data()
        for var entry in entries {
            entry.line = entry.line.maskingSecrets(secrets)
            data.append(try encoder.encode(entry))
            data.append(0x0A)
        }
        if Self.size(current) + data.count > retention.maxBytes { try rotate(ifLargerThan: retention.maxBytes - data.count) }
        let fd = open(current.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Self.writeError(current, errno) }
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written != data.count else { return }
        let failure = written < 0 ? errno : ENOSPC
        // A short write (a full disk) leaves half a line that the next line would be glued to: cut it
        // off, unless someone appended after it meanwhile. The entries are dropped, never half-kept.
        if written > 0 {
            var info = stat()
            let end = lseek(fd, 0, SEEK_CUR)
            if fstat(fd, &info) == 0, end >= 0, info.st_size == end { ftruncate(fd, end - off_t(written)) }
        }
        throw Self.writeError(current, failure)
    }

    private static func writeError(_ url: URL, _ code: Int32) -> GustError {
        code == ENOSPC || code == EDQUOT
            ? GustError.diskFull("Could not append to \(url.path)")
            : GustError.internal("Cannot write \(url.path): \(String(cString: strerror(code)))")
    }

    /// Shifts `APP.log` → `.1` → `.2` …, dropping the file past `retention.files`, if the current
    /// file is still over `threshold` bytes once the lock is held (another writer may have rotated it).
    /// rename(2) moves each file atomically; a reader holding one open keeps its copy.
    public func rotate(ifLargerThan threshold: Int = -1) throws {
        let lock = try FileLock(lockFile)
        defer { withExtendedLifetime(lock) {} }
        guard Self.size(current) > max(threshold, 0) else { return }
        var last = 1
        while FileManager.default.fileExists(atPath: rotated(last + 1).path) { last += 1 }
        for index in stride(from: last, through: 1, by: -1) {
            if index >= retention.files {
                unlink(rotated(index).path)
            } else {
                rename(rotated(index).path, rotated(index + 1).path)
            }
        }
        rename(current.path, previous.path)
    }

    /// Applies `retention.maxAge` (and a lowered `files`): rotates the current file once its oldest
    /// line is older than the age, and deletes rotated files whose newest line is. gustd runs it
    /// about once a minute per app; appends only ever check size.
    public func expire(now: Date = Date()) throws {
        if let maxAge = retention.maxAge {
            let cutoff = now.addingTimeInterval(-maxAge.seconds)
            if let first = Self.firstEntry(of: current), first.time < cutoff { try rotate() }
            for file in files.dropLast() {
                let modified = (try? FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as? Date) ?? now
                if modified < cutoff { unlink(file.path) }
            }
        }
        var index = retention.files + 1
        while FileManager.default.fileExists(atPath: rotated(index).path) {
            unlink(rotated(index).path)
            index += 1
        }
    }

    // MARK: Reading

    /// The last `limit` entries, oldest first, optionally of one function. Reads the newest
    /// files first and stops as soon as it has enough.
    public func tail(_ limit: Int, function: String? = nil) -> [LogEntry] {
        guard limit > 0 else { return [] }
        var kept: [LogEntry] = []
        for file in files.reversed() {
            let entries = Self.read(file)
            let matching = function.map { name in entries.filter { $0.belongs(to: name) } } ?? entries
            kept = matching.suffix(limit - kept.count) + kept
            if kept.count >= limit { break }
        }
        return kept
    }

    static func read(_ url: URL) -> [LogEntry] {
        guard let data = try? Data(contentsOf: url) else { return [] }
        return decode(data)
    }

    static func decode(_ data: Data) -> [LogEntry] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(LogEntry.self, from: Data($0)) }
    }

    /// The first whole line of a file, read without loading the file.
    static func firstEntry(of url: URL) -> LogEntry? {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? handle.close() }
        var data = Data()
        while data.count < 2 * 1024 * 1024, let chunk = try? handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
            data.append(chunk)
            if let newline = data.firstIndex(of: 0x0A) { return decode(Data(data[..<newline])).first }
        }
        return nil
    }

    static func size(_ url: URL) -> Int {
        var info = stat()
        return stat(url.path, &info) == 0 ? Int(info.st_size) : 0
    }
}
