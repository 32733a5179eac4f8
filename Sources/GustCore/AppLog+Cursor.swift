#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A place in an app's log that rotation does not move: the file by its inode (and its first
/// line, since a deleted file's inode number is soon given to a new file), and the offset of the
/// next unread byte in it. Followers (`gust logs -f`, drains) keep one; a drain stores its
/// cursor, so a restarted gustd goes on where it stopped.
public struct LogCursor: Codable, Sendable, Equatable {
    public var inode: UInt64
    public var offset: Int64
    /// The file's first line (its time to the microsecond and its text), when it had one.
    public var head: String?

    public init(inode: UInt64, offset: Int64, head: String? = nil) {
        self.inode = inode
        self.offset = offset
        self.head = head
    }
}

/// What `AppLog.read(after:)` found.
public struct LogBatch: Sendable {
    public var entries: [LogEntry]
    public var cursor: LogCursor
    /// The file the cursor named had been rotated away: the lines between it and the oldest
    /// file still kept are gone. `entries` start at the oldest line kept.
    public var skipped: Bool

    public init(entries: [LogEntry], cursor: LogCursor, skipped: Bool) {
        self.entries = entries
        self.cursor = cursor
        self.skipped = skipped
    }
}

extension AppLog {
    /// Where a follower starts that wants only lines written from now on: the end of the current file.
    public func endCursor() -> LogCursor {
        var info = stat()
        // Just after a rotation the current file may not exist yet: the end is then the newest rotated file's.
        for url in files.reversed() where stat(url.path, &info) == 0 {
            return LogCursor(inode: UInt64(info.st_ino), offset: Int64(info.st_size), head: Self.head(of: url, inode: UInt64(info.st_ino)))
        }
        return LogCursor(inode: 0, offset: 0)
    }

    /// Whole lines after `cursor`, at most about `maxBytes` of them, crossing into newer files as
    /// the log rotated. A line still being written (no newline yet) waits for the next read.
    public func read(after cursor: LogCursor, maxBytes: Int = 1 << 20) -> LogBatch {
        let chain = files.compactMap { url -> (URL, UInt64)? in
            var info = stat()
            return stat(url.path, &info) == 0 ? (url, UInt64(info.st_ino)) : nil
        }
        guard !chain.isEmpty else {
            // No file yet (or it was just rotated and not written again): stay, unless the cursor's
            // file is gone, in which case the next file to appear starts from its beginning.
            return LogBatch(entries: [], cursor: cursor.inode == 0 ? cursor : LogCursor(inode: 0, offset: 0), skipped: false)
        }
        var index = chain.firstIndex { url, inode in
            inode == cursor.inode && (cursor.head == nil || cursor.offset == 0 || Self.head(of: url, inode: inode) == cursor.head)
        }
        var position = cursor
        var skipped = false
        if index == nil {
            // A cursor on a file that never existed (inode 0: the log was empty) is not a loss.
            skipped = cursor.inode != 0
            index = 0
            position = LogCursor(inode: chain[0].1, offset: 0)
        }
        if position.head == nil || position.offset == 0 { position.head = Self.head(of: chain[index!].0, inode: chain[index!].1) }
        var entries: [LogEntry] = []
        var budget = maxBytes
        var at = index!
        while true {
            let (url, inode) = chain[at]
            let (data, whole) = Self.wholeLines(of: url, inode: inode, from: position.offset, upTo: budget, complete: at + 1 < chain.count)
            entries += Self.decode(data)
            position = LogCursor(inode: inode, offset: position.offset + Int64(data.count), head: position.head ?? Self.head(of: url, inode: inode))
            budget -= data.count
            // Move to the next file only once this one is read to its end: it was rotated, so it is complete.
            guard whole, at + 1 < chain.count, budget > 0 else { break }
            at += 1
            position = LogCursor(inode: chain[at].1, offset: 0, head: Self.head(of: chain[at].0, inode: chain[at].1))
        }
        return LogBatch(entries: entries, cursor: position, skipped: skipped)
    }

    /// The file's first line (at most 4 KB of it), if it is still the file with that inode and has one.
    /// A whole line, not a few bytes: lines start alike (`{"release":3,"instance":…`), and a deleted
    /// file's inode number is soon another file's; its first line's time and text tell them apart.
    static func head(of url: URL, inode: UInt64) -> String? {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, UInt64(info.st_ino) == inode else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = pread(fd, &bytes, bytes.count, 0)
        guard count > 0 else { return nil }
        let read = bytes.prefix(count)
        let line = read.firstIndex(of: 0x0A).map { read.prefix(through: $0) } ?? read
        return String(decoding: line, as: UTF8.self)
    }

    /// The complete lines of `url` from `offset` (at most `limit` bytes unless the first line is
    /// longer), and whether that reached the file's end. A `complete` file (rotated: nobody writes
    /// it any more) is read to its end even if its last line lacks a newline (a write cut short by
    /// a full disk), so a follower never waits on it. Checks the inode after opening, so a file
    /// rotated in between reads as empty rather than as another file's bytes.
    private static func wholeLines(of url: URL, inode: UInt64, from offset: Int64, upTo limit: Int, complete: Bool) -> (Data, Bool) {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (Data(), complete) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, UInt64(info.st_ino) == inode else { return (Data(), false) }
        let available = Int64(info.st_size) - offset
        guard available > 0 else { return (Data(), available == 0) }
        var data = Data(count: Int(min(available, Int64(max(limit, 64 * 1024)))))
        let count = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard count > 0 else { return (Data(), false) }
        data.count = count
        let reachedEnd = Int64(count) == available
        if complete, reachedEnd { return (data, true) }
        guard let lastNewline = data.lastIndex(of: 0x0A) else {
            // One line longer than the budget: take it whole once it ends, rather than never.
            return reachedEnd ? (Data(), false) : wholeLines(of: url, inode: inode, from: offset, upTo: Int(available), complete: complete)
        }
        let lines = data.prefix(through: lastNewline)
        return (Data(lines), Int64(lines.count) == available)
    }

    /// Calls `body` with each entry written after now, until it returns false, or until `finished`
    /// says so and everything written before it said so has been passed on (a follower that stops
    /// must not drop the last lines, which are often the ones that say what went wrong).
    /// Polls the files (a follower is a person at a terminal; 200 ms is plenty) through a cursor,
    /// so no line is lost when the log rotates in between.
    ///
    /// `mayShow` is asked after each read that found lines, before any of them is shown: false ends
    /// the stream with them unshown (the app destroyed since, whose next tenant's log a read from
    /// new files' first byte would be).
    public func follow(
        function: String? = nil, poll: Duration = .milliseconds(200), finished: () -> Bool = { false },
        mayShow: () -> Bool = { true }, _ body: (LogEntry) -> Bool
    ) {
        var cursor = endCursor()
        while true {
            let last = finished()  // asked before the read, so the read sees what came before
            let batch = read(after: cursor)
            cursor = batch.cursor
            if !batch.entries.isEmpty, !mayShow() { return }
            for entry in batch.entries where function.map(entry.belongs(to:)) ?? true {
                if !body(entry) { return }
            }
            if batch.entries.isEmpty {
                if last { return }
                let (seconds, attoseconds) = poll.components
                usleep(useconds_t(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
            }
        }
    }
}
