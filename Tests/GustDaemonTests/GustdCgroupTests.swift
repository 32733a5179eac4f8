import Foundation
import GustBuild
@testable import GustDaemon
import Testing

/// gustd's own cgroup and CPU weight (`--cpu-weight`), against a fake cgroup mount: the files
/// written, where they are, and when gustd is left where it is. No kernel, no sleeps.
@Suite struct GustdCgroupTests {
    /// A fresh directory standing for /sys/fs/cgroup, with gustd's tree (`gust`) made under `hierarchy`.
    func fakeMount(_ hierarchy: String) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gustd-cgroup-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/" + hierarchy + "/gust", withIntermediateDirectories: true)
        return root
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    /// `/proc/self/cgroup` of a gustd started by hand on this hybrid machine: every hierarchy's root.
    let byHandV1 = "9:name=systemd:/\n4:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"

    @Test func onV1GustdJoinsItsOwnCgroupBesideTheTreeWithSharesMappedFromTheWeight() throws {
        let root = try fakeMount("cpu")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.cgroup1(directories: ["memory": root + "/memory/gust", "cpu": root + "/cpu/gust"])
        let outcome = try #require(GustdCgroup(weight: 400)).place(pid: 4242, mechanism: mechanism, cgroupRoot: "gust", membership: byHandV1)
        #expect(outcome == .joined(directory: root + "/cpu/gustd", file: "cpu.shares", value: 4096))
        #expect(try read(root + "/cpu/gustd/cpu.shares") == "4096")
        #expect(try read(root + "/cpu/gustd/cgroup.procs") == "4242")
        // Beside the tree, not in it: the tree's one weight is the instances' and builds'.
        #expect(!FileManager.default.fileExists(atPath: root + "/cpu/gust/gustd"))
        #expect(outcome.line.contains("cpu.shares 4096 in \(root)/cpu/gustd"), "\(outcome.line)")
    }

    @Test func v1SharesAreTheWeightTimes1024Over100() throws {
        #expect(try #require(GustdCgroup(weight: 100)).shares == 1024)
        #expect(try #require(GustdCgroup(weight: 1)).shares == 10)
        #expect(try #require(GustdCgroup(weight: 250)).shares == 2560)
        #expect(try #require(GustdCgroup(weight: 10000)).shares == 102_400)
    }

    @Test func onV2TheWeightIsWrittenAsItIs() throws {
        let root = try fakeMount("unified")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let membership = "1:cpu:/\n0::/\n"
        let outcome = try #require(GustdCgroup(weight: 250))
            .place(pid: 77, mechanism: .cgroup2(directory: root + "/unified/gust"), cgroupRoot: "gust", membership: membership)
        #expect(outcome == .joined(directory: root + "/unified/gustd", file: "cpu.weight", value: 250))
        #expect(try read(root + "/unified/gustd/cpu.weight") == "250")
        #expect(try read(root + "/unified/gustd/cgroup.procs") == "77")
    }

    @Test func theCgroupIsNamedAfterTheTreeSoTwoGustdsHaveTwo() throws {
        let root = try fakeMount("cpu")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.cgroup1(directories: ["cpu": root + "/cpu/staging"])
        let outcome = try #require(GustdCgroup(weight: 400)).place(pid: 9, mechanism: mechanism, cgroupRoot: "staging", membership: byHandV1)
        #expect(outcome == .joined(directory: root + "/cpu/stagingd", file: "cpu.shares", value: 4096))
    }

    @Test func theNextGustdReusesTheCgroupTheOneBeforeLeftAndItsNewWeight() throws {
        let root = try fakeMount("cpu")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.cgroup1(directories: ["cpu": root + "/cpu/gust"])
        _ = try #require(GustdCgroup(weight: 400)).place(pid: 100, mechanism: mechanism, cgroupRoot: "gust", membership: byHandV1)
        // Started again by hand: the cgroup is there already.
        let again = try #require(GustdCgroup(weight: 800)).place(pid: 200, mechanism: mechanism, cgroupRoot: "gust", membership: byHandV1)
        #expect(again == .joined(directory: root + "/cpu/gustd", file: "cpu.shares", value: 8192))
        #expect(try read(root + "/cpu/gustd/cgroup.procs") == "200")
        // Handed over to: the new gustd starts in the old one's cgroup, its own; it stays and sets its weight.
        let handedOver = try #require(GustdCgroup(weight: 400))
            .place(pid: 300, mechanism: mechanism, cgroupRoot: "gust", membership: "1:cpu,cpuacct:/gustd\n0::/\n")
        #expect(handedOver == .joined(directory: root + "/cpu/gustd", file: "cpu.shares", value: 4096))
    }

    @Test func aGustdInAServicesCgroupIsLeftThere() throws {
        let root = try fakeMount("cpu")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mechanism = LimitMechanism.cgroup1(directories: ["cpu": root + "/cpu/gust"])
        let membership = "9:name=systemd:/system.slice/gustd.service\n1:cpu,cpuacct:/system.slice/gustd.service\n0::/system.slice/gustd.service\n"
        let outcome = try #require(GustdCgroup(weight: 400)).place(pid: 5, mechanism: mechanism, cgroupRoot: "gust", membership: membership)
        #expect(outcome == .leftAsIs(reason: "gustd is in the cgroup /system.slice/gustd.service already (a service's: its CPUWeight= sets gustd's weight)"))
        #expect(!FileManager.default.fileExists(atPath: root + "/cpu/gustd"))
        // On v2 the same, by the unified line.
        let v2 = try #require(GustdCgroup(weight: 400))
            .place(pid: 5, mechanism: .cgroup2(directory: root + "/cpu/gust"), cgroupRoot: "gust", membership: "0::/system.slice/gustd.service\n")
        #expect(v2 == .leftAsIs(reason: "gustd is in the cgroup /system.slice/gustd.service already (a service's: its CPUWeight= sets gustd's weight)"))
        #expect(!FileManager.default.fileExists(atPath: root + "/cpu/gustd"))
    }

    @Test func withoutACpuControllerToWriteGustdIsLeftAndTheLineSaysWhy() throws {
        let weight = try #require(GustdCgroup(weight: 400))
        #expect(weight.place(pid: 5, mechanism: nil, cgroupRoot: "gust", membership: byHandV1).line
            == "gustd's CPU weight: not set, no cgroups are used (--no-limits)")
        #expect(weight.place(pid: 5, mechanism: .rlimits(reason: "none"), cgroupRoot: "gust", membership: byHandV1)
            == .leftAsIs(reason: "gustd has no cgroup it may use (its limits are rlimits)"))
        #expect(weight.place(pid: 5, mechanism: .cgroup1(directories: ["memory": "/nowhere/memory/gust"]), cgroupRoot: "gust", membership: byHandV1)
            == .leftAsIs(reason: "the cgroup v1 cpu controller is not mounted"))
    }

    @Test func aCgroupThatCannotBeMadeOrWrittenIsAFailureToLogNotToStopFor() throws {
        // The hierarchy is a file: no directory can be made in it (root or not).
        let root = try fakeMount("memory")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data().write(to: URL(fileURLWithPath: root + "/cpu"))
        let weight = try #require(GustdCgroup(weight: 400))
        let unmade = weight.place(pid: 5, mechanism: .cgroup1(directories: ["cpu": root + "/cpu/gust"]), cgroupRoot: "gust", membership: byHandV1)
        #expect(unmade == .failed(reason: "cannot make \(root)/cpu/gustd: Not a directory"))
        #expect(unmade.line == "gustd's CPU weight: not set (cannot make \(root)/cpu/gustd: Not a directory); gustd shares the CPU as its session does")

        // The weight's file cannot be written (a directory in its place): gustd is not moved either.
        try FileManager.default.createDirectory(atPath: root + "/memory/gustd/cpu.shares", withIntermediateDirectories: true)
        let unwritten = weight.place(
            pid: 5, mechanism: .cgroup1(directories: ["cpu": root + "/memory/gust"]), cgroupRoot: "gust", membership: "1:cpu:/\n")
        #expect(unwritten == .failed(reason: "cannot open \(root)/memory/gustd/cpu.shares: Is a directory"))
        #expect(!FileManager.default.fileExists(atPath: root + "/memory/gustd/cgroup.procs"))

        // /proc/self/cgroup without the hierarchy's line.
        let unknown = weight.place(pid: 5, mechanism: .cgroup1(directories: ["cpu": root + "/memory/gust"]), cgroupRoot: "gust", membership: "0::/\n")
        #expect(unknown == .failed(reason: "/proc/5/cgroup names no cgroup v1 cpu cgroup"))
    }

    @Test func theOptionTakesAWeightOrOff() throws {
        #expect(GustdCgroup.parse("400") == .some(GustdCgroup(weight: 400)))
        #expect(GustdCgroup.parse("off") == .some(nil))
        #expect(GustdCgroup.parse("0") == .some(nil))
        #expect(GustdCgroup.parse("10001") == nil)
        #expect(GustdCgroup.parse("-3") == nil)
        #expect(GustdCgroup.parse("lots") == nil)
    }

    @Test func aProcessCgroupLineIsFoundByItsController() {
        let membership = "12:pids:/a\n4:cpu,cpuacct:/b\n3:cpuacct:/c\n0::/d\n"
        #expect(GustdCgroup.cgroup(in: membership, controller: "cpu") == "/b")
        #expect(GustdCgroup.cgroup(in: membership, controller: nil) == "/d")
        #expect(GustdCgroup.cgroup(in: "1:name=systemd:/x\n", controller: "cpu") == nil)
    }
}
