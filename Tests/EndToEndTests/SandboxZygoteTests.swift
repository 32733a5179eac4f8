import Foundation
import GustCore
import GustTesting
import Testing

/// Python instances under the sandbox are forks of their release's zygote, which runs in a
/// sandbox of the app's (docs/security.md, "The sandbox with limits and zygotes"): by the same
/// unprivileged gustd as the other `SandboxTests`, with the cgroup tree delegated to it.
extension SandboxTests {
    @Test(.scratchDirectory) func aSandboxedAppsInstancesAreForksOfItsZygoteEachInItsOwnCgroup() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["cats"])
        let cgroupRoot = "gust-zygote-" + UUID().uuidString.prefix(8).lowercased()
        try Self.delegateCgroups(cgroupRoot)
        let gustd = try GustdProcess(
            home: home, arguments: ["--cgroup-root", cgroupRoot, "--memory-limit", "128M"], user: Self.user, executable: installed.gustd
        )
        defer { gustd.stop() }
        #expect(gustd.logText.contains("Limits: cgroup v1"), "\(gustd.logText)")
        #expect(gustd.logText.contains("sandbox: bubblewrap, each app as its own uid from \(Self.rangeStart)"), "\(gustd.logText)")

        let cats = try setup.workspace(root, "cats", files: [
            "__init__.py": """
                import os, gust

                @gust.op('who')
                def who():
                    return {'instance': os.environ['GUST_INSTANCE'], 'cgroupfs': os.path.exists('/sys/fs/cgroup')}

                @gust.op('hog')
                def hog():
                    chunks = []
                    for _ in range(64):
                        chunks.append(b'\\x01' * (16 << 20))  # written, so really used: 1 GB past a 128 MB limit
                    return len(chunks)
                """,
        ])
        let pushed = try setup.push(cats, to: home.repository(try AppName("cats")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        let scaled = try setup.run([installed.gust, "scale", "cats", "--min", "2", "--max", "2", "--home", home.path])
        #expect(scaled.status == 0, "\(scaled.output)")

        func ps() throws -> [InstanceStatus] {
            let result = try setup.run([installed.gust, "ps", "cats", "--json", "--home", home.path])
            return (try? JSONDecoder().decode([InstanceStatus].self, from: Data(result.stdout.utf8))) ?? []
        }
        let two = try eventually(within: 60) { () -> [InstanceStatus]? in
            let listed = try ps()
            let idle = listed.filter { $0.kind == nil && $0.state == "idle" }
            return idle.count == 2 && listed.contains { $0.kind == "zygote" } ? listed : nil
        }
        let now = try ps()
        let listed = try #require(two, "two idle instances and a zygote: \(now)")
        let instances = listed.filter { $0.kind == nil }
        let zygote = try #require(listed.first { $0.kind == "zygote" })
        #expect(zygote.state == "zygote" && zygote.release == 1, "\(zygote)")
        let zygotePID = try #require(zygote.pid.map(Int32.init))
        let appUID = Self.rangeStart + 1

        // The zygote is the app's runtime, as the app's uid.
        #expect(Self.uid(of: zygotePID) == appUID, "the zygote runs as the app's uid")
        var cgroups: [String] = []
        for instance in instances {
            let pid = try #require(instance.pid.map(Int32.init))
            let id = try #require(instance.id)
            // A fork of the zygote (its parent, seen from the host), as the app's host uid.
            #expect(Self.parent(of: pid) == zygotePID, "instance \(id) (pid \(pid)) is a fork of the zygote \(zygotePID)")
            #expect(Self.uid(of: pid) == appUID, "instance \(id) runs as uid \(appUID)")
            // In its own instance cgroup under each controller, not the zygote's nor the app's.
            for controller in ["memory", "pids", "cpu"] {
                let path = Self.cgroup(of: pid, controller: controller)
                #expect(path == "/\(cgroupRoot)/cats/\(id)", "instance \(id)'s \(controller) cgroup is \(path ?? "none")")
            }
            cgroups.append("/sys/fs/cgroup/memory/\(cgroupRoot)/cats/\(id)")
            // Its memory is its cgroup's: what the app uses, not a wrapper's few hundred kB.
            #expect((instance.memoryBytes ?? 0) > 256 << 10, "instance \(id) uses \(instance.memoryBytes ?? 0) bytes")
        }
        #expect(Set(cgroups).count == 2)
        #expect((zygote.memoryBytes ?? 0) > 4 << 20, "the zygote (an interpreter that imported the app) uses \(zygote.memoryBytes ?? 0) bytes")
        let text = try setup.run([installed.gust, "ps", "cats", "--home", home.path])
        #expect(text.stdout.contains(" zygote "), "\(text.output)")

        // Inside, no cgroup file exists to write; from the host, the app's uid may write none of
        // them: not another instance's, not the app's, not gustd's (a wrong mount would still not
        // let it move itself out of its instance's limits).
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who")
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json?["cgroupfs"] as? Bool == false, "\(answer.text)")
        let first = try #require(instances.first?.pid)
        let targets = [
            cgroups[1] + "/cgroup.procs", cgroups[0] + "/cgroup.procs", "/sys/fs/cgroup/memory/\(cgroupRoot)/cats/cgroup.procs",
            "/sys/fs/cgroup/memory/\(cgroupRoot)/cgroup.procs", "/sys/fs/cgroup/pids/\(cgroupRoot)/cats/cgroup.procs",
        ]
        for target in targets {
            let moved = try Command.run(
                "/usr/bin/setpriv", ["--reuid=\(appUID)", "--regid=\(appUID)", "--clear-groups", "--", "/bin/sh", "-c", "echo \(first) > \(target)"]
            )
            #expect(moved.status != 0, "the app's uid wrote its pid into \(target)")
            #expect(moved.output.contains("Permission denied"), "\(moved.output)")
        }
        #expect(Self.cgroup(of: Int32(first), controller: "memory") == "/\(cgroupRoot)/cats/\(instances[0].id ?? "")")

        // A fork past its memory: the kernel kills it alone; the call gets the JSON 502, the next
        // call an answer from another fork of the same zygote.
        let hog = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/hog")
        #expect(hog.status == 502, "\(hog.text)")
        #expect((hog.json?["error"] as? String)?.contains("out of memory (128 MB limit)") == true, "\(hog.text)")
        for _ in 0..<4 {
            let next = try HTTPClient.request(port: gustd.port, "POST", "/apps/cats/_/functions/who")
            #expect(next.status == 200, "\(next.text)")
        }
        #expect(GustdProcess.isAlive(zygotePID), "the zygote outlives its fork's OOM kill")
        let after = try eventually(within: 30) { () -> [InstanceStatus]? in
            let listed = try ps().filter { $0.kind == nil && $0.state == "idle" }
            return listed.count == 2 ? listed : nil
        }
        for instance in after ?? [] {
            let pid = try #require(instance.pid.map(Int32.init))
            #expect(Self.parent(of: pid) == zygotePID, "instance \(instance.id ?? "") is a fork of the same zygote")
        }
        // Written once gustd has seen the fork's exit and read its cgroup, which the call's answer
        // does not wait for (under CI's load, seconds later).
        var log = ""
        _ = try eventually(within: 30) { () -> Bool? in
            log = try setup.run([installed.gust, "logs", "cats", "-n", "500", "--home", home.path]).stdout
            return log.contains("out of memory (128 MB limit)") ? true : nil
        }
        #expect(log.contains("out of memory (128 MB limit)"), "\(log.suffix(2000))")
    }

    /// Waits (at most `seconds`, in 50 ms steps) for `value` to give something.
    func eventually<Value>(within seconds: Double, _ value: () throws -> Value?) rethrows -> Value? {
        for _ in 0..<Int(seconds * 20) {
            if let found = try value() { return found }
            usleep(50_000)
        }
        return try value()
    }

    /// The real uid of `pid`, from its `/proc/PID/status` on the host.
    static func uid(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(separator: "\t").dropFirst().first.flatMap { Int($0) }
    }

    /// The parent of `pid` on the host.
    static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// `pid`'s cgroup under a v1 `controller`, from `/proc/PID/cgroup` on the host.
    static func cgroup(of pid: Int32, controller: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2)
            if fields.count == 3, fields[1].split(separator: ",").contains(Substring(controller)) { return String(fields[2]) }
        }
        return nil
    }
}
