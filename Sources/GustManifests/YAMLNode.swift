/// A YAML document as the manifests need it, written out by `YAMLNode.render`.
///
/// Why not JSON or a library: a person reads these manifests before piping them
/// to `kubectl apply`, so they are block-style YAML in Kubernetes' usual key
/// order (maps keep the order they were built in); and every string in them may
/// come from the store (config values, schedule names), so quoting is decided
/// here, in one place, by a rule small enough to test exhaustively: a string is
/// left plain only when no YAML 1.1 or 1.2 reader could take it for anything but
/// that string; everything else is double-quoted with escapes.
public indirect enum YAMLNode: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([YAMLNode])
    case map([Entry])

    /// One key of a map, in the order it is written.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: YAMLNode

        public init(_ key: String, _ value: YAMLNode) {
            self.key = key
            self.value = value
        }
    }

    /// The value of `key` in a map (the first, as maps here never repeat one), or nil.
    public subscript(key: String) -> YAMLNode? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    /// The node as one YAML document, ending in a newline.
    public func render() -> String {
        switch self {
        case .map(let entries) where !entries.isEmpty: Self.lines(ofMap: entries, indent: 0).joined(separator: "\n") + "\n"
        case .list(let items) where !items.isEmpty: Self.lines(ofList: items, indent: 0).joined(separator: "\n") + "\n"
        default: inline! + "\n"
        }
    }

    /// Several documents as one stream, each after a `---` line.
    public static func stream(_ documents: [YAMLNode]) -> String {
        documents.map { "---\n" + $0.render() }.joined()
    }

    /// A scalar or an empty collection, as it is written after `key: ` or `- `; nil for a non-empty collection.
    private var inline: String? {
        switch self {
        case .string(let text): Self.scalar(text)
        case .int(let number): String(number)
        case .bool(let value): value ? "true" : "false"
        case .list(let items): items.isEmpty ? "[]" : nil
        case .map(let entries): entries.isEmpty ? "{}" : nil
        }
    }

    /// Keys are written as simple keys, which YAML caps at 1024 characters: the
    /// keys here are Kubernetes field names, label keys and config var names (128 at most).
    private static func lines(ofMap entries: [Entry], indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        return entries.flatMap { entry -> [String] in
            let key = pad + scalar(entry.key) + ":"
            if let inline = entry.value.inline { return [key + " " + inline] }
            switch entry.value {
            // Kubernetes' own style: a list's dashes line up with its key.
            case .list(let items): return [key] + lines(ofList: items, indent: indent)
            case .map(let nested): return [key] + lines(ofMap: nested, indent: indent + 2)
            default: return [key]
            }
        }
    }

    private static func lines(ofList items: [YAMLNode], indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        return items.flatMap { item -> [String] in
            if let inline = item.inline { return [pad + "- " + inline] }
            // A nested collection starts on the dash's line, its other lines two further in.
            var nested: [String]
            switch item {
            case .map(let entries): nested = lines(ofMap: entries, indent: indent + 2)
            case .list(let inner): nested = lines(ofList: inner, indent: indent + 2)
            default: nested = []
            }
            if !nested.isEmpty { nested[0] = pad + "- " + nested[0].dropFirst(indent + 2) }
            return nested
        }
    }

    // MARK: Quoting

    /// Words some YAML reader takes for a boolean or a null (YAML 1.1 has the most), compared in lower case.
    private static let specialWords: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null"]

    /// `text` left plain when that is certainly safe: a letter or `/` (a path),
    /// then letters, digits, `_`, `.`, `/` and `-` only (never a number, date,
    /// boolean, null, anchor, tag, comment or indicator), and not a special word.
    /// Otherwise double-quoted.
    public static func scalar(_ text: String) -> String {
        isPlainSafe(text) ? text : quoted(text)
    }

    static func isPlainSafe(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, isLetter(first) || first == UInt8(ascii: "/"), !specialWords.contains(text.lowercased()) else { return false }
        return bytes.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "-") }
    }

    /// `text` as a double-quoted YAML scalar on one line: `\` and `"` escaped,
    /// and every character YAML does not allow printed raw (C0 and C1 controls,
    /// DEL, the line and paragraph separators, the byte-order mark, the
    /// non-characters) written as `\n`, `\t` or `\uXXXX`. Also a safe way to show
    /// a hostile string inside a `#` comment: it never spans two lines.
    public static func quoted(_ text: String) -> String {
        "\"" + escaped(text, quotes: true) + "\""
    }

    /// `text` with line breaks, tabs and every other character `quoted` escapes written as
    /// `\n`, `\t`, `\uXXXX`, and nothing else changed: for a note that may quote a hostile string,
    /// printed in a `#` comment or to a terminal.
    public static func escapingControls(_ text: String) -> String {
        escaped(text, quotes: false)
    }

    /// The one escaping `quoted` and `escapingControls` share: controls and separators as `\n`, `\t`,
    /// `\r` or `\uXXXX`; with `quotes`, also `\` and `"` (for the inside of a double-quoted scalar).
    private static func escaped(_ text: String, quotes: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\" where quotes: out += "\\\\"
            case "\"" where quotes: out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if needsEscape(scalar.value) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Outside YAML's printable set (`c-printable`), or a separator a reader could take for a line break.
    private static func needsEscape(_ value: UInt32) -> Bool {
        value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029 || value == 0xFEFF
            || value == 0xFFFE || value == 0xFFFF
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}

extension YAMLNode: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: YAMLNode...) { self = .list(elements) }
    /// Keeps the literal's order.
    public init(dictionaryLiteral elements: (String, YAMLNode)...) { self = .map(elements.map { Entry($0.0, $0.1) }) }
}
