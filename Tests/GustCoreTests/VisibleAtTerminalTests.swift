import Foundation
import GustCore
import Testing

/// What an app controls, as an admin's terminal is shown it.
@Suite struct VisibleAtTerminalTests {
    @Test func controlsAreShownAsHexAndTabsAndTextStay() {
        #expect("plain text, tab\there, é and 猫".visibleAtTerminal == "plain text, tab\there, é and 猫")
        #expect("\u{1B}]52;c;eA==\u{07}\u{1B}[2J".visibleAtTerminal == "\\x1B]52;c;eA==\\x07\\x1B[2J")
        #expect("del\u{7F} csi\u{9B}".visibleAtTerminal == "del\\x7F csi\\x9B")
        #expect("a\nb\rc".linesVisibleAtTerminal == "a\nb\\x0Dc")
    }

    /// A right-to-left override shows what follows it in reverse (the "Trojan Source" trick): a
    /// build line could read as something else. Bidi marks, embeddings, overrides and isolates are
    /// shown as `\uHHHH`; the Unicode line separators, which terminals do not act on, stay.
    @Test func bidiControlsAreShownEscaped() {
        #expect("evil\u{202E}txt.exe".visibleAtTerminal == "evil\\u202Etxt.exe")
        #expect("\u{2066}x\u{2069}\u{200F}\u{061C}".visibleAtTerminal == "\\u2066x\\u2069\\u200F\\u061C")
        #expect("one\u{2028}two\u{2029}".visibleAtTerminal == "one\u{2028}two\u{2029}")
    }

    /// JSON encoders leave C1 controls raw; `gust logs --json` and every `--json` table escape them,
    /// and the value read back is the same.
    @Test func jsonLinesEscapeC1ControlsAndKeepTheirValue() throws {
        let entry = LogEntry(release: 1, instance: "a1", stream: "stdout", function: nil, line: "csi\u{9B}2J osc\u{9D}0;x\u{9C} é")
        let line = entry.jsonLine(app: try AppName("cats"))
        #expect(!line.unicodeScalars.contains { (0x80...0x9F).contains($0.value) }, "\(line)")
        #expect(line.contains("csi\\u009b2J"), "\(line)")
        let decoded = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(decoded?["line"] as? String == "csi\u{9B}2J osc\u{9D}0;x\u{9C} é")
    }

    /// JSON shown at a terminal (`gust call`'s answer, `--json`): what the terminal would act on
    /// (C0 controls, DEL, C1, a lone carriage return, bidi overrides) as `\uXXXX`, the same value
    /// where it is inside a string; tab, line feeds and CRLF, whitespace between tokens, stay.
    @Test func jsonShownAtATerminalKeepsItsValue() throws {
        let raw = "{\r\n\t\"a\": \"x\u{1B}[2J\ry\u{202E}z\u{9B}\u{7F}w\"\n}"
        let shown = raw.jsonVisibleAtTerminal
        #expect(shown == "{\r\n\t\"a\": \"x\\u001b[2J\\u000dy\\u202ez\\u009b\\u007fw\"\n}")
        let decoded = try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: String]
        #expect(decoded?["a"] == "x\u{1B}[2J\ry\u{202E}z\u{9B}\u{7F}w")
        #expect("plain \"json\" é".jsonVisibleAtTerminal == "plain \"json\" é")
        #expect("ends with\r".jsonVisibleAtTerminal == "ends with\\u000d")
    }
}
