#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustBuild
import GustCore
@testable import GustDaemon
import Testing

/// What gustd sends a zygote and how it reads what comes back, without a zygote; and
/// where `gust ps` takes a sandboxed instance's memory from, with a fake cgroup mount.
@Suite struct ZygoteWireTests {
    @Test func aForkRequestSendsItsOutputsThenOneDescriptorPerCgroupFileAndSaysHowMany() throws {
        let (body, descriptors) = try ZygoteWire.forkRequest(
            id: "a1b2c3d4", socketPath: "/run/gust/a1b2c3d4/instance.sock", environment: ["GUST_INSTANCE": "a1b2c3d4"],
            internalToken: "secret", stdout: 11, stderr: 12, cgroupFiles: [21, 22, 23]
        )
        #expect(descriptors == [11, 12, 21, 22, 23])
        let request = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(request["fork"] as? String == "a1b2c3d4")
        #expect(request["socket"] as? String == "/run/gust/a1b2c3d4/instance.sock")
        #expect(request["cgroup_files"] as? Int == 3)
        #expect(request["internal_token"] as? String == "secret")
        #expect(request["cgroups"] == nil, "no path: a sandboxed fork could not reach it, and gustd opened the files")

        let (_, none) = try ZygoteWire.forkRequest(
            id: "x", socketPath: "/s", environment: [:], internalToken: "t", stdout: 1, stderr: 2, cgroupFiles: []
        )
        #expect(none == [1, 2])
    }

    @Test func aPidfdsFdinfoGivesThePidInGustdsNamespace() {
        // A fork in a sandbox: NSpid lists its pid in each namespace down to the sandbox's; Pid is gustd's.
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1052\nPid:\t48211\nNSpid:\t48211\t7\n"
        #expect(ZygoteWire.pid(inFdinfo: fdinfo) == 48211)
        #expect(ZygoteWire.pid(inFdinfo: "Pid:\t-1\nNSpid:\t-1\n") == nil, "an exited process")
        #expect(ZygoteWire.pid(inFdinfo: "pos:\t0\n") == nil, "not a pidfd")
    }

    @Test func aSandboxedInstancesMemoryIsItsCgroupsRSS() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for path in ["memory/memory.limit_in_bytes", "memory/cgroup.procs", "pids/cgroup.procs"] {
            let url = URL(fileURLWithPath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data().write(to: url)
        }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: AppLimits())
        #expect(cgroup.memoryBytes == nil, "nothing to read yet")
        // v1: total_rss (the app's anonymous memory), not cache nor usage_in_bytes.
        let stat = "cache 1048576\nrss 4096\nmapped_file 0\ntotal_cache 1048576\ntotal_rss 3145728\n"
        try Data(stat.utf8).write(to: URL(fileURLWithPath: root + "/memory/gust/cats/a1b2/memory.stat"))
        #expect(cgroup.memoryBytes == 3 << 20)
        #expect(InstanceCgroup.field("rss", in: stat) == 4096, "a field, not a longer name that starts with it")
    }

    @Test func onV2ItIsMemoryCurrent() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("memory pids cpu\n".utf8).write(to: URL(fileURLWithPath: root + "/cgroup.controllers"))
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: AppLimits())
        try Data("5242880\n".utf8).write(to: URL(fileURLWithPath: root + "/gust/cats/a1b2/memory.current"))
        #expect(cgroup.memoryBytes == 5 << 20)
    }
}
