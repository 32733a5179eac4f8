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

    /// `2026-11-22T23:30:01.123Z v3 a1b2 [op food:buy] Meow`, for a terminal (`gust logs`) and
    /// the console: control characters but tab, which the app printed, are shown as `\x1B`, so
    /// that a line can neither move a terminal's cursor back over its own prefix (`\r`) to pass
    /// for another's, nor send the terminal escape sequences (colours, titles, its clipboard).
    public var formatted: String {
        var parts = [Self.timeFormat.string(from: time)]
        parts.append(release.map { "v\($0)" } ?? "-")
        parts.append(instance ?? stream)
        if let function { parts.append("[\(Self.visible(function))]") }
        if stream == "stderr" { parts.append("!") }
        return (parts + [Self.visible(line)]).joined(separator: " ")
    }

    /// `text` with C0 controls but tab, DEL and C1 controls written as `\xHH` (`String.visibleAtTerminal`).
    static func visible(_ text: String) -> String { text.visibleAtTerminal }

    /// A time as log lines show it: RFC 3339 in UTC, to the millisecond.
    public static func timeText(_ date: Date) -> String { timeFormat.string(from: date) }

    nonisolated(unsafe) static let timeFormat: ISO8601DateFormatter = {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format
    }()
}

extension LogEntry {
    /// The entry as one JSON object for people's tools (`gust logs --json`, HTTP drains): the time as
    /// RFC 3339 text rather than the epoch seconds the log file keeps, and the app named.
    public func jsonObject(app: AppName) -> [String: Any] {
        var object: [String: Any] = ["time": Self.timeFormat.string(from: time), "app": app.rawValue, "stream": stream, "line": line]
        if let release { object["release"] = release }
        if let instance { object["instance"] = instance }
        if let function { object["function"] = function }
        if let request { object["request"] = request }
        return object
    }

    /// `jsonObject` as one line of NDJSON, keys sorted so equal entries read the same, C1 controls
    /// escaped (`jsonVisibleAtTerminal`).
    public func jsonLine(app: AppName) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject(app: app), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self).jsonVisibleAtTerminal
    }
}
