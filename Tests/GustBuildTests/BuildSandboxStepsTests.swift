import Foundation
import GustCore
import GustTesting
import Synchronization
import Testing

@testable import GustBuild

/// A build's steps share sandboxes: every `bin/detect` in one, `bin/release` in compile's. What
/// comes back from inside is read strictly (an index into the build's own buildpacks, a status
/// line only the sandbox's shell writes), and compile's output never carries release's.
struct BuildSandboxStepsTests {
    /// The scratch directory (readable by the sandbox), a home with its run/ and where the test's
    /// buildpacks go; nil (said) where bubblewrap cannot run here.
    static func scratchHome() throws -> (root: URL, home: GustHome, packs: URL)? {
        if let reason = Sandbox.unavailableReason() {
            print("BuildSandboxStepsTests: skipped, \(reason)")
            return nil
        }
        let root = ScratchDirectory.current
        chmod(root.path, 0o755)
        let home = GustHome(path: root.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.run, withIntermediateDirectories: true)
        return (root, home, root.appendingPathComponent("buildpacks"))
    }

    @Test func detectsExitStatusIsAnIndexIntoTheBuildsOwnBuildpacksOrAFailure() {
        #expect(Build.DetectOutcome(.exited(100), buildpacks: 2) == .matched(0))
        #expect(Build.DetectOutcome(.exited(101), buildpacks: 2) == .matched(1))
        #expect(Build.DetectOutcome(.exited(99), buildpacks: 2) == .noneMatched)
        for outcome: StreamingCommand.Outcome in [.exited(102), .exited(0), .exited(1), .exited(125), .exited(137), .timedOut, .signalled(9), .stopped] {
            #expect(Build.DetectOutcome(outcome, buildpacks: 2) == .failed, "\(outcome)")
        }
    }

    @Test func releasesStatusIsTheLastLineOnly() {
        let written = Build.parseReleaseOutput(Data("---\ndefault_process_types:\n  web: .gust/start\ngust-release-exit 0\n".utf8))
        #expect(written.lines == ["---", "default_process_types:", "  web: .gust/start"])
        #expect(written.status == 0)
        #expect(Build.parseReleaseOutput(Data("oops\ngust-release-exit 3\n".utf8)).status == 3)
        // bin/release printing the line itself, then the shell's never written (the sandbox died).
        let cut = Build.parseReleaseOutput(Data("gust-release-exit 0\n  web: x\n".utf8))
        #expect(cut.status == nil && cut.lines == ["gust-release-exit 0", "  web: x"])
        #expect(Build.parseReleaseOutput(Data("gust-release-exit zero\n".utf8)).status == nil)
        #expect(Build.parseReleaseOutput(Data()).status == nil)
        let many = (0..<500).map { "line \($0)" }.joined(separator: "\n") + "\ngust-release-exit 0\n"
        #expect(Build.parseReleaseOutput(Data(many.utf8)).lines.count == 200, "the first 200 lines, as before")
    }

    /// Two buildpacks in a real bubblewrap sandbox (gustd's uid, no app uid): the first's detect says
    /// no, the second's sees the first's mark in the shared /tmp; compile leaves a process behind and
    /// marks /tmp; release sees compile's mark, and no process of compile's, not even one dying: not
    /// one of forty sleeps, nor one holding 300 MB, which takes a while to free once killed. Each step alone in a
    /// sandbox of its own would see neither mark.
    @Test(.scratchDirectory) func detectRunsInOneSandboxAndReleaseInCompilesWithNothingOfCompileLeft() async throws {
        guard let (root, home, packs) = try Self.scratchHome() else { return }
        try Self.buildpack(packs, "no", detect: "touch /tmp/no-was-here\necho 'not me'\nexit 1", compile: "exit 1", release: "exit 1")
        try Self.buildpack(
            packs, "yes",
            detect: "[ -e /tmp/no-was-here ] && echo 'Shared' || echo 'Alone'",
            compile: """
                echo compiling
                for i in $(seq 40); do sleep 600 & done
                /usr/bin/python3 -c 'import time; held = b"x" * (300 << 20); open("/tmp/held", "w").close(); time.sleep(600)' &
                while [ ! -e /tmp/held ]; do sleep 0.02; done
                touch /tmp/compiled
                echo compiled
                """,
            release: """
                left=none
                for f in /proc/[0-9]*/stat; do { read -r s < "$f"; } 2>/dev/null || continue; case "$s" in *"(sleep)"*|*"(python3)"*) left=sleep;; esac; done
                [ -e /tmp/compiled ] && where=compiles || where=own
                printf -- '---\\ndefault_process_types:\\n  web: bin/%s-%s\\n' "$where" "$left"
                """
        )
        let tree = root.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        let lines = Mutex<[String]>([])
        var settings = BuildSettings()
        settings.sandbox = Sandbox(identity: SandboxIdentity(range: nil, uid: getuid(), gid: getgid()))
        let build = Build(
            app: try AppName("cats"), commit: "0", home: home,
            buildpacks: ["no", "yes"].map { Buildpack(name: $0, directory: packs.appendingPathComponent($0)) }, config: [:],
            settings: settings, reporter: BuildReporter(sink: { line in lines.withLock { $0.append(line) } })
        )
        let built = try await build.compile(tree: tree)
        let said = lines.withLock { $0 }
        #expect(built.buildpack == "yes")
        #expect(said.contains { $0.contains("Shared app detected") }, "\(said)")
        #expect(!said.contains { $0.contains("not me") })
        #expect(said.contains("compiling") && said.contains("compiled"), "\(said)")
        #expect(!said.contains { $0.contains("default_process_types") }, "release's output is not compile's: \(said)")
        #expect(built.process == "bin/compiles-none", "release ran in compile's sandbox once compile's processes were gone")
    }

    /// Where gustd has no cgroup (`LimitMechanism.rlimits`), compile runs under an address-space
    /// limit, twice the build's memory (at least 1 GB): a step that allocates 4 GB fails, naming it.
    @Test(.scratchDirectory) func underRlimitsACompilePastTheBuildsMemoryFailsNamingTheLimit() async throws {
        guard let (root, home, packs) = try Self.scratchHome() else { return }
        try Self.buildpack(
            packs, "big", detect: "echo Big",
            compile: "echo \"address space: $(ulimit -v)\"\n/usr/bin/python3 -c 'bytearray(4 << 30)'",
            release: "printf -- '---\\ndefault_process_types:\\n  web: bin/big\\n'"
        )
        let tree = root.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        let lines = Mutex<[String]>([])
        var settings = BuildSettings()
        settings.sandbox = Sandbox(identity: SandboxIdentity(range: nil, uid: getuid(), gid: getgid()))
        var build = Build(
            app: try AppName("cats"), commit: "0", home: home, buildpacks: [Buildpack(name: "big", directory: packs.appendingPathComponent("big"))],
            config: [:], settings: settings, reporter: BuildReporter(sink: { line in lines.withLock { $0.append(line) } })
        )
        build.limits = AppLimits(memory: 128 << 20, pids: 64)
        build.limitMechanism = .rlimits(reason: "a test")
        await #expect {
            _ = try await build.compile(tree: tree)
        } throws: { error in
            (error as? GustError)?.message.contains("The build ran out of memory: an allocation failed at its address-space limit (2 GB, for its 1 GB memory limit") == true
        }
        let said = lines.withLock { $0 }
        #expect(said.contains("address space: \(2 << 20)"), "\(said)")
        #expect(said.contains { $0.contains("MemoryError") }, "\(said)")
    }

    static func buildpack(_ packs: URL, _ name: String, detect: String, compile: String, release: String) throws {
        let bin = packs.appendingPathComponent(name + "/bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        for (script, body) in [("detect", detect), ("compile", compile), ("release", release)] {
            let file = bin.appendingPathComponent(script)
            try "#!/bin/sh\n\(body)\n".write(to: file, atomically: true, encoding: .utf8)
            chmod(file.path, 0o755)
        }
    }
}
