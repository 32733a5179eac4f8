import Foundation
import GustCore
import GustTesting
import Testing

/// GUST_HOME on a small tmpfs, filled up: a push, a record write and an app's
/// log lines meet ENOSPC, fail clearly, and leave nothing half-written.
@Suite(.timeLimit(.minutes(20)))
struct DiskFullTests {
    /// Whether this machine lets the tests mount a tmpfs (root, or CAP_SYS_ADMIN).
    static let canMount: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("gust-mount-probe-\(UUID().uuidString.prefix(6))")
        try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? Command.run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path], timeout: 30))?.status == 0 else { return false }
        _ = try? Command.run("umount", [probe.path], timeout: 30)
        return true
    }()

    /// A tmpfs of `megabytes` at `ScratchDirectory.current/home`, unmounted (lazily, bounded) when dropped.
    final class SmallHome {
        let path: URL
        var filler: URL { path.appendingPathComponent("filler") }

        init(megabytes: Int) throws {
            path = ScratchDirectory.current.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
            let mounted = try Command.run("mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path.path], timeout: 30)
            guard mounted.status == 0 else { throw GitFailure(arguments: ["mount tmpfs"], result: mounted) }
        }

        /// Fills what is left of the file system.
        func fill() throws {
            let dd = try Command.run("dd", ["if=/dev/zero", "of=\(filler.path)", "bs=65536"], timeout: 60)
            #expect(dd.stderr.contains("No space left on device"), "\(dd.stderr)")
        }

        func free() { try? FileManager.default.removeItem(at: filler) }

        func unmount() { _ = try? Command.run("umount", ["-l", path.path], timeout: 30) }
    }

    /// A Python app: `GET /version`, an op that prints a long line, records without hooks.
    static func app(_ work: GitWorkspace, version: String) throws {
        try work.write("__init__.py", """
            import gust

            @gust.handler('version', methods=['GET'])
            def version(request):
                return '\(version)\\n'

            @gust.op('shout')
            def shout(n=1):
                for i in range(n):
                    print(f'line {i} ' + 'x' * 3000, flush=True)
                return {'printed': n}

            """)
    }

    @Test(.scratchDirectory, .enabled(if: DiskFullTests.canMount, "needs to mount a tmpfs (root or CAP_SYS_ADMIN)"))
    func aPushOnAFullDiskIsRejectedAndChangesNothing() throws {
        let disk = try SmallHome(megabytes: 48)
        let fixture = try PushFixture()
        defer {
            fixture.gustd?.stop()
            disk.unmount()
        }
        let work = try fixture.workspace("py")
        try Self.app(work, version: "one")
        let one = try work.commit("One")
        let first = try work.push(to: fixture.remote)
        #expect(first.status == 0, "\(first.output)")

        // The disk fills up just as the build starts: the hook fills it, then runs Gust's.
        let hook = URL(fileURLWithPath: fixture.remote).appendingPathComponent("hooks/pre-receive")
        let original = try String(contentsOf: hook, encoding: .utf8)
        let exec = try #require(original.split(separator: "\n").first { $0.hasPrefix("exec ") })
        try "#!/bin/sh\ndd if=/dev/zero of='\(disk.filler.path)' bs=65536 2>/dev/null\n\(exec)\n".write(to: hook, atomically: false, encoding: .utf8)
        try Self.app(work, version: "two")
        try work.commit("Two")
        let push = try work.push(to: fixture.remote)
        #expect(push.status != 0, "\(push.output)")
        #expect(push.stderr.contains("is full (no space left on device)") || push.stderr.contains("the disk is full"), "\(push.stderr)")
        #expect(push.stderr.contains("Push rejected: cats keeps serving v1"), "\(push.stderr)")
        disk.free()
        try original.write(to: hook, atomically: false, encoding: .utf8)

        // Nothing half-written: the ref, the store, the build and unpack directories, the artifacts.
        #expect(try Command.run("git", ["--git-dir", fixture.remote, "rev-parse", "main"]).stdout.hasPrefix(one))
        #expect(try fixture.releases().allSatisfy { ($0["version"] as? Int) == 1 || ($0["status"] as? String) == "failed" })
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.tmp.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home.artifacts.path).allSatisfy { !$0.hasPrefix(".") })
        #expect(try fixture.call("GET", "/version").text == "one\n")

        // With space again, the same push goes through.
        let again = try work.push(to: fixture.remote)
        #expect(again.status == 0, "\(again.output)")
        #expect(try fixture.call("GET", "/version").text == "two\n")
    }

    @Test(.scratchDirectory, .enabled(if: DiskFullTests.canMount, "needs to mount a tmpfs (root or CAP_SYS_ADMIN)"))
    func recordWritesAndLogLinesOnAFullDiskFailCleanly() throws {
        let disk = try SmallHome(megabytes: 48)
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        defer {
            gustd.stop()
            disk.unmount()
        }
        let work = try fixture.workspace("py")
        try Self.app(work, version: "one")
        try work.commit("One")
        #expect(try work.push(to: fixture.remote).status == 0)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = ["X-Auth-Token": token]
        #expect(try fixture.call("POST", "/_/records/dog", body: #"{"name": "Rex"}"#, headers: auth).status == 201)
        #expect(try fixture.call("POST", "/_/functions/shout", body: #"{"n": 3}"#).status == 200)

        try disk.fill()
        let big = String(repeating: "w", count: 512 * 1024)
        let refused = try fixture.call("POST", "/_/records/dog", body: #"{"name": "Big", "bio": "\#(big)"}"#, headers: auth)
        #expect(refused.status == 507, "\(refused.status) \(refused.text.prefix(300))")
        #expect((refused.json?["error"] as? String)?.contains("the disk is full") == true, "\(refused.text.prefix(300))")
        // Log lines that do not fit are dropped; gustd and the app go on answering.
        let shout = try fixture.call("POST", "/_/functions/shout", body: #"{"n": 20}"#)
        #expect(shout.status == 200, "\(shout.text)")
        usleep(500_000)
        #expect(GustdProcess.isAlive(gustd.pid))
        #expect(try fixture.call("GET", "/version").text == "one\n")

        disk.free()
        // Nothing half-written: every stored log line is whole JSON, the big record is not there.
        let log = try String(contentsOf: fixture.home.logs.appendingPathComponent("cats.log"), encoding: .utf8)
        for line in log.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "a half-written log line: \(line.prefix(120))…")
        }
        let dogs = try fixture.call("GET", "/_/records/dog", headers: auth)
        #expect(dogs.status == 200)
        #expect((dogs.json?["records"] as? [[String: Any]])?.map { $0["name"] as? String } == ["Rex"], "\(dogs.text.prefix(300))")
        #expect(try fixture.call("POST", "/_/records/dog", body: #"{"name": "Fido"}"#, headers: auth).status == 201)
        #expect(try fixture.call("POST", "/_/functions/shout", body: #"{"n": 1}"#).status == 200)
        let logs = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "5"])
        #expect(logs.stdout.contains("line 0"), "log lines are kept again once there is space")
    }
}
