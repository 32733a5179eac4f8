#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustBuild
import GustCore
import Synchronization
import Testing

@testable import GustDaemon

/// `SandboxHolders` and `SandboxSpawner` entering them, against real bwrap holders (without app
/// uids, as CI runs): the starts of one app share its holder's user namespace, each with a mount
/// and PID namespace of its own, PID 1 there; a holder that died is replaced; gustd's stop ends a
/// PID 1 that has no SIGTERM handler at once and gives one that has its grace.
@Suite(.serialized, .enabled(if: Sandbox.unavailableReason() == nil && SandboxHolders.unavailableReason() == nil), .timeLimit(.minutes(2)))
struct SandboxHoldersTests {
    /// A release with the executable `run` (a shell script), a socket directory, and the spawner.
    final class Setup {
        let root: URL
        let release: URL
        let sockets: URL
        let holders = SandboxHolders()
        let spawner: SandboxSpawner

        init(script: String) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("holders-\(UUID().uuidString.prefix(8))")
            release = root.appendingPathComponent("release")
            sockets = root.appendingPathComponent("sockets")
            for directory in [release, sockets, root.appendingPathComponent("home/run")] {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
            let run = release.appendingPathComponent("run")
            try ("#!/bin/sh\n" + script).write(to: run, atomically: true, encoding: .utf8)
            chmod(run.path, 0o755)
            chmod(root.path, 0o755)
            let home = GustHome(path: root.appendingPathComponent("home").path)
            let sandbox = try Sandbox(identity: SandboxIdentity(range: nil, uid: getuid(), gid: getgid()))
                .withSeccompFilter(in: home.run)
            spawner = try SandboxSpawner(
                sandbox: sandbox, records: InstanceRecords(home: home), home: home, app: 1, named: "cats", holders: holders
            )
        }

        func start(
            environment: [String: String] = ["PATH": Sandbox.path], _ exited: @escaping @Sendable (Int32) -> Void = { _ in }
        ) throws -> InstanceProcess {
            let layout = InstanceLayout(
                hostSocket: sockets.path + "/instance.sock", socket: "/run/gust/instance.sock", recordsSocket: "/run/gust/records.sock",
                releaseDirectory: "/app", path: Sandbox.path
            )
            return try spawner.spawn(
                executable: "run", layout: layout, release: release, environment: environment, marker: StragglerMarker(name: "GUST_TEST", value: "holders"),
                confinement: SpawnConfinement(), onOutput: { _, _ in }, onExit: exited
            )
        }

        /// The holder's `sleep` (whose namespaces a start enters), found from its bwrap.
        func holderSleeper() throws -> pid_t {
            let bwrap = try #require(holders.pids.values.first)
            return try Sandbox.firstChild(of: Sandbox.firstChild(of: bwrap))
        }

        deinit {
            holders.stopAll()
            try? FileManager.default.removeItem(at: root)
        }
    }

    static func namespace(_ pid: pid_t, _ name: String) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(name)")) ?? "gone"
    }

    static func innermostPID(_ pid: pid_t) -> String? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(whereSeparator: \.isWhitespace).last.map(String.init)
    }

    @Test func twoStartsShareTheAppsHolderEachWithAMountAndPIDNamespaceOfItsOwn() async throws {
        let setup = try Setup(script: "exec sleep 600\n")
        let first = try setup.start()
        let second = try setup.start()
        #expect(setup.holders.pids.count == 1, "one holder for the app: \(setup.holders.pids)")
        let holder = try setup.holderSleeper()
        for process in [first, second] {
            #expect(Self.namespace(process.pid, "user") == Self.namespace(holder, "user"), "the holder's user namespace")
            #expect(Self.namespace(process.pid, "mnt") != Self.namespace(holder, "mnt"))
            #expect(Self.namespace(process.pid, "pid") != Self.namespace(holder, "pid"))
            #expect(Self.innermostPID(process.pid) == "1", "PID 1 of its own namespace")
            #expect(process.isNamespaceInit)
        }
        #expect(Self.namespace(first.pid, "mnt") != Self.namespace(second.pid, "mnt"))
        #expect(Self.namespace(first.pid, "pid") != Self.namespace(second.pid, "pid"))
        // The release is read-only inside and the host's paths are not there.
        let root = try String(contentsOfFile: "/proc/\(first.pid)/mountinfo", encoding: .utf8)
        #expect(root.contains(" /app ") && !root.contains(" /home "), "\(root)")
        await first.stop(grace: .seconds(600))
        await second.stop(grace: .seconds(600))
    }

    @Test func aStopEndsAPIDOneWithoutASIGTERMHandlerAndGivesOneWithAHandlerItsGrace() async throws {
        // No handler: SIGTERM alone would be ignored by PID 1 (the test's time limit would end it).
        let plain = try Setup(script: "exec sleep 600\n")
        let sleeper = try plain.start()
        await sleeper.stop(grace: .seconds(600))
        #expect(sleeper.hasExited)
        // A handler: SIGTERM reaches it and it exits its own way (status 3), not SIGKILLed.
        let handling = try Setup(script: "trap 'exit 3' TERM\nwhile :; do sleep 0.1; done\n")
        let handler = try handling.start()
        for _ in 0..<200 where !InstanceProcess.handles(SIGTERM, pid: handler.pid) { usleep(10_000) }
        await handler.stop(grace: .seconds(600))
        let status = await handler.exitStatus()
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 3, "exited by its handler: \(InstanceProcess.describe(status))")
    }

    @Test func aHolderThatDiedIsReplacedAtTheNextStart() async throws {
        let setup = try Setup(script: "exec sleep 600\n")
        let first = try setup.start()
        let bwrap = try #require(setup.holders.pids.values.first)
        kill(bwrap, SIGKILL)
        for _ in 0..<1_000 where setup.holders.pids.values.contains(bwrap) { usleep(10_000) }
        // The first start's sandbox does not depend on its holder.
        #expect(!first.hasExited)
        let second = try setup.start()
        let replaced = try #require(setup.holders.pids.values.first)
        #expect(replaced != bwrap, "a new holder")
        #expect(second.isNamespaceInit, "entered, not bwrap")
        #expect(Self.namespace(second.pid, "user") == Self.namespace(try setup.holderSleeper(), "user"))
        await first.stop(grace: .seconds(600))
        await second.stop(grace: .seconds(600))
    }

    /// The pipes this process has open, by inode (`pipe:[N]`).
    static func openPipes() -> Set<String> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
            .filter { $0.hasPrefix("pipe:") })
    }

    /// Whether the pipes open now, less those open `before`, come to none within 10 s. Other suites
    /// run beside this one in the same process and open pipes of their own for a moment; a pipe
    /// kept for a holder stays, and fails this.
    static func noPipeOpenedSince(_ before: Set<String>) -> Bool {
        for _ in 0..<1_000 {
            if openPipes().subtracting(before).isEmpty { return true }
            usleep(10_000)
        }
        return false
    }

    @Test func aHolderKeepsNoPipeOfGustdsOpenAndAFailedOneSaysWhatBwrapSaid() async throws {
        let setup = try Setup(script: "exec sleep 600\n")
        let pipes = Self.openPipes()
        let sandbox = setup.spawner.sandbox
        _ = try #require(setup.holders.holder(app: "cats", number: 1, sandbox: sandbox, ids: nil))
        let bwrap = try #require(setup.holders.pids.values.first)
        #expect(Self.noPipeOpenedSince(pipes), "no output pipe kept for the holder: \(Self.openPipes().subtracting(pipes))")
        let output = (1...2).map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(bwrap)/fd/\($0)")) ?? "" }
        // Its stderr is a memory file (memfd_create): no pipe, and no file on any filesystem.
        #expect(output[0] == "/dev/null" && output[1].hasPrefix("/memfd:"), "\(output)")
        // A holder bwrap cannot make: its words are in the note gustd logs.
        let notes = Mutex<[String]>([])
        let failing = SandboxHolders { line in notes.withLock { $0.append(line) } }
        #expect(failing.holder(app: "dogs", number: 2, sandbox: sandbox.on(root: setup.root.appendingPathComponent("none").path), ids: nil) == nil)
        let said = notes.withLock { $0.joined(separator: "\n") }
        #expect(said.contains("bwrap: "), "\(said)")
        #expect(!said.contains("its output is above"), "a holder's output is nowhere above: \(said)")
        #expect(Self.noPipeOpenedSince(pipes), "\(Self.openPipes().subtracting(pipes))")
    }

    @Test func stoppedHoldersMakeNoMoreAndStartsUseBubblewrap() async throws {
        let setup = try Setup(script: "exec sleep 600\n")
        setup.holders.stopAll()
        let process = try setup.start()
        #expect(!process.isNamespaceInit, "bwrap built its sandbox")
        #expect(setup.holders.pids.isEmpty)
        // bwrap's init ignores SIGTERM and the app is in a session of its own: SIGKILL after the grace.
        await process.stop(grace: .milliseconds(200))
        #expect(process.hasExited)
    }

    /// bwrap runs outside the sandbox, as gustd's uid, and is no setuid program: what its
    /// environment holds, the dynamic loader acts on (`LD_PRELOAD` a library the app pushed, and
    /// the app's code runs as gustd). So bwrap gets none of the app's environment; the app gets
    /// all of it, set by bwrap (`--clearenv`, `--setenv`) from arguments it reads from a file in
    /// memory, never on a command line (which any user of the host can read).
    @Test func bwrapItselfGetsNoneOfTheAppsEnvironmentAndTheAppAllOfIt() async throws {
        let setup = try Setup(script: "exec sleep 600\n")
        setup.holders.stopAll()
        let secret = "s3cret-\(UUID().uuidString.prefix(8))"
        let process = try setup.start(environment: [
            "PATH": Sandbox.path, "LD_PRELOAD": "/app/nothing-\(secret).so", "APP_SECRET": secret, "GUST_TEST": "holders",
        ])
        #expect(!process.isNamespaceInit, "bwrap built its sandbox")
        func environ(_ pid: pid_t) -> [String] {
            let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()
            return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
        let outside = environ(process.pid)
        #expect(!outside.contains { $0.contains(secret) }, "bwrap's own environment: \(outside)")
        #expect(outside.contains("GUST_TEST=holders"), "the marker stays, for the straggler scan")
        let cmdline = String(decoding: FileManager.default.contents(atPath: "/proc/\(process.pid)/cmdline") ?? Data(), as: UTF8.self)
        #expect(!cmdline.contains(secret), "nor on its command line")
        var app: pid_t?
        for _ in 0..<500 {
            app = try? Sandbox.firstChild(of: Sandbox.firstChild(of: process.pid))
            if let app, environ(app).contains("APP_SECRET=\(secret)") { break }
            usleep(10_000)
        }
        let inside = app.map(environ) ?? []
        #expect(inside.contains("APP_SECRET=\(secret)") && inside.contains("LD_PRELOAD=/app/nothing-\(secret).so"), "\(inside)")
        #expect(inside.contains("PATH=\(Sandbox.path)") && inside.contains("GUST_TEST=holders"), "\(inside)")
        await process.stop(grace: .milliseconds(200))
    }
}
