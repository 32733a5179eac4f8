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
/// appended to). A line is at most a few hundred bytes; lines are written in
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

    init(_ destination: AccessLogDestination) throws {
        switch destination {
        case .off: writer = nil
        case .standardOutput: writer = Writer(fd: STDOUT_FILENO, owned: false)
        case .file(let path):
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw GustError("Cannot open the access log \(path): \(String(cString: strerror(errno)))") }
            writer = Writer(fd: fd, owned: true)
        }
    }

    var isOn: Bool { writer != nil }

    func record(_ entry: Entry) {
        writer?.append(entry)
    }

    /// Writes what is queued and stops the writer thread.
    func close() { writer?.close() }

    static func line(_ entry: Entry) -> String {
        var line = timestamp(entry.time)
        line += " app=" + (entry.app ?? "-")
        line += " release=" + (entry.release.map { "v\($0)" } ?? "-")
        line += " instance=" + (entry.instance ?? "-")
        line += " method=" + entry.method
        line += " path=" + sanitized(entry.path)
        line += " status=" + String(entry.status)
        line += " bytes=" + String(entry.bytes)
        let micros = entry.duration.components.seconds * 1_000_000 + entry.duration.components.attoseconds / 1_000_000_000_000
        line += " ms=" + String(micros / 1000) + "." + threeDigits(Int(micros % 1000))
        line += " id=" + entry.requestID
        line += "\n"
        return line
    }

    /// `2026-12-01T17:50:01.123Z`, without a formatter (a call's cost matters).
    static func timestamp(_ time: Double) -> String {
        let whole = time.rounded(.down)
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
            + threeDigits(min(Int((time - whole) * 1000), 999)) + "Z"
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    private static func threeDigits(_ value: Int) -> String {
        value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : String(value)
    }

    /// The path as one field: at most 512 bytes, nothing that would end it or forge another.
    static func sanitized(_ path: String) -> String {
        var out = ""
        for byte in path.utf8.prefix(512) {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out.isEmpty ? "/" : out
    }

    /// The thread that formats and writes queued entries: an event loop only queues one.
    private final class Writer: @unchecked Sendable {
        static let maxQueued = 10_000
        /// How often the writer looks for lines: a line reaches the log at most this late.
        static let interval: TimeInterval = 0.05
        private let fd: Int32
        private let owned: Bool
        private let condition = NSCondition()
        /// Guarded by `condition`.
        private var queued: [Entry] = []
        private var dropped = 0
        private var closing = false
        private var finished = false

        init(fd: Int32, owned: Bool) {
            self.fd = fd
            self.owned = owned
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
            while true {
                condition.lock()
                while queued.isEmpty && !closing { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.interval)) }
                let entries = queued
                queued = []
                let lost = dropped
                dropped = 0
                let done = closing
                condition.unlock()
                var batch = ""
                for entry in entries { batch += AccessLog.line(entry) }
                if lost > 0 { batch += "gustd: \(lost) access log lines dropped: the log could not keep up\n" }
                write(batch)
                if done { break }
            }
            if owned { Glibc.close(fd) }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }

        private func write(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
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

