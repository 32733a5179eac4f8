import Foundation
import GustCore
import GustTesting
import Testing

/// `gust call` over a real sshd: a key scoped to an app calls its ops (a
/// private app too) and sees its log lines; another app, a dev server or a
/// port of the server are refused.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHCallTests {
    @Test(.scratchDirectory) func aScopedKeyCallsItsAppAndNoOther() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "dogs"]).status == 0)
        let work = try fixture.workspace("cats")
        try work.write("__init__.py", """
            import gust

            @gust.op('food:buy')
            def buy(food):
                print('buying', food)
                return {'food': food}
            """)
        try work.commit("Cats that print")
        let push = try work.push(to: fixture.home.repository(try AppName("cats")).path)
        #expect(push.status == 0, "\(push.output)")
        #expect(try fixture.gust(["apps", "set", "cats", "--private"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])

        // Locally, with the home: the answer, and with -v the status and the call's lines.
        let local = try fixture.gust(["call", "cats", "food:buy", #"{"food": "tuna"}"#, "-v"])
        #expect(local.status == 0, "\(local.output)")
        #expect(local.stdout.contains("tuna"), "\(local.output)")
        #expect(local.stderr.contains("HTTP 200") && local.stderr.contains("buying tuna"), "\(local.output)")

        // Over SSH, the JSON on stdin; the app is private, and the call needs no token of bob's.
        let called = try fixture.ssh("call cats food:buy -v -", as: bob, input: #"{"food": "salmon"}"#)
        #expect(called.status == 0, "\(called.output)\n\(fixture.server.logText)")
        #expect(called.stdout.contains(#""food""#) && called.stdout.contains("salmon"), "\(called.output)")
        #expect(called.stderr.contains("HTTP 200"), "\(called.output)")
        #expect(called.stderr.contains("[op food:buy] buying salmon"), "\(called.output)")
        #expect(try Store(home: fixture.home).tokens(try AppName("cats")).allSatisfy { !$0.isValid() }, "the call's token is revoked")

        // An error answer exits 1 and still prints it.
        let failed = try fixture.ssh("call cats food:buy -", as: bob, input: #"{"wrong": 1}"#)
        #expect(failed.status != 0 && failed.stdout.contains("\"error\""), "\(failed.output)")

        // Another app, a dev server, a port, a hostile app name: refused.
        let other = try fixture.ssh("call dogs food:buy", as: bob)
        #expect(other.status != 0 && other.stderr.contains("may not use app 'dogs'"), "\(other.output)")
        let dev = try fixture.ssh("call --dev food:buy", as: bob)
        #expect(dev.status != 0 && dev.stderr.contains("not available over SSH"), "\(dev.output)")
        let port = try fixture.ssh("call --dev --port 22 food:buy", as: bob)
        #expect(port.status != 0 && port.stderr.contains("not available over SSH"), "\(port.output)")
        let directory = try fixture.ssh("call cats food:buy --dir /tmp", as: bob)
        #expect(directory.status != 0 && directory.stderr.contains("go with --dev"), "\(directory.output)")
        let hostile = try fixture.ssh("call ../cats food:buy", as: bob)
        #expect(hostile.status != 0 && !hostile.stdout.contains("salmon"), "\(hostile.output)")
        #expect(fixture.sshLog.contains("refused key=\"bob\""))
    }
}
