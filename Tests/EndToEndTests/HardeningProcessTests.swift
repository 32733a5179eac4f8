import Foundation
import GustCore
import GustTesting
import Testing

/// Processes gustd and gust-receive start get only the descriptors meant for
/// them, and stopping an instance stops everything it started (issue 10,
/// items 1 and 13).
@Suite(.timeLimit(.minutes(20)))
struct HardeningProcessTests {
    static let app = """
        import os
        import time

        import gust

        @gust.op('hello')
        def hello():
            return 'hello'

        @gust.op('spawn')
        def spawn(path):
            # A daemon the way a careless library makes one: fork, setsid, fork again.
            child = os.fork()
            if child == 0:
                os.setsid()
                if os.fork() == 0:
                    null = os.open('/dev/null', os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    with open(path + '.tmp', 'w') as f:
                        f.write(str(os.getpid()))
                    os.rename(path + '.tmp', path)
                    time.sleep(600)
                os._exit(0)
            os.waitpid(child, 0)
            for _ in range(200):
                if os.path.exists(path):
                    break
                time.sleep(0.05)
            with open(path) as f:
                return int(f.read())

        """

    /// A share directory whose Python buildpack prints (`fds: ` lines in the push's output) the
    /// descriptors its compile step was started with, then runs the real one. A copy of the real
    /// buildpack, not links to it: compile runs in the build's sandbox, which sees only its own.
    static func recordingShare(in root: URL) throws -> URL {
        let share = root.appendingPathComponent("share")
        let real = GustBinaries.sourceRoot
        let fm = FileManager.default
        try fm.createDirectory(at: share.appendingPathComponent("buildpacks"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: share.appendingPathComponent("hooks"), withDestinationURL: real.appendingPathComponent("hooks"))
        try fm.createSymbolicLink(at: share.appendingPathComponent("buildpacks/node"), withDestinationURL: real.appendingPathComponent("buildpacks/node"))
        let python = share.appendingPathComponent("buildpacks/python")
        try fm.copyItem(at: real.appendingPathComponent("buildpacks/python"), to: python)
        let compile = python.appendingPathComponent("bin/compile")
        try fm.moveItem(at: compile, to: python.appendingPathComponent("bin/compile-real"))
        try """
            #!/bin/sh
            ls -l /proc/self/fd | sed 's/^/fds: /'
            exec "$(dirname "$0")/compile-real" "$@"

            """.write(to: compile, atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: compile.path)
        return share
    }

    /// The one instance gustd has recorded, once the others have stopped (bounded).
    static func onlyInstance(of fixture: PushFixture) throws -> Int32 {
        for _ in 0..<200 {
            let alive = GustdProcess.recordedInstancePIDs(of: fixture.home).filter(GustdProcess.isAlive)
            if alive.count == 1 { return alive[0] }
            usleep(50_000)
        }
        throw HardeningFailure("gustd never settled on one instance: \(GustdProcess.recordedInstancePIDs(of: fixture.home))")
    }

    @Test(.scratchDirectory) func instancesAndBuildStepsHoldNoneOfGustdsDescriptors() throws {
        let fixture = try PushFixture()
        let share = try Self.recordingShare(in: fixture.root)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        let push = try work.push(to: fixture.remote, environment: ["GUST_SHARE": share.path])
        #expect(push.status == 0, "\(push.output)")

        // The build step: stdin, stdout, stderr, and the directory `ls` itself opened.
        let listing = push.output.split(separator: "\n").compactMap { line in
            line.range(of: "fds: ").map { String(line[$0.upperBound...]) }
        }
        let compile = OpenDescriptors(listing: listing.joined(separator: "\n"))
        #expect(compile.targets.count >= 3, "\(compile)")
        #expect(compile.beyondStandard.values.allSatisfy { $0.hasPrefix("/proc/") }, "the compile step inherited:\n\(compile)")

        // An instance started while gustd is serving: none of gustd's sockets or pipes beyond its own stdio.
        let set = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "X=1"])
        #expect(set.status == 0, "\(set.output)")
        let instance = try Self.onlyInstance(of: fixture)
        let gustd = try #require(fixture.gustd)
        let held = OpenDescriptors(pid: instance)
        let gustds = OpenDescriptors(pid: gustd.pid)
        let shared = OpenDescriptors(targets: held.beyondStandard).socketsAndPipes.intersection(gustds.socketsAndPipes)
        #expect(shared.isEmpty, "the instance holds gustd's \(shared.sorted()):\n\(held)")
        let home = fixture.home.path
        // Sandboxed, gustd's child is the shell that runs bwrap, outside the sandbox: it may hold the
        // seccomp filter it hands bwrap, which the app's processes never see.
        #expect(!held.beyondStandard.values.contains { $0.hasPrefix(home) && !$0.contains("/releases/") && !$0.hasSuffix("/run/seccomp.bpf") }, "\(held)")
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)
    }

    @Test(.scratchDirectory) func aKilledGustdLeavesItsPortToTheNextOne() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "X=1"]).status == 0)
        _ = try Self.onlyInstance(of: fixture)
        let port = fixture.port
        let gustd = try #require(fixture.gustd)
        gustd.kill9()
        let orphans = GustdProcess.recordedInstancePIDs(of: fixture.home)
        defer { orphans.filter(GustdProcess.isAlive).forEach { kill(-$0, SIGKILL) } }

        // The instance outlives gustd (the next gustd stops it), but holds none of its listeners.
        #expect(Self.canListen(on: port), "an orphaned instance still holds gustd's port \(port)")
        let next = try GustdProcess(home: fixture.home, arguments: ["--http", "127.0.0.1:\(port)"])
        defer { next.stop() }
        #expect(next.port == port)
        #expect(try HTTPClient.request(port: port, "POST", "/apps/cats/_/functions/hello", body: "{}").status == 200)
    }

    /// Sandboxed, nothing waits for the next gustd: the wrapper dies with gustd (PR_SET_PDEATHSIG,
    /// spawned on a thread that lives as long as gustd), bwrap with it (--die-with-parent), and the
    /// sandbox's PID namespace with bwrap.
    @Test(.scratchDirectory) func aSIGKILLedGustdTakesItsSandboxedInstancesWithIt() throws {
        let fixture = try PushFixture()
        let gustd = try #require(fixture.gustd)
        guard gustd.logText.contains("sandbox: bubblewrap") else {
            print("HardeningProcessTests: skipped, gustd runs without the sandbox here")
            return
        }
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200)
        let instance = try Self.onlyInstance(of: fixture)
        // A Python instance is a fork inside its zygote's sandbox; the zygote entered its app's prepared
        // sandbox, whose holder (bwrap, its init and `sleep`) runs under gustd too: all of them go.
        let roots = [instance] + GustdProcess.recordedZygotePIDs(of: fixture.home)
        let holder = ZygoteTests.holderSleeper(under: gustd.pid)
        #expect(holder != nil, "the app's holder runs under gustd")
        let tree = Array(Set(roots + roots.flatMap(Self.descendants(of:)) + Self.descendants(of: gustd.pid)))
        #expect(tree.count >= 5 && holder.map(tree.contains) == true, "the zygote, its fork and the holder: \(tree)")
        gustd.kill9()
        defer { tree.filter(GustdProcess.isAlive).forEach { kill($0, SIGKILL) } }
        var alive = tree
        for _ in 0..<100 where !alive.isEmpty {  // 5 s
            usleep(50_000)
            alive = tree.filter(GustdProcess.isAlive)
        }
        #expect(alive.isEmpty, "still running after gustd was SIGKILLed: \(alive)")
    }

    /// Every process below `pid`, from /proc/PID/task/*/children.
    static func descendants(of pid: Int32) -> [Int32] {
        var found: [Int32] = []
        var next = [pid]
        while let current = next.popLast() {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(current)/task")) ?? []
            for task in tasks {
                let text = (try? String(contentsOfFile: "/proc/\(current)/task/\(task)/children", encoding: .utf8)) ?? ""
                let children = text.split(separator: " ").compactMap { Int32($0) }
                found += children
                next += children
            }
        }
        return found
    }

    @Test(.scratchDirectory) func aKilledInstanceLeavesNoRecordBehind() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        let instances = fixture.home.run.appendingPathComponent("instances")
        let pid = try Self.onlyInstance(of: fixture)
        // The instance's record (the one naming its pid), and its socket: run/instances/ID.sock, or sandboxed
        // its socket directory, run/instances/ID/ or for a fork of the sandboxed zygote run/instances/ZYGOTE/ID/.
        // Its release's zygote has a record of its own, and lives on.
        let all = try FileManager.default.contentsOfDirectory(atPath: instances.path)
        let id = try #require(all.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.first { id in
            let record = FileManager.default.contents(atPath: instances.appendingPathComponent("\(id).json").path) ?? Data()
            return (try? JSONSerialization.jsonObject(with: record) as? [String: Any])?["pid"] as? Int == Int(pid)
        }, "\(all)")
        let files = (["\(id).json", "\(id).sock", id] + all.filter { !$0.contains(".") }.map { "\($0)/\(id)" })
            .filter { FileManager.default.fileExists(atPath: instances.appendingPathComponent($0).path) }
        #expect(files.count == 2, "the instance's record and its socket: \(files)")

        kill(pid, SIGKILL)
        // The pool may start a replacement at once (its `min` is 1); the killed one's files must go.
        var left = files
        for _ in 0..<100 where !left.isEmpty {  // 5 s
            usleep(50_000)
            left = files.filter { FileManager.default.fileExists(atPath: instances.appendingPathComponent($0).path) }
        }
        #expect(left.isEmpty, "gustd saw its instance die and kept \(left)")
        #expect(try fixture.call("POST", "/_/functions/hello", body: "{}").status == 200, "the next request starts another")
    }

    @Test(.scratchDirectory) func destroyingAnAppStopsWhatItsInstanceDaemonized() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", Self.app)
        try work.commit("App")
        #expect(try work.push(to: fixture.remote).status == 0)
        // In the instance's own /tmp (private in its sandbox); the pid it answers is its sandbox's, mapped to the host's.
        let pidFile = "/tmp/daemon-\(UUID().uuidString.prefix(8)).pid"
        let spawned = try fixture.call("POST", "/_/functions/spawn", body: #"{"path": "\#(pidFile)"}"#)
        let inside = try #require(Int32(spawned.text.trimmingCharacters(in: .whitespacesAndNewlines)), "\(spawned.text)")
        // Sandboxed, it left its instance for the sandbox's own init: look under the zygote's sandbox too.
        let roots = GustdProcess.recordedInstancePIDs(of: fixture.home) + GustdProcess.recordedZygotePIDs(of: fixture.home)
        let daemon = try #require(SandboxPID.host(of: inside, under: roots))
        defer { kill(daemon, SIGKILL) }
        #expect(GustdProcess.isAlive(daemon))
        let instance = try Self.onlyInstance(of: fixture)
        #expect(getsid(daemon) != getsid(instance), "the daemon left the instance's session")

        let destroyed = try GustBinaries.gust(fixture.home, ["apps", "destroy", "cats", "--confirm", "cats"])
        #expect(destroyed.status == 0, "\(destroyed.output)")
        for _ in 0..<200 where GustdProcess.isAlive(daemon) { usleep(50_000) }  // 10 s
        #expect(!GustdProcess.isAlive(daemon), "a process the instance started outlived the app")
        #expect(!GustdProcess.isAlive(instance))
    }

    /// Whether a listening socket can be bound to this loopback port now (as gustd binds it, SO_REUSEADDR).
    static func canListen(on port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0 && listen(fd, 1) == 0
    }
}

struct HardeningFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
