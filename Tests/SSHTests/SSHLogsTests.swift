import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// `logs APP -f` over SSH is checked once when it starts; it then ran for as long as the client
/// liked: past a revoked grant and a removed key, and, once the app was destroyed and made again
/// for another tenant, through that tenant's log from its first line.
@Suite(.timeLimit(.minutes(5)))
struct SSHLogsTests {
    /// `ssh … logs cats -n 5 -f` as bob, its output in a file; stopped by its PID at the end.
    final class Follower: Sendable {
        let process: Process
        let output: URL

        init(_ fixture: SSHFixture, _ pair: SSHKeyPair, app: String) throws {
            output = fixture.root.appendingPathComponent("follow-\(UUID().uuidString.prefix(6)).out")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let handle = try FileHandle(forWritingTo: output)
            process = Process()
            process.executableURL = URL(fileURLWithPath: try Command.which("ssh"))
            process.arguments = SSHServer.clientOptions(key: pair.privateKey)
                + ["-T", "-p", String(fixture.server.port), "\(fixture.server.login)@127.0.0.1", "logs \(app) -n 5 -f"]
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        func waitFor(_ what: String, seconds: Double = 20) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if text.contains(what) { return true }
                usleep(50_000)
            }
            return text.contains(what)
        }

        func waitForExit(seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            return !process.isRunning
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    func say(_ fixture: SSHFixture, _ line: String) throws {
        try AppLog(home: fixture.home, app: try AppName("cats")).append([LogEntry(release: 1, instance: "i1", stream: "stdout", function: nil, line: line)])
    }

    @Test(.scratchDirectory) func aFollowedStreamEndsOnceItsKeyMayNoLongerReadTheApp() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "cats"])
        try say(fixture, "before")
        let follower = try Follower(fixture, bob, app: "cats")
        defer { follower.stop() }
        #expect(follower.waitFor("before"), "\(follower.text)")
        try say(fixture, "while-granted")
        #expect(follower.waitFor("while-granted"), "\(follower.text)")

        #expect(try fixture.gust(["keys", "revoke", "bob", "cats"]).status == 0)
        #expect(follower.waitForExit(seconds: 15), "still streaming after the grant was revoked: \(follower.text)")
        #expect(follower.process.terminationStatus != 0)
        #expect(follower.text.contains("may no longer read 'cats'"), "\(follower.text)")
        try say(fixture, "after-revoke")
        #expect(!follower.text.contains("after-revoke"))
    }

    @Test(.scratchDirectory) func aFollowedStreamEndsWhenItsAppIsDestroyed() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        try say(fixture, "the old tenant's")
        let follower = try Follower(fixture, alice, app: "cats")
        defer { follower.stop() }
        #expect(follower.waitFor("the old tenant's"), "\(follower.text)")

        #expect(try fixture.gust(["apps", "destroy", "cats", "--confirm", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        try say(fixture, "the next tenant's")
        #expect(follower.waitForExit(seconds: 15), "still streaming: \(follower.text)")
        #expect(!follower.text.contains("the next tenant's"), "\(follower.text)")
        #expect(follower.text.contains("was destroyed"), "\(follower.text)")
    }
}
