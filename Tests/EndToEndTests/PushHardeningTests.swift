import Foundation
import GustCore
import GustTesting
import Testing

/// A push hands its release to gustd in two steps: warm in pre-receive, switch
/// once git has written the ref (post-receive). Whatever dies in between, the
/// store, the refs, the tags and what serves agree after gustd starts again.
@Suite(.timeLimit(.minutes(20)))
struct PushHardeningTests {
    /// A Python app that answers `GET /version`, sleeping `startDelay` seconds at import.
    static func app(_ work: GitWorkspace, version: String, startDelay: Int = 0) throws {
        try work.write("__init__.py", """
            import time

            import gust

            time.sleep(\(startDelay))

            @gust.handler('version', methods=['GET'])
            def version(request):
                return '\(version)\\n'

            """)
    }

    /// The commit a ref of the app's repository names, or nil.
    func resolve(_ fixture: PushFixture, _ ref: String) throws -> String? {
        let result = try Command.run("git", ["--git-dir", fixture.remote, "rev-parse", "--verify", "-q", ref])
        return result.status == 0 ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    func status(_ fixture: PushFixture, _ version: Int) throws -> String? {
        try fixture.releases().first { $0["version"] as? Int == version }?["status"] as? String
    }

    /// Installs a git `update` hook (it runs after pre-receive, before the ref is written).
    func installUpdateHook(_ fixture: PushFixture, _ script: String) throws {
        let hook = URL(fileURLWithPath: fixture.remote).appendingPathComponent("hooks/update")
        try "#!/bin/sh\n\(script)\n".write(to: hook, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook.path)
    }

    /// `git push` in the background, with `environment` for the hooks it runs.
    func backgroundPush(_ fixture: PushFixture, _ work: GitWorkspace, environment: [String: String] = [:]) throws -> BackgroundCommand {
        let assignments = GitWorkspace.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        return try BackgroundCommand(
            "/usr/bin/env", assignments + ["git", "-C", work.directory.path, "push", fixture.remote, "main"],
            outputIn: fixture.root)
    }

    /// v1 ("one") deployed and serving.
    func deployedOne(_ fixture: PushFixture) throws -> (GitWorkspace, String) {
        let work = try fixture.workspace("py")
        try Self.app(work, version: "one")
        let one = try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("remote: -----> v1 is live"), "\(push.stderr)")
        #expect(try fixture.call("GET", "/version").text == "one\n")
        return (work, one)
    }

    // MARK: Links

    @Test(.scratchDirectory) func aLinkResolvingOutsideThroughAnotherLinkIsRefused() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("link", copying: PushFixture.example("python-cats"))
        try FileManager.default.createDirectory(at: work.directory.appendingPathComponent("a/b/c"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: work.directory.appendingPathComponent("a/b/c/l").path, withDestinationPath: "../../..")
        try FileManager.default.createSymbolicLink(
            atPath: work.directory.appendingPathComponent("db").path, withDestinationPath: "a/b/c/l/../../../gust.sqlite")
        try work.commit("Sneaky links")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0, "\(push.output)")
        #expect(push.stderr.contains("'db' is a symlink to 'a/b/c/l/../../../gust.sqlite', which resolves outside the repository"), "\(push.stderr)")
        #expect(try resolve(fixture, "refs/heads/main") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.tmp.path).isEmpty)
    }

    // MARK: The hand-off

    /// SIGKILL of gustd while the new release starts: the push is rejected
    /// within a bound, and after gustd starts again the old release serves.
    @Test(.scratchDirectory) func gustdKilledWhileTheNewReleaseStarts() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        let (work, one) = try deployedOne(fixture)
        try Self.app(work, version: "two", startDelay: 5)
        try work.commit("Two, slow to start")
        let push = try backgroundPush(fixture, work, environment: ["GUST_ADMIN_TIMEOUT": "5"])
        // The first process of v2 to import the app (its zygote, or an instance where there is none) takes 5 s.
        #expect(
            push.waitForOutput(upTo: 120) { $0.range(of: "Starting (zygote|instance) [0-9a-f]+ of v2", options: .regularExpression) != nil },
            "\(push.output)")
        usleep(500_000)
        gustd.kill9()
        #expect(push.waitForOutput(upTo: 30) { $0.contains("pre-receive hook declined") }, "the push ends: \(push.output)")
        #expect(push.output.contains("Push rejected: cats keeps serving v1"), "\(push.output)")
        #expect(try resolve(fixture, "refs/heads/main") == one)
        #expect(try resolve(fixture, "refs/tags/v2") == nil)

        try gustd.start()
        #expect(try fixture.call("GET", "/version").text == "one\n")
        #expect(try status(fixture, 2) == "failed")
        #expect(try status(fixture, 1) == "live")
        #expect(try fixture.call("GET", "/_/health").json?["release"] as? String == "v1")
    }

    /// Another hook refuses the ref after pre-receive succeeded: the new release
    /// never serves, and the next gustd marks it abandoned.
    @Test(.scratchDirectory) func aReleaseWhoseRefGitRefusedNeverServes() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        let (work, one) = try deployedOne(fixture)
        try installUpdateHook(fixture, "echo 'policy: no deploys today' >&2; exit 1")
        try Self.app(work, version: "two")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0, "\(push.output)")
        #expect(push.stderr.contains("no deploys today"))
        #expect(!push.stderr.contains("v2 is live"), "\(push.stderr)")
        #expect(try resolve(fixture, "refs/heads/main") == one)
        #expect(try fixture.call("GET", "/version").text == "one\n")
        #expect(try fixture.call("GET", "/_/health").json?["release"] as? String == "v1")

        gustd.stop()
        try gustd.start()
        #expect(try fixture.call("GET", "/version").text == "one\n")
        #expect(try status(fixture, 2) == "failed")
        #expect(try status(fixture, 1) == "live")
        #expect(try resolve(fixture, "refs/tags/v2") == nil)
    }

    /// SIGKILL of gustd after the release warmed, while git writes the ref: the
    /// push is accepted and says the switch is pending; the next gustd switches.
    @Test(.scratchDirectory) func gustdKilledBetweenWarmAndSwitch() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        let (work, _) = try deployedOne(fixture)
        try installUpdateHook(fixture, "sleep 3")
        try Self.app(work, version: "two")
        let two = try work.commit("Two")
        let push = try backgroundPush(fixture, work, environment: ["GUST_ADMIN_TIMEOUT": "5"])
        #expect(push.waitForOutput(upTo: 120) { $0.contains("Health check passed") }, "\(push.output)")
        usleep(300_000)
        gustd.kill9()
        #expect(push.waitForOutput(upTo: 30) { $0.contains("main -> main") || $0.contains("rejected") }, "the push ends: \(push.output)")
        #expect(push.output.contains("gustd switches to v2 when it next starts"), "\(push.output)")
        #expect(try resolve(fixture, "refs/heads/main") == two)
        #expect(try resolve(fixture, "refs/tags/v2") == two)

        try gustd.start()
        #expect(try fixture.call("GET", "/version").text == "two\n")
        #expect(try status(fixture, 2) == "live")
    }

    /// A release recorded as built whose push git never accepted (its commit is
    /// nowhere in the repository) is marked failed when gustd starts, and never served.
    @Test(.scratchDirectory) func aBuiltReleaseGitNeverAcceptedIsAbandonedAtStart() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        _ = try deployedOne(fixture)
        gustd.stop()
        let store = try fixture.store()
        let cats = try AppName("cats")
        let one = try store.requireRelease(cats, version: 1)
        try store.recordRelease(cats, NewRelease(
            status: .built, commit: String(repeating: "e", count: 40), buildpack: one.buildpack, artifact: one.artifact,
            artifactSize: one.artifactSize, process: one.process, buildSeconds: 1, description: "Deploy eeeeeee",
            config: [:], secretNames: [], log: ""))
        try gustd.start()
        #expect(try status(fixture, 2) == "failed")
        #expect(try store.requireRelease(cats, version: 2).error?.contains("never accepted") == true)
        #expect(try fixture.call("GET", "/_/health").json?["release"] as? String == "v1")
    }

    /// `gust rollback` has no git ref: warm and switch in one call, as before.
    @Test(.scratchDirectory) func rollbackStillSwitchesInOneCall() throws {
        let fixture = try PushFixture()
        let (work, _) = try deployedOne(fixture)
        try Self.app(work, version: "two")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("remote: -----> v2 is live"), "\(push.stderr)")
        #expect(try fixture.call("GET", "/version").text == "two\n")
        let rollback = try GustBinaries.gust(fixture.home, ["rollback", "cats", "v1"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(rollback.stdout.contains("v3 is live"))
        #expect(try fixture.call("GET", "/version").text == "one\n")
    }
}
