import Foundation
import GustCore
import GustTesting
import Testing

/// A release built by `gustd --sandbox none` runs in the sandbox once it is on (and so does a
/// rollback to it): its build found the system's `python3`, not one first on gustd's PATH that no
/// sandbox sees (here a link in the test's directory; on this machine, root's pyenv shim, which
/// made `scripts/bench.py`'s scale-out under bubblewrap exit 127).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SandboxInterpreterTests {
    @Test(.scratchDirectory) func aReleaseBuiltWithoutTheSandboxRunsInIt() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap"), FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("SandboxInterpreterTests: skipped, bubblewrap or /usr/bin/python3 is not installed")
            return
        }
        let root = ScratchDirectory.current
        let hidden = root.appendingPathComponent("hidden-bin")
        try FileManager.default.createDirectory(at: hidden, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: hidden.appendingPathComponent("python3").path, withDestinationPath: "/usr/bin/python3")
        let fixture = try PushFixture(startGustd: false)

        let unsandboxed = try GustdProcess(
            home: fixture.home, arguments: ["--sandbox", "none"], environment: ["PATH": hidden.path + ":/usr/local/bin:/usr/bin:/bin"])
        defer { unsandboxed.stop() }
        let work = try fixture.workspace("py")
        try RouterTests.pythonApp(work, version: "one")
        try work.commit("One")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(try HTTPClient.request(port: unsandboxed.port, "GET", "/apps/cats/version").text == "one\n")
        unsandboxed.stop()

        let sandboxed = try GustdProcess(home: fixture.home, arguments: ["--sandbox", "bubblewrap"])
        defer { sandboxed.stop() }
        let answer = try HTTPClient.request(port: sandboxed.port, "GET", "/apps/cats/version")
        // Before: 503, "v1 exited with code 127 while starting" (its venv's python not in the sandbox).
        #expect(answer.status == 200 && answer.text == "one\n", "\(answer.status) \(answer.text): \(sandboxed.logText.suffix(2000))")
    }
}
