import Foundation
import GustCore
import GustTesting
import Testing

/// The installed unit's root step on cgroup v1 (`contrib/systemd/gust-cgroups.sh`, which
/// gustd.service runs with `ExecStartPre=+` before gustd): systemd's `Delegate=yes` hands an
/// unprivileged gustd no v1 hierarchy, so without it gustd falls back to rlimits.
extension SandboxTests {
    @Test(.scratchDirectory) func theCgroupStepGivesAnUnprivilegedGustdCgroupV1Limits() throws {
        guard let setup = try Self.prepareUser() else { return }
        guard FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes") else {
            print("SandboxTests: the cgroup step test skipped, this machine has no cgroup v1 memory hierarchy")
            return
        }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs"])
        let cgroupRoot = "gust-step-" + UUID().uuidString.prefix(8).lowercased()

        // As root, what the unit runs: gustd's cgroup under memory, pids and cpu, the gust user's.
        let stepped = try Self.delegateCgroups(cgroupRoot)
        #expect(stepped.stdout.contains("are \(Self.user)'s"), "\(stepped.output)")
        let uid = try #require(getpwnam(Self.user)).pointee.pw_uid
        for controller in ["memory", "pids", "cpu"] {
            for file in ["", "/cgroup.procs", "/tasks"] {
                let path = "/sys/fs/cgroup/\(controller)/\(cgroupRoot)\(file)"
                let owner = (try? FileManager.default.attributesOfItem(atPath: path))?[.ownerAccountID] as? Int
                #expect(owner == Int(uid), "\(path) belongs to \(owner.map(String.init) ?? "nobody")")
            }
        }
        // Every start runs it again: a second run is harmless.
        #expect(try Self.delegateCgroups(cgroupRoot).status == 0)

        let gustd = try GustdProcess(
            home: home, arguments: ["--cgroup-root", cgroupRoot, "--memory-limit", "128M"], user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        let v1 = "Limits: cgroup v1, memory at /sys/fs/cgroup/memory/\(cgroupRoot), pids at /sys/fs/cgroup/pids/\(cgroupRoot), "
            + "cpu at /sys/fs/cgroup/cpu/\(cgroupRoot)"
        #expect(gustd.logText.contains(v1), "\(gustd.logText)")
        #expect(!gustd.logText.contains("rlimits only"), "\(gustd.logText)")

        // An app's instance runs in a cgroup of its own under that tree, with its memory limit.
        let dogs = try setup.workspace(root, "dogs", files: ["__init__.py": "import gust\n\n@gust.op('bark')\ndef bark():\n    return 'woof'\n"])
        let pushed = try setup.push(dogs, to: home.repository(try AppName("dogs")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        #expect(try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark").status == 200)
        // (By the pid gustd recorded: other runs of these tests may have instances of the same uid.)
        let instance = try #require(GustdProcess.recordedInstancePIDs(of: home).first, "gustd recorded dogs' instance")
        let cgroups = try String(contentsOfFile: "/proc/\(instance)/cgroup", encoding: .utf8)
        let memory = try #require(
            cgroups.split(separator: "\n").first { $0.split(separator: ":").dropFirst().first?.split(separator: ",").contains("memory") == true },
            "\(cgroups)")
        let path = String(memory.split(separator: ":", maxSplits: 2)[2])
        #expect(path.hasPrefix("/\(cgroupRoot)/dogs/"), "\(cgroups)")
        let limit = try String(contentsOfFile: "/sys/fs/cgroup/memory\(path)/memory.limit_in_bytes", encoding: .utf8)
        #expect(limit.trimmingCharacters(in: .whitespacesAndNewlines) == "\(128 << 20)")
    }
}
