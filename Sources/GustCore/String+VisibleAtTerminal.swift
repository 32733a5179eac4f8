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
        var shown = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            switch Self.hiddenKind(scalar) {
            case .control?:
                shown.append(contentsOf: "\\x".unicodeScalars)
                shown.append(contentsOf: String(format: "%02X", scalar.value).unicodeScalars)
            case .format?:
                shown.append(contentsOf: "\\u".unicodeScalars)
                shown.append(contentsOf: String(format: "%04X", scalar.value).unicodeScalars)
            case nil:
                shown.append(scalar)
            }
        }
        return String(shown)
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

    /// JSON text with the C1 controls (U+0080 to U+009F) written as `\u00XX`, which JSON encoders
    /// leave raw: a terminal that acts on C1 sent as UTF-8 would take U+009B for CSI in
    /// `gust logs --json`. In JSON they can only be inside strings, so the value is the same.
    public var jsonEscapingC1: String {
        guard unicodeScalars.contains(where: { (0x80...0x9F).contains($0.value) }) else { return self }
        var escaped = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if (0x80...0x9F).contains(scalar.value) {
                escaped.append(contentsOf: String(format: "\\u%04x", scalar.value).unicodeScalars)
            } else {
                escaped.append(scalar)
            }
        }
        return String(escaped)
    }

    /// `visibleAtTerminal` line by line: the line breaks kept, what is in the lines shown.
    public var linesVisibleAtTerminal: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { String($0).visibleAtTerminal }.joined(separator: "\n")
    }
}
