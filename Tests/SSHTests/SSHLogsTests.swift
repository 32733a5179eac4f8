import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

/// `logs APP -f` over SSH is checked once when it starts; it then ran for as long as the client
/// liked: past a revoked grant and a removed key, and, once the app was destroyed and made again
/// for another tenant, through that tenant's log from its first line.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHLogsTests {
    /// `ssh … logs cats -n 5 -f` on a thread of its own (the real `ssh`, through `Command.run`,
    /// killed by its PID past 60 s); `result` once it has ended.
    final class Follower: Sendable {
        private let ended = DispatchSemaphore(value: 0)
        private let outcome = Mutex<Result<CommandResult, any Error>?>(nil)

        init(_ fixture: SSHFixture, _ pair: SSHKeyPair, named name: String, app: String) {
            let arguments = SSHServer.clientOptions(key: pair.privateKey)
                + ["-T", "-p", String(fixture.server.port), "\(fixture.server.login)@127.0.0.1", "logs \(app) -n 5 -f"]
            Thread.detachNewThread { [self] in
                let result = Result { try Command.run("ssh", arguments, input: "", timeout: 60) }
                outcome.withLock { $0 = result }
                ended.signal()
            }
            // Started once gustd's side has taken the request, and its tail is read.
            let deadline = Date().addingTimeInterval(20)
            while !fixture.sshLog.contains("accepted key=\"\(name)\" from=127.0.0.1 command=\"logs \(app) -n 5 -f\""),
                Date() < deadline
            {
                usleep(50_000)
            }
            usleep(1_000_000)
        }

        /// What it printed, once it ended within `seconds`; nil if it is still running.
        func result(within seconds: Double) -> CommandResult? {
            guard ended.wait(timeout: .now() + seconds) == .success else { return nil }
            return try? outcome.withLock { $0 }?.get()
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
        let follower = Follower(fixture, bob, named: "bob", app: "cats")
        try say(fixture, "while-granted")
        usleep(1_000_000)
        #expect(try fixture.gust(["keys", "revoke", "bob", "cats"]).status == 0)
        usleep(500_000)
        try say(fixture, "after-revoke")  // within the 5 s before the key is checked again: shown or not, the stream ends
        let result = follower.result(within: 20)
        let output = result?.output ?? ""
        #expect(result != nil, "still streaming after the grant was revoked")
        #expect(result?.status != 0, "\(output)")
        #expect(output.contains("before") && output.contains("while-granted"), "\(output)")
        #expect(output.contains("may no longer read 'cats'"), "\(output)")
    }

    @Test(.scratchDirectory) func aFollowedStreamEndsWhenItsAppIsDestroyed() throws {
        let fixture = try SSHFixture()
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        try say(fixture, "the old tenant's")
        let follower = Follower(fixture, alice, named: "alice", app: "cats")
        #expect(try fixture.gust(["apps", "destroy", "cats", "--confirm", "cats"]).status == 0)
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        try say(fixture, "the next tenant's")
        let result = follower.result(within: 20)
        let output = result?.output ?? ""
        #expect(result != nil, "still streaming")
        #expect(output.contains("the old tenant's"), "\(output)")
        #expect(!output.contains("the next tenant's"), "\(output)")
        #expect(output.contains("was destroyed"), "\(output)")
    }
}
