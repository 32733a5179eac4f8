#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// One captured line of an app's output.
public struct LogEntry: Sendable, Codable, Equatable {
    public var time: Date
    public var release: Int?
    public var instance: String?
    /// `stdout` or `stderr` for what an instance wrote (stderr is shown with `!`), `gustd` for
    /// the platform's own notes (a crash, a skipped schedule run); a schedule run that failed is
    /// noted on `stderr`.
    public var stream: String
    /// `op food:buy`, `schedule meow`, `hook before_save cat`, when known.
    public var function: String?
    public var line: String
    /// The `X-Request-Id` of the call that wrote the line, when the runtime tagged it (protocol 2).
    public var request: String?

    public init(
        time: Date = Date(), release: Int?, instance: String?, stream: String, function: String?, line: String, request: String? = nil
    ) {
        self.time = time
        self.request = request
        self.release = release
        self.instance = instance
        self.stream = stream
        self.function = function
        self.line = line
    }

    /// Whether this line came from the function `name`: its whole label
    /// (`schedule tick`) or the name within it (`tick`, `before_save cat`).
    public func belongs(to name: String) -> Bool {
        guard let function else { return false }
        return function == name || function.hasSuffix(" " + name)
    }

    /// `2026-11-22T23:30:01.123Z v3 a1b2 [op food:buy] Meow`
    public var formatted: String {
        var parts = [Self.timeFormat.string(from: time)]
        parts.append(release.map { "v\($0)" } ?? "-")
        parts.append(instance ?? stream)
        if let function { parts.append("[\(function)]") }
        if stream == "stderr" { parts.append("!") }
        return (parts + [line]).joined(separator: " ")
    }

    nonisolated(unsafe) static let timeFormat: ISO8601DateFormatter = {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format
    }()
}

/// An app's log: JSON lines in `logs/APP.log`, bounded by rotating into
/// `APP.log.1` (the older half is dropped), so storage never exceeds about
/// twice `maxBytes` per app and the oldest lines go first.
public struct AppLog: Sendable {
    public static let defaultMaxBytes = 4 * 1024 * 1024

    public let current: URL
    public let previous: URL
    public let maxBytes: Int

    public init(home: GustHome, app: AppName, maxBytes: Int = AppLog.defaultMaxBytes) {
        current = home.logs.appendingPathComponent("\(app).log")
        previous = home.logs.appendingPathComponent("\(app).log.1")
        self.maxBytes = maxBytes
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
        try rotateIfNeeded(adding: data.count)
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

    private func rotateIfNeeded(adding bytes: Int) throws {
        var info = stat()
        guard stat(current.path, &info) == 0, Int(info.st_size) + bytes > maxBytes else { return }
        // rename(2) replaces the older file atomically; a reader holding it open keeps its copy.
        rename(current.path, previous.path)
    }

    /// The last `limit` entries, oldest first, optionally of one function.
    public func tail(_ limit: Int, function: String? = nil) -> [LogEntry] {
        let all = Self.read(previous) + Self.read(current)
        let matching = function.map { name in all.filter { $0.belongs(to: name) } } ?? all
        return Array(matching.suffix(limit))
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

    /// Calls `body` with each entry written after now, until it returns false.
    /// Polls the file (a follower is a person at a terminal; 200 ms is plenty)
    /// and notices rotation by the file's inode changing.
    public func follow(function: String? = nil, poll: Duration = .milliseconds(200), _ body: (LogEntry) -> Bool) {
        var inode: ino_t = 0
        var offset: off_t = 0
        var info = stat()
        if stat(current.path, &info) == 0 { inode = info.st_ino; offset = info.st_size }
        var pending = Data()
        while true {
            if stat(current.path, &info) == 0 {
                if info.st_ino != inode { inode = info.st_ino; offset = 0; pending = Data() }
                if info.st_size > offset, let handle = FileHandle(forReadingAtPath: current.path) {
                    handle.seek(toFileOffset: UInt64(offset))
                    let chunk = handle.readDataToEndOfFile()
                    try? handle.close()
                    offset += off_t(chunk.count)
                    pending.append(chunk)
                    // Only whole lines; a partial one waits for its end.
                    if let lastNewline = pending.lastIndex(of: 0x0A) {
                        let complete = pending[..<lastNewline]
                        pending = Data(pending[pending.index(after: lastNewline)...])
                        for entry in Self.decode(Data(complete)) where function.map(entry.belongs(to:)) ?? true {
                            if !body(entry) { return }
                        }
                    }
                }
            }
            let (seconds, attoseconds) = poll.components
            usleep(useconds_t(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        }
    }
}
