#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore
import GustTesting
import Testing

/// A `git push` over ssh whose connection drops while the build runs (the laptop's lid closed, the
/// network gone). sshd sends no signal to a session without a terminal, and git-receive-pack
/// only notices at its next write, so the hook must see it for itself: gustd then stops the build.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHInterruptedPushTests {
    @Test(.scratchDirectory) func aDroppedConnectionStopsItsBuildAndRecordsNothing() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        let token = "gust-ssh-build-hang-" + UUID().uuidString.prefix(8).lowercased()
        let work = try fixture.workspace("cats")
        try work.write("requirements.txt", "./slow\n")
        try work.write("HANG", "yes\n")
        try work.write("slow/setup.py", """
            import os, subprocess
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            if os.path.exists(os.path.join(root, 'HANG')):
                subprocess.run(['\(token)', '600'], executable='/bin/sleep')
            from setuptools import setup
            setup(name='slow', version='1.0', py_modules=[])
            """)
        try work.commit("A build that hangs")

        // git push and its ssh client in a session of their own, so the test can drop the connection
        // as a lost network does: SIGKILL, nothing said to the server.
        let push = try BackgroundCommand(
            "/usr/bin/setsid", ["git", "-C", work.directory.path, "push", fixture.server.url("cats.git"), "main"],
            outputIn: fixture.root,
            environment: GitWorkspace.environment.merging(["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: alice.privateKey)]) { $1 }
        )
        defer { push.stop() }
        let sleeper = try #require(ProcessTable.waitForProcess(named: token, seconds: 300), "setup.py's sleep started: \(push.output)")
        let hook = try #require(Self.hook(home: fixture.home), "the pre-receive hook runs")
        let client = try #require(
            ProcessTable.processes { $0.first == "ssh" && $0.contains(alice.privateKey.path) }.first, "git push's ssh client")
        let group = getpgid(client)
        #expect(group > 0 && group != getpgrp(), "git push runs in a session of its own")
        kill(-group, SIGKILL)

        // Bounded: the hook sees the dropped connection at once and gustd stops the build at its next
        // heartbeat to the hook (1 s); before, both ran on until the build's own end (here 600 s).
        var stopped = false
        for _ in 0..<300 where !stopped {  // 30 s
            stopped = kill(sleeper, 0) != 0 && kill(hook, 0) != 0
            if !stopped { usleep(100_000) }
        }
        #expect(kill(sleeper, 0) != 0, "setup.py's sleep was killed")
        #expect(kill(hook, 0) != 0, "the hook ended")
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
        let releases = try fixture.gust(["releases", "cats", "--json"])
        #expect(!releases.stdout.contains("\"version\""), "nothing recorded: \(releases.output)")

        // The next push, without the hang, builds and serves.
        try FileManager.default.removeItem(at: work.directory.appendingPathComponent("HANG"))
        try work.commit("No hang")
        let pushed = try fixture.push(work, app: "cats", as: alice)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(pushed.stderr.contains("remote: -----> Built v1"), "\(pushed.output)")
    }

    /// The `gust-receive pre-receive` of `home`.
    static func hook(home: GustHome) -> Int32? {
        ProcessTable.processes { $0.contains("pre-receive") && $0.contains(home.path) && $0.first?.hasSuffix("gust-receive") == true }.first
    }
}
