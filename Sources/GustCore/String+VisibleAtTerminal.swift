import Foundation

extension String {
    /// The text with C0 controls but tab, DEL and C1 controls written as `\xHH`, and the
    /// characters that reorder text without being controls (bidi marks, embeddings, overrides
    /// and isolates) as `\uHHHH`: what an app
    /// controls (its log lines, build output, config values, names) is shown to an admin at a
    /// terminal, where escape sequences would recolour, retitle, rewrite what is on screen or set
    /// the clipboard, and a right-to-left override would show a line's text in another order.
    public var visibleAtTerminal: String {
        guard unicodeScalars.contains(where: { Self.hiddenKind($0) != nil }) else { return self }
        return replacingScalars { scalar, _ in
            switch Self.hiddenKind(scalar) {
            case .control?: String(format: "\\x%02X", scalar.value)
            case .format?: String(format: "\\u%04X", scalar.value)
            case nil: nil
            }
        }
    }

    private enum Hidden { case control, format }

    private static func hiddenKind(_ scalar: Unicode.Scalar) -> Hidden? {
        let value = scalar.value
        if (value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(value) { return .control }
        switch value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return .format
        default: return nil
        }
    }

    /// JSON text as a terminal may be shown it: every scalar `visibleAtTerminal` hides but tab,
    /// line feed and a carriage return before one (whitespace JSON may hold between tokens)
    /// written as `\u00XX` or `\uHHHH`. Inside a string that is the same value; JSON encoders leave
    /// DEL, the C1 controls (U+009B is CSI to a terminal that takes C1 as UTF-8) and bidi
    /// overrides raw, and an app's code may write its own bytes as an answer (`gust call`, over
    /// SSH too, where the server sees no terminal). Also for `--json` output and drains' NDJSON.
    public var jsonVisibleAtTerminal: String {
        guard unicodeScalars.contains(where: { $0 == "\r" || ($0 != "\n" && Self.hiddenKind($0) != nil) }) else { return self }
        return replacingScalars { scalar, next in
            let kept = scalar == "\n" || (scalar == "\r" && next == "\n") || Self.hiddenKind(scalar) == nil
            return kept ? nil : String(format: "\\u%04x", scalar.value)
        }
    }

    /// The text with each scalar `replacement` (given it and the scalar after it) returns a text for
    /// replaced by that text.
    private func replacingScalars(_ replacement: (Unicode.Scalar, _ next: Unicode.Scalar?) -> String?) -> String {
        var shown = String.UnicodeScalarView()
        var scalars = unicodeScalars.makeIterator()
        var current = scalars.next()
        while let scalar = current {
            let next = scalars.next()
            if let text = replacement(scalar, next) { shown.append(contentsOf: text.unicodeScalars) } else { shown.append(scalar) }
            current = next
        }
        return String(shown)
    }

    /// `visibleAtTerminal` line by line: the line breaks kept, what is in the lines shown.
    public var linesVisibleAtTerminal: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { String($0).visibleAtTerminal }.joined(separator: "\n")
    }
}
