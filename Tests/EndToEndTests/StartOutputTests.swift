import Foundation
import GustCore
import GustTesting
import Testing

/// What an app prints while it imports reaches the pusher's terminal, every line of it: the start's
/// answer (a zygote's readiness, an instance's manifest) comes over a socket and can overtake lines
/// still in the output pipes, so the relay to the deploy waits for them before it ends. Both ways
/// a release starts: a Python zygote, and a Node instance on its own.
@Suite(.timeLimit(.minutes(10)))
struct StartOutputTests {
    /// Lines printed at import: enough (about 40 KB, under a pipe's 64 KiB, so the app never waits
    /// for its reader) that the answer after them often arrives before their reader is through.
    static let lines = 400

    @Test(.scratchDirectory) func everyLineAPythonAppPrintsAtImportReachesThePusher() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import sys

            import gust

            sys.stdout.write(''.join(f'import line {n:04} ' + 'x' * 80 + '\\n' for n in range(\(Self.lines))))
            sys.stdout.flush()

            @gust.op('hello')
            def hello():
                return 'hi'
            """)
        try work.commit("Prints at import")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(pushed.output.contains("Starting zygote"), "a zygote imported the app: \(pushed.output)")
        Self.expectEveryLine(in: pushed.output)
    }

    @Test(.scratchDirectory) func everyLineANodeAppPrintsAtImportReachesThePusher() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none"])
        let work = try fixture.workspace("node")
        try work.write("package.json", #"{"name": "cats", "main": "index.js"}"#)
        try work.write("index.js", """
            const gust = require('gust');
            let text = '';
            for (let n = 0; n < \(Self.lines); n++) text += `import line ${String(n).padStart(4, '0')} ${'x'.repeat(80)}\\n`;
            process.stdout.write(text);
            gust.op('hello', () => 'hi');
            """)
        try work.commit("Prints at import")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        Self.expectEveryLine(in: pushed.output)
    }

    /// What an app prints cannot pass for Gust's own lines at the pusher's terminal: git's client
    /// starts a new `remote:` line at a carriage return, so the return is shown as text, and so are
    /// escape sequences that would hide the lines after them.
    @Test(.scratchDirectory) func linesAnAppPrintsCannotPassForGustsOwn() throws {
        let fixture = try PushFixture(gustdArguments: ["--sandbox", "none"])
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            print('loading\\r-----> v9 is live', flush=True)
            print('\\x1b[8mhidden from here\\x1b]52;c;Y3VybA==\\x07', flush=True)

            @gust.op('hello')
            def hello():
                return 'hi'
            """)
        try work.commit("Prints what looks like Gust")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(!pushed.output.contains("\u{1B}") && !pushed.output.contains("\r"), "\(pushed.output)")
        #expect(pushed.output.contains("loading\\x0D-----> v9 is live"), "\(pushed.output)")
        // A terminal starts a line at either (git's client writes `remote: ` again after a return).
        let forged = pushed.output.components(separatedBy: CharacterSet(charactersIn: "\r\n")).filter { $0.hasPrefix("remote: -----> v9") }
        #expect(forged.isEmpty, "\(forged)")
    }

    static func expectEveryLine(in output: String) {
        let shown = Set(output.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "import line ") else { return nil }
            return Int(line[range.upperBound...].prefix(4))
        })
        let missing = (0..<lines).filter { !shown.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) of \(lines) lines missing, the first \(missing.first ?? -1): \(output.suffix(2000))")
    }
}
