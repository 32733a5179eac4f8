import Foundation

extension String {
    /// The text with C0 controls but tab, DEL and C1 controls written as `\xHH`: what an app
    /// controls (its log lines, build output, config values, names) is shown to an admin at a
    /// terminal, where escape sequences would recolour, retitle, rewrite what is on screen or set
    /// the clipboard.
    public var visibleAtTerminal: String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool {
            (scalar.value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(scalar.value)
        }
        guard unicodeScalars.contains(where: isControl) else { return self }
        var shown = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if isControl(scalar) {
                shown.append(contentsOf: "\\x".unicodeScalars)
                shown.append(contentsOf: String(format: "%02X", scalar.value).unicodeScalars)
            } else {
                shown.append(scalar)
            }
        }
        return String(shown)
    }

    /// `visibleAtTerminal` line by line: the line breaks kept, what is in the lines shown.
    public var linesVisibleAtTerminal: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { String($0).visibleAtTerminal }.joined(separator: "\n")
    }
}
