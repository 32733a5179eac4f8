/// What a buildpack's `bin/release` says about a slug.
///
/// Heroku's format is YAML; Gust reads the one part it needs,
/// `default_process_types`, without pulling in a YAML parser.
public struct ReleaseMetadata: Sendable, Equatable {
    public var processTypes: [String: String]

    /// The command that starts an instance: the `web` process type.
    public var web: String? { processTypes["web"] }

    public init(yaml: String) {
        var processTypes: [String: String] = [:]
        var inProcessTypes = false
        for rawLine in yaml.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(rawLine)
            if line.trimmingPrefix(while: { $0 == " " }).hasPrefix("#") || line == "---" { continue }
            let indented = line.first == " " || line.first == "\t"
            if !indented {
                inProcessTypes = line.hasPrefix("default_process_types:")
                continue
            }
            guard inProcessTypes, let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: " \t")
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            if !key.isEmpty, !value.isEmpty { processTypes[key] = Self.unquote(value) }
        }
        self.processTypes = processTypes
    }

    private static func unquote(_ value: String) -> String {
        for quote in ["\"", "'"] where value.count >= 2 && value.hasPrefix(quote) && value.hasSuffix(quote) {
            return String(value.dropFirst().dropLast())
        }
        return value
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
