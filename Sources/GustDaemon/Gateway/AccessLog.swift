#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore

/// One line per call the gateway answers, formatted and written by a thread of
/// its own so that no event loop waits for the disk or spends time on it:
///
///     2026-12-01T17:50:01.123Z app=cats release=v3 instance=cats-v3-1 method=GET path=/hello status=200 bytes=13 ms=0.412 id=5f0c…-1a
///
/// Fields are `-` when the call did not get that far (no app at that address,
/// no instance). The path is as sent, without its query string (which can
/// hold secrets), control characters, spaces and quotes percent-encoded.
/// Where it goes is `gustd --access-log` (stdout by default, `off`, or a file
/// appended to). A file moved or removed (by logrotate, say) is opened anew
/// within a second, so rotation needs no signal. A line is at most a few hundred bytes; lines are written in
/// batches every 50 ms, and if the writer falls 10,000 lines behind new ones
/// are dropped (and counted) rather than held in memory.
final class AccessLog: Sendable {
    /// What one call did, as the gateway learns it.
    struct Entry: Sendable {
        var app: String?
        var release: Int?
        var instance: String?
        var method: String
        var path: String
        var status: Int
        var bytes: Int
        var duration: Duration
        var requestID: String
        /// When the call arrived, in seconds since 1970.
        var time: Double
    }

    private let writer: Writer?

    /// `reopenCheck`: how often a file's path is looked at for a rotation.
    init(_ destination: AccessLogDestination, reopenCheck: TimeInterval = 1) throws {
        switch destination {
        case .off: writer = nil
        case .standardOutput: writer = Writer(fd: STDOUT_FILENO, file: nil)
        case .file(let path):
            let fd = try Self.open(path)
            writer = Writer(fd: fd, file: (path, reopenCheck))
        }
    }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw GustError("Cannot open the access log \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    var isOn: Bool { writer != nil }

    func record(_ entry: Entry) {
        writer?.append(Self.queued(entry))
    }

    /// The entry as it waits for the writer, its path cut now rather than only as the line is
    /// written: a queue of 10,000 entries held whole paths of up to NIO's 80 KB, 800 MB of gustd's
    /// memory for any client to fill while the writer waits on a slow disk or a full pipe.
    static func queued(_ entry: Entry) -> Entry {
        guard entry.path.utf8.count > maxPathBytes else { return entry }
        let bytes = Array(entry.path.utf8.prefix(maxPathBytes + 1))
        var end = maxPathBytes
        while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // never inside a character
        var cut = entry
        cut.path = String(decoding: bytes[..<end], as: UTF8.self)
        return cut
    }

    /// The most of a path a line keeps.
    static let maxPathBytes = 512

    /// Writes what is queued and stops the writer thread.
    func close() { writer?.close() }

    static func line(_ entry: Entry) -> String {
        var bytes: [UInt8] = []
        var stamp = Stamp()
        append(entry, to: &bytes, stamp: &stamp)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The date and time to the second of the last line written (`2026-12-01T17:50:01.`), which
    /// the lines of one batch mostly share: made once per second rather than once per line.
    struct Stamp {
        fileprivate var second = Int.min
        fileprivate var text: [UInt8] = []
    }

    /// One line's bytes, appended: written a field at a time into one buffer (the writer thread
    /// formats every call's line; as strings joined piece by piece that was a twentieth of
    /// gustd's CPU per health answer, docs/benchmarks.md).
    static func append(_ entry: Entry, to out: inout [UInt8], stamp: inout Stamp) {
        let whole = entry.time.rounded(.down)
        if Int(whole) != stamp.second {
            stamp.second = Int(whole)
            stamp.text = Array(dayAndSecond(whole).utf8)
        }
        out += stamp.text
        appendDigits(min(Int((entry.time - whole) * 1000), 999), width: 3, to: &out)
        out += "Z app=".utf8
        out += (entry.app ?? "-").utf8
        out += " release=".utf8
        if let release = entry.release {
            out.append(UInt8(ascii: "v"))
            appendDigits(release, to: &out)
        } else {
            out.append(UInt8(ascii: "-"))
        }
        out += " instance=".utf8
        out += (entry.instance ?? "-").utf8
        out += " method=".utf8
        out += entry.method.utf8
        out += " path=".utf8
        appendSanitized(entry.path, to: &out)
        out += " status=".utf8
        appendDigits(entry.status, to: &out)
        out += " bytes=".utf8
        appendDigits(entry.bytes, to: &out)
        let micros = entry.duration.components.seconds * 1_000_000 + entry.duration.components.attoseconds / 1_000_000_000_000
        out += " ms=".utf8
        appendDigits(Int(micros / 1000), to: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(Int(micros % 1000), width: 3, to: &out)
        out += " id=".utf8
        out += entry.requestID.utf8
        out.append(UInt8(ascii: "\n"))
    }

    /// `2026-12-01T17:50:01.` for a whole second since 1970, without a formatter.
    private static func dayAndSecond(_ whole: Double) -> String {
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    /// `value` in decimal, with leading zeros up to `width` digits.
    private static func appendDigits(_ value: Int, width: Int = 1, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let start = out.count
        var rest = value.magnitude
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0 || out.count - start < width
        // Written lowest digit first. Reversed by swaps: `out[start...].reverse()` changes a slice
        // through the array's `_modify` accessor, whose coroutine frame was a `malloc` each time.
        var (low, high) = (start, out.count - 1)
        while low < high {
            out.swapAt(low, high)
            low += 1
            high -= 1
        }
    }

    /// The path as one field: at most 512 bytes, nothing that would end it or forge another.
    private static func appendSanitized(_ path: String, to out: inout [UInt8]) {
        let start = out.count
        for byte in path.utf8.prefix(maxPathBytes) {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out += [UInt8(ascii: "%"), HexDigits.upper[Int(byte >> 4)], HexDigits.upper[Int(byte & 0xF)]]
            } else {
                out.append(byte)
            }
        }
        if out.count == start { out.append(UInt8(ascii: "/")) }
    }

    /// The thread that formats and writes queued entries: an event loop only queues one.
    private final class Writer: @unchecked Sendable {
        static let maxQueued = 10_000
        /// How often the writer looks for lines: a line reaches the log at most this late.
        static let interval: TimeInterval = 0.05
        /// Read and replaced by the writer thread only, once it runs.
        private var fd: Int32
        /// The file `fd` was opened from, and how often to look whether it is still there; nil: stdout.
        private let file: (path: String, every: TimeInterval)?
        private var lastLook = Date()
        private let condition = NSCondition()
        /// Guarded by `condition`.
        private var queued: [Entry] = []
        private var dropped = 0
        private var closing = false
        private var finished = false

        init(fd: Int32, file: (path: String, every: TimeInterval)?) {
            self.fd = fd
            self.file = file
            let thread = Thread { self.run() }
            thread.name = "gust-access-log"
            thread.start()
        }

        func append(_ entry: Entry) {
            condition.lock()
            if queued.count < Self.maxQueued { queued.append(entry) } else { dropped += 1 }
            condition.unlock()  // no wake-up: the writer looks every `interval`, sparing a call a system call
        }

        func close() {
            condition.lock()
            closing = true
            condition.broadcast()
            while !finished { condition.wait() }
            condition.unlock()
        }

        private func run() {
            var stamp = Stamp()
            while true {
                condition.lock()
                while queued.isEmpty && !closing { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.interval)) }
                let entries = queued
                queued = []
                let lost = dropped
                dropped = 0
                let done = closing
                condition.unlock()
                var batch: [UInt8] = []
                batch.reserveCapacity(entries.count * 160)
                for entry in entries { AccessLog.append(entry, to: &batch, stamp: &stamp) }
                if lost > 0 { batch += "gustd: \(lost) access log lines dropped: the log could not keep up\n".utf8 }
                reopenIfMoved()
                write(batch)
                if done { break }
            }
            if file != nil { Glibc.close(fd) }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }

        /// Opens the file anew when its path no longer names the file written to: it was rotated
        /// (renamed, or removed) and lines would go on to the old one, out of sight and never freed.
        /// Looked at no more than every `file.every`; a path that cannot be opened keeps the old file.
        private func reopenIfMoved() {
            guard let file, -lastLook.timeIntervalSinceNow >= file.every else { return }
            lastLook = Date()
            let named = FileIdentity(following: file.path)
            let moved = named == nil || named != FileIdentity(descriptor: fd)
            guard moved, let reopened = try? AccessLog.open(file.path) else { return }
            Glibc.close(fd)
            fd = reopened
        }

        private func write(_ text: [UInt8]) {
            text.withUnsafeBufferPointer { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return  // a full disk costs log lines, never calls
                    }
                    offset += written
                }
            }
        }
    }
}

