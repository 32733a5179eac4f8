import Foundation
public import GustCore

/// What an app's code reports to a test: lines it prints with a prefix, read
/// back from its log (`logs/APP.log`). A sandboxed app cannot write a file the
/// test sees (it sees no host path but its release and socket directory), so
/// tests that counted runs in a marker file count printed marks instead.
public enum AppLogMarks {
    /// The text after `prefix` of each line the app printed that starts with it, oldest first.
    public static func read(_ home: GustHome, app: String, prefix: String) -> [String] {
        let log = home.logs.appendingPathComponent("\(app).log")
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let printed = object["line"] as? String, printed.hasPrefix(prefix)
            else { return nil }
            return String(printed.dropFirst(prefix.count))
        }
    }

    /// `read`, once `enough` holds or `seconds` have passed (a printed line reaches the log just after the call answers).
    public static func wait(
        _ home: GustHome, app: String, prefix: String, seconds: Double = 5, until enough: ([String]) -> Bool
    ) -> [String] {
        var marks = read(home, app: app, prefix: prefix)
        for _ in 0..<Int(seconds * 20) where !enough(marks) {
            usleep(50_000)
            marks = read(home, app: app, prefix: prefix)
        }
        return marks
    }

    /// `read` after a short settle, for checks that something did not happen.
    public static func settled(_ home: GustHome, app: String, prefix: String) -> [String] {
        usleep(500_000)
        return read(home, app: app, prefix: prefix)
    }
}
