import Foundation
import GustBuild
import Synchronization
import Testing

/// What a build prints reaches the pusher one indented line per line the buildpack indented, as
/// text: a carriage return, a Unicode line separator or an escape sequence in pip's output (a
/// dependency's install script writes there) can neither start a line of its own that reads as
/// one of Gust's (`-----> v9 is live`) nor act on the pusher's terminal.
@Suite struct BuildOutputLinesTests {
    /// Lines end at a line feed only, as `sed` reads them when it indents; a CR before the line
    /// feed goes with it.
    @Test func aCommandsLinesEndAtLineFeedsOnly() async throws {
        let lines = Mutex<[String]>([])
        let command = StreamingCommand(
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", #"printf 'a\rb\342\200\250c\302\205d\013e\014f\nsecond\r\nthird'"#],
            environment: ["PATH": "/usr/bin:/bin"], workingDirectory: URL(fileURLWithPath: "/")
        )
        let outcome = try await command.run(until: .now + .seconds(30)) { line in lines.withLock { $0.append(line) } }
        #expect(outcome == .exited(0))
        #expect(lines.withLock { $0 } == ["a\rb\u{2028}c\u{85}d\u{0B}e\u{0C}f", "second", "third"])
    }

    @Test func whatALineHoldsReachesThePusherAsText() {
        let sent = Mutex<[String]>([])
        let reporter = BuildReporter(sink: { line in sent.withLock { $0.append(line) } })
        reporter.mask(["hunter22"])
        reporter.raw("       x\r-----> v9 is live")
        reporter.raw("       \u{1B}[8mhidden\u{1B}]52;c;Y3VybA==\u{07} hunter22 \u{202E}txt")
        reporter.detail("op       a\n-----> v9 is live")
        reporter.step("Python 3.11")
        #expect(sent.withLock { $0 } == [
            "       x\\x0D-----> v9 is live",
            "       \\x1B[8mhidden\\x1B]52;c;Y3VybA==\\x07 •••••• \\u202Etxt",
            "       op       a\\x0A-----> v9 is live",
            "-----> Python 3.11",
        ])
        #expect(reporter.log == sent.withLock { $0 }.map { $0 + "\n" }.joined())
    }
}
