import Foundation
import GustManifests
import Testing

/// The emitter: its block layout, its quoting rule, and PyYAML reading every hostile string back exactly.
@Suite struct YAMLNodeTests {
    @Test func aTreeIsWrittenInBlockStyleInItsOwnOrder() {
        let node: YAMLNode = [
            "kind": "Deployment",
            "spec": ["replicas": 2, "paused": false, "empty": [:], "none": []],
            "containers": [["name": "web", "args": ["schedule", "x"]], "plain"],
            "nested": [["a", "b"]],
        ]
        #expect(node.render() == """
            kind: Deployment
            spec:
              replicas: 2
              paused: false
              empty: {}
              none: []
            containers:
            - name: web
              args:
              - schedule
              - x
            - plain
            nested:
            - - a
              - b

            """)
    }

    @Test(arguments: ["web", "apps/v1", "app.kubernetes.io/name", "cats-v3", "Deployment", "a_b", "/tmp", "/_/health"])
    func namesAndWordsStayPlain(_ text: String) {
        #expect(YAMLNode.scalar(text) == text)
    }

    /// Each of these means something else to some YAML reader when written bare.
    @Test(arguments: [
        "", "8080", "1.5", "0x1F", "1_000", "1e3", "2026-12-01", "12:30", "yes", "No", "ON", "off", "y", "N", "true", "False",
        "null", "Null", "~", "-", "- c", "a: b", "#x", "&a", "*a", "!!python/object", "'", "\"", "{}", "[x]", "%TAG", "@x", "`x",
        "|", ">", "?", ".inf", ".NaN", " x", "x ", "a #b", "é", "<<",
    ])
    func anythingElseIsQuoted(_ text: String) {
        #expect(YAMLNode.scalar(text).hasPrefix("\""), "\(text) left plain")
    }

    @Test func escapesKeepAQuotedStringOnOneLineWithNoRawControlCharacters() {
        let quoted = YAMLNode.quoted("a\"b\\c\nd\te\r\u{0}\u{7}\u{1B}\u{7F}\u{85}\u{2028}\u{2029}\u{FEFF}é😀")
        #expect(quoted == #""a\"b\\c\nd\te\r\u0000\u0007\u001B\u007F\u0085\u2028\u2029\uFEFFé😀""#)
    }

    @Test func escapingControlsLeavesQuotesAndChangesOnlyWhatATerminalWouldObey() {
        #expect(YAMLNode.escapingControls("a \"b\" \\ \u{1B}[31m\nc\u{2028}é") == #"a "b" \ \u001B[31m\nc\u2028é"#)
    }

    /// The strings a config var may hold, read back by a real YAML reader as values and as keys.
    static let hostile = [
        "a: b\n- c", "!!python/object/apply:os.system ['id']", "'", "\"", "''", "yes", "no", "on", "NULL", "~", "8080",
        "0o17", "0x1F", "1e3", "2026-12-01", "12:30:00", "- item", "? key", "key: value", "# not a comment",
        "{a: 1}", "[1, 2]", "&anchor", "*alias", "|\n  block", ">\n folded", "%YAML 1.2", "---", "...", "\\", "\\n",
        "tab\there", "line\r\nbreak", "trailing space ", " leading", "\u{0}nul", "\u{7}bell", "\u{1B}[31mred", "\u{7F}",
        "\u{85}nel", "\u{2028}ls", "\u{2029}ps", "\u{FEFF}bom", "é ü ß 漢字", "😀", "<<", "=", "@", "`cmd`",
        String(repeating: "long ", count: 400),
    ]

    @Test func pyYAMLReadsEveryHostileStringBackExactly() throws {
        let asValues: YAMLNode = .map(Self.hostile.enumerated().map { .init("k\($0.offset)", .string($0.element)) })
        // YAML caps a plain-style key at 1024 characters; keys here are names (config vars, at most 128).
        let asKeys: YAMLNode = .map(Self.hostile.enumerated().filter { $0.element.count < 1000 }.map { .init($0.element, .int($0.offset)) })
        let asList: YAMLNode = .list(Self.hostile.map(YAMLNode.string))
        let documents = [asValues, asKeys, asList]
        let text = YAMLNode.stream(documents)
        #expect(try RealYAMLReader.mismatch(text, documents) == nil)
    }

    /// The check above is not vacuous: PyYAML reads a bare `yes` as true, not as the string.
    @Test func theRealReaderCatchesAnUnquotedString() throws {
        #expect(try RealYAMLReader.mismatch("v: yes\n", [["v": "yes"]]) != nil)
        #expect(try RealYAMLReader.mismatch("v: \"yes\"\n", [["v": "yes"]]) == nil)
    }
}
