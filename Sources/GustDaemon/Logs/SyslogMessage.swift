import Foundation
import GustCore

/// One log entry as an RFC 5424 syslog message, framed by octet counting (RFC 6587 §3.4.1) for TCP:
/// `LEN <PRI>1 TIMESTAMP HOST APP PROCID - [gust@32473 …] LINE`. stderr lines are severity 3
/// (error), the rest 6 (informational), facility 1 (user-level).
enum SyslogMessage {
    static func frame(_ entry: LogEntry, app: AppName, hostname: String) -> Data {
        let severity = entry.stream == "stderr" ? 3 : 6
        let timestamp = LogEntry.timeText(entry.time)
        let procID = header(entry.instance ?? entry.stream, limit: 128)
        var data = [("release", entry.release.map(String.init)), ("function", entry.function), ("stream", entry.stream)]
            .compactMap { name, value in value.map { "\(name)=\"\(parameter($0))\"" } }
            .joined(separator: " ")
        data = "[gust@32473 \(data)]"
        let message = "<\(8 + severity)>1 \(timestamp) \(header(hostname, limit: 255)) \(header(app.rawValue, limit: 48)) \(procID) - \(data) \(entry.line)"
        let bytes = Data(message.utf8)
        return Data("\(bytes.count) ".utf8) + bytes
    }

    /// A header field: printable ASCII without spaces, at most `limit` characters, `-` when empty.
    static func header(_ text: String, limit: Int) -> String {
        let kept = String(text.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }.prefix(limit).map(Character.init))
        return kept.isEmpty ? "-" : kept
    }

    /// An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3).
    static func parameter(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\"" || character == "\\" || character == "]" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
