import Foundation
import GustCore
import GustTesting
import Testing

/// `git push` over a real sshd into `gust ssh-command`, with keys added by `gust keys add`.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHPushTests {
    @Test(.scratchDirectory) func anAdminsFirstPushCreatesAndBuildsTheApp() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        #expect(try !fixture.appExists("cats"))

        let work = try fixture.workspace("cats")
        let push = try fixture.push(work, app: "cats", as: alice)
        #expect(push.status == 0, "\(push.output)\n\(fixture.server.logText)")
        #expect(push.stderr.contains("Created app cats"))
        #expect(push.stderr.contains("remote: -----> Python app detected"))
        #expect(push.stderr.contains("remote: -----> Built v1"))
        #expect(try fixture.appExists("cats"))

        // The everyday commands over the same connection path.
        let releases = try fixture.ssh("releases cats", as: alice)
        #expect(releases.status == 0, "\(releases.output)")
        #expect(releases.stdout.contains("v1"))
        // And a clone comes back with the pushed commit.
        let clone = fixture.root.appendingPathComponent("clone")
        let cloned = try Command.run(
            "git", ["clone", "-q", fixture.server.url("cats.git"), clone.path],
            environment: GitWorkspace.environment.merging(["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: alice.privateKey)]) { $1 }
        )
        #expect(cloned.status == 0, "\(cloned.output)")
        #expect(FileManager.default.fileExists(atPath: clone.appendingPathComponent("food.py").path))
        let pushed = try work.git("rev-parse", "HEAD").stdout
        #expect(try Command.run("git", ["-C", clone.path, "rev-parse", "HEAD"]).stdout == pushed)
        #expect(fixture.sshLog.contains("accepted key=\"alice\""))
        // The activity log names the key that pushed, and a scale over SSH as from SSH.
        #expect(try fixture.ssh("scale cats --max 2", as: alice).status == 0)
        let activity = try Store(home: fixture.home).activity(app: try AppName("cats"))
        #expect(activity.map(\.action) == ["scale", "push"], "\(activity)")
        #expect(activity.allSatisfy { $0.actor == "key alice" } && activity.first?.source == "ssh", "\(activity)")
    }

    @Test(.scratchDirectory) func keysNeverAddedOrRemovedAreRefused() throws {
        let fixture = try SSHFixture()
        let alice = try fixture.keyPair("alice"), mallory = try fixture.keyPair("mallory")
        try fixture.addKey("alice", alice, ["--admin"])
        let work = try fixture.workspace("cats")

        let stranger = try fixture.push(work, app: "cats", as: mallory)
        #expect(stranger.status != 0)
        #expect(stranger.stderr.contains("Permission denied"), "\(stranger.output)")

        #expect(try fixture.ssh("apps", as: alice).status == 0)
        #expect(try fixture.gust(["keys", "remove", "alice"]).status == 0)
        let removed = try fixture.ssh("apps", as: alice)
        #expect(removed.status != 0)
        #expect(removed.stderr.contains("Permission denied"), "\(removed.output)")
        #expect(try !fixture.appExists("cats"))
    }

    @Test(.scratchDirectory) func aScopedKeyPushesOnlyToItsAppsAndCreatesNone() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        for app in ["alpha", "beta"] { #expect(try fixture.gust(["apps", "create", app]).status == 0) }
        let bob = try fixture.keyPair("bob")
        try fixture.addKey("bob", bob, ["--app", "alpha"])
        let work = try fixture.workspace("bob")

        let other = try fixture.push(work, app: "beta", as: bob)
        #expect(other.status != 0)
        #expect(other.stderr.contains("Key 'bob' may not push to 'beta'"), "\(other.output)")

        let create = try fixture.push(work, app: "gamma", as: bob)
        #expect(create.status != 0)
        #expect(create.stderr.contains("There is no app 'gamma', and key 'bob' may not create apps"), "\(create.output)")
        #expect(try !fixture.appExists("gamma"))
        #expect(!FileManager.default.fileExists(atPath: fixture.home.repos.appendingPathComponent("gamma.git").path))

        let own = try fixture.push(work, app: "alpha", as: bob)
        #expect(own.status == 0, "\(own.output)")
        #expect(own.stderr.contains("remote: -----> Built v1"))
        #expect(try Store(home: fixture.home).releases(try AppName("beta")).isEmpty)

        // A grant takes effect at once, a revoke too.
        #expect(try fixture.gust(["keys", "grant", "bob", "beta"]).status == 0)
        #expect(try fixture.ssh("releases beta", as: bob).status == 0)
        #expect(try fixture.gust(["keys", "revoke", "bob", "beta"]).status == 0)
        #expect(try fixture.ssh("releases beta", as: bob).status != 0)
    }
}
