import Foundation
import GustCore

/// A `.env` file, read as docker compose and python-dotenv read it: `NAME=value`
/// lines, `export NAME=value`, `#` comments, values in single quotes (literal)
/// or double quotes (`\n`, `\"` and `\\` escapes). What `gust dev` gives the
/// app as its config, as `gust config set` gives a pushed app.
struct DotEnv: Equatable {
    var values: [String: String] = [:]
    /// Lines that were not `NAME=value`, for a warning (by line number).
    var skipped: [Int] = []

    init(values: [String: String] = [:]) { self.values = values }

    init(text: String) {
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else { skipped.append(index + 1); continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard Self.isName(name) else { skipped.append(index + 1); continue }
            values[name] = Self.value(String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces))
        }
    }

    /// The file at `url`; none at all is an empty config.
    static func read(_ url: URL) throws -> DotEnv {
        guard FileManager.default.fileExists(atPath: url.path) else { return DotEnv() }
        guard let data = FileManager.default.contents(atPath: url.path), data.count <= 1 << 20 else {
            throw GustError("Cannot read \(url.path) (or it is over 1 MiB).")
        }
        return DotEnv(text: String(decoding: data, as: UTF8.self))
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("A"..."Z").contains(first) || ("a"..."z").contains(first) else { return false }
        return name.count <= 200 && name.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    private static func value(_ raw: String) -> String {
        if raw.hasPrefix("'"), let end = raw.dropFirst().firstIndex(of: "'") { return String(raw[raw.index(after: raw.startIndex)..<end]) }
        if raw.hasPrefix("\"") {
            var out = ""
            var escaped = false
            for character in raw.dropFirst() {
                if escaped {
                    switch character {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    default: out.append(character)
                    }
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    return out
                } else {
                    out.append(character)
                }
            }
            return out
        }
        // Unquoted: a ` #` starts a comment.
        if let comment = raw.range(of: " #") { return raw[..<comment.lowerBound].trimmingCharacters(in: .whitespaces) }
        return raw
    }
}
