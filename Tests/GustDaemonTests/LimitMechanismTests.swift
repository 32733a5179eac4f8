import Foundation
import GustBuild
import GustCore
@testable import GustDaemon
import Testing

/// Which limit mechanism gustd picks, from a fake cgroup mount: no kernel, no sleeps.
@Suite struct LimitMechanismTests {
    /// A fresh directory standing for /sys/fs/cgroup, with `files` (path → contents) in it.
    func fakeRoot(_ files: [String: String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString.prefix(8))").path
        for (path, contents) in files {
            let url = URL(fileURLWithPath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: url)
        }
        return root
    }

    let v1: [String: String] = [
        "memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/cgroup.procs": "",
        "pids/cgroup.procs": "", "cpu/cpu.cfs_period_us": "100000\n", "cpu/cgroup.procs": "",
    ]

    @Test func v2IsUsedWhereItsControllersAreListed() throws {
        let root = try fakeRoot(["cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(LimitMechanism.detect(root: root, name: "gust") == .cgroup2(directory: root + "/gust"))
        #expect(try String(contentsOfFile: root + "/gust/cgroup.subtree_control", encoding: .utf8) == "+memory +pids +cpu")
    }

    @Test func aHybridMachineWithAnEmptyUnifiedHierarchyUsesV1() throws {
        // This machine: v2 mounted at unified/ with no controllers, v1 memory, pids and cpu.
        var files = v1
        files["unified/cgroup.controllers"] = "\n"
        let root = try fakeRoot(files)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        #expect(mechanism == .cgroup1(directories: ["memory": root + "/memory/gust", "pids": root + "/pids/gust", "cpu": root + "/cpu/gust"]))
        #expect(mechanism.description.hasPrefix("Limits: cgroup v1, memory at \(root)/memory/gust"))
    }

    @Test func aV1MachineWithoutPidsSaysItIsNotEnforced() throws {
        var files = v1
        files["pids/cgroup.procs"] = nil
        let root = try fakeRoot(files)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        #expect(mechanism.description.contains("pids not mounted: not enforced"), "\(mechanism.description)")
    }

    @Test func withoutCgroupsRlimitsAreTheLastResortAndTheLogSaysWhy() throws {
        let root = try fakeRoot(["unified/cgroup.controllers": "\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        guard case .rlimits(let reason) = mechanism else { Issue.record("\(mechanism)"); return }
        #expect(reason.contains("offers no memory, pids, cpu controller"), "\(reason)")
        #expect(mechanism.description.hasPrefix("Limits: rlimits only"))
    }

    @Test func anInstanceCgroupOnV2GetsItsLimitsAndIsRemovedWhenItEnds() throws {
        let root = try fakeRoot(["cgroup.controllers": "memory pids cpu\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let limits = AppLimits(memory: 64 << 20, cpuMillis: 500, pids: 64)
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: limits)
        let directory = root + "/gust/cats/a1b2"
        #expect(cgroup.directories == [directory])
        #expect(cgroup.confinement(ownUID: true) == SpawnConfinement(cgroupProcs: [directory + "/cgroup.procs"]))
        func read(_ file: String) throws -> String { try String(contentsOfFile: directory + "/" + file, encoding: .utf8) }
        #expect(try read("memory.max") == "67108864")
        #expect(try read("memory.swap.max") == "0")
        #expect(try read("pids.max") == "64")
        #expect(try read("cpu.max") == "50000 100000")
        #expect(try String(contentsOfFile: root + "/gust/cats/cgroup.subtree_control", encoding: .utf8) == "+memory +pids +cpu")

        // The kernel's count of OOM kills, as v2 reports it in memory.events.
        try Data("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n".utf8).write(to: URL(fileURLWithPath: directory + "/memory.events"))
        #expect(cgroup.outOfMemoryText == "out of memory (64 MB limit)")
        // A fake directory holds files, so rmdir fails there; the kernel's cgroup directories hold none.
        for file in ["memory.max", "memory.swap.max", "pids.max", "cpu.max", "memory.events"] { try FileManager.default.removeItem(atPath: directory + "/" + file) }
        cgroup.finish()
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func anOOMKillIsSeenWhetherOrNotTheExitHandlerHasFinishedTheCgroupYet() throws {
        // A call that lost its instance asks once the process has exited, which it may learn before
        // the exit handler has run `finish` (which records the kill, then removes the directories).
        let root = try fakeRoot(["cgroup.controllers": "memory pids cpu\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: AppLimits(memory: 64 << 20))
        let directory = root + "/gust/cats/a1b2"
        try Data("oom 1\noom_kill 1\n".utf8).write(to: URL(fileURLWithPath: directory + "/memory.events"))
        #expect(!cgroup.wasOutOfMemory, "not recorded before finish")
        #expect(cgroup.sawOutOfMemory, "before finish: read from the cgroup")
        cgroup.finish()  // records the kill (a fake directory holding files is not removed: it gives up after 0.5 s)
        // The kernel's directory is gone after finish; with it, the count reads 0.
        try FileManager.default.removeItem(atPath: directory + "/memory.events")
        #expect(cgroup.oomKills == 0)
        #expect(cgroup.sawOutOfMemory, "after finish: as it recorded it")
    }

    @Test func cgroupsAPreviousGustdLeftAreRemovedAtStart() throws {
        let root = try fakeRoot(["gust/cgroup.subtree_control": "", "gust/cats/cgroup.subtree_control": ""])
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/gust/cats/a1b2c3d4", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/gust/dogs/e5f6a7b8", withIntermediateDirectories: true)
        InstanceCgroup.sweep(.cgroup2(directory: root + "/gust"))
        #expect(!FileManager.default.fileExists(atPath: root + "/gust/cats/a1b2c3d4"))
        #expect(!FileManager.default.fileExists(atPath: root + "/gust/dogs"))
        #expect(FileManager.default.fileExists(atPath: root + "/gust/cgroup.subtree_control"), "gustd's own cgroup stays")
    }

    @Test func rlimitsBoundTheAddressSpaceWithHeadroomAndTheProcessesWhereTheAppHasItsOwnUID() throws {
        let cgroup = try InstanceCgroup(mechanism: .rlimits(reason: "test"), app: try AppName("cats"), id: "x", limits: AppLimits(memory: 64 << 20, pids: 64))
        #expect(cgroup.confinement(ownUID: true) == SpawnConfinement(cgroupProcs: [], addressSpaceLimit: (64 << 20) + (256 << 20), processLimit: 64))
        // As gustd's own uid, RLIMIT_NPROC would count gustd's processes: none.
        #expect(cgroup.confinement(ownUID: false) == SpawnConfinement(cgroupProcs: [], addressSpaceLimit: (64 << 20) + (256 << 20), processLimit: nil))
        #expect(cgroup.directories.isEmpty)
    }
}

/// An app's log rate bound: lines past it are dropped and counted, the count noted before the next kept line.
@Suite struct LogThrottleTests {
    let t0 = ContinuousClock.now

    @Test func linesPastTheRateAreDroppedAndNotedWhenTheBudgetReturns() {
        let throttle = LogThrottle(bytesPerSecond: 2048, now: t0)
        let line = String(repeating: "x", count: 203)  // 204.8 bytes would be a tenth: 204 with its newline
        let first = throttle.admit(Array(repeating: line, count: 15), now: t0)
        #expect(first.kept.count == 10)
        #expect(first.droppedBefore == 0)
        #expect(throttle.admit([line], now: t0 + .milliseconds(50)).kept.isEmpty, "110 bytes of budget back: not enough")
        let later = throttle.admit([line, line], now: t0 + .milliseconds(300))
        #expect(later.kept == [line, line])
        #expect(later.droppedBefore == 6)
        #expect(throttle.takeDropped() == 0)
        #expect(throttle.note(6) == "… 6 lines dropped: over 2 KB/s")
    }

    /// Empty or short lines cost what an entry costs, not their length: newlines alone cannot have
    /// gustd write a million entries a second.
    @Test func aShortLineCostsAsMuchAsAnEntry() {
        let throttle = LogThrottle(bytesPerSecond: 1 << 20, now: t0)
        let kept = throttle.admit(Array(repeating: "", count: 100_000), now: t0).kept.count
        #expect(kept == (1 << 20) / LogThrottle.leastLineCost)
        #expect(throttle.takeDropped() == 100_000 - kept)
    }

    /// What is left of the budget, refilled as time passes. Lines a reader dropped unmade (past
    /// it) are noted with the others before the next kept line.
    @Test func theBudgetLeftIsToldAndLinesDroppedUnmadeAreNoted() {
        let throttle = LogThrottle(bytesPerSecond: 2048, now: t0)
        #expect(throttle.available(now: t0) == 2048)
        _ = throttle.admit(Array(repeating: String(repeating: "x", count: 1023), count: 2), now: t0)
        #expect(throttle.available(now: t0) == 0)
        throttle.drop(5000)
        #expect(throttle.available(now: t0 + .milliseconds(50)) == 102)
        #expect(LogThrottle.cost(ofLine: 0) == LogThrottle.leastLineCost && LogThrottle.cost(ofLine: 999) == 1000)
        let later = throttle.admit(["y"], now: t0 + .milliseconds(100))
        #expect(later.kept == ["y"] && later.droppedBefore == 5000)
    }

    @Test func anIdleAppGetsOneSecondsBurstNotMore() {
        let throttle = LogThrottle(bytesPerSecond: 1 << 20, now: t0)
        let megabyteLine = String(repeating: "y", count: (1 << 20) - 1)
        #expect(throttle.admit([megabyteLine], now: t0 + .seconds(3600)).kept.count == 1)
        #expect(throttle.admit(["z"], now: t0 + .seconds(3600)).kept.isEmpty)
        #expect(throttle.takeDropped() == 1)
        #expect(throttle.note(1) == "… 1 line dropped: over 1 MB/s")
    }
}
