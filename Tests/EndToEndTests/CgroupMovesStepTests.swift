import Foundation
import GustBuild
import GustCore
import GustTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The installer's root step turns on quick moves into cgroups (`favordynmods` on the cgroup v2
/// mount), and gustd says at start when they are not quick: the real kernel, the real mount, the
/// real `contrib/systemd/gust-cgroups.sh`. The mount is put back as it was found.
@Suite(.serialized, .timeLimit(.minutes(20))) struct CgroupMovesStepTests {
    /// The cgroup v2 mount the step looks at, with its superblock options, or nil.
    static func v2Mount() -> CgroupV2Mount? {
        CgroupV2Mount.current().first { ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].contains($0.target) }
    }

    /// Whether the mount has favordynmods now.
    static var quick: Bool { v2Mount()?.options.contains("favordynmods") == true }

    /// Remounts the v2 hierarchy with exactly `options` (mount(8) would keep favordynmods).
    static func remount(_ target: String, options: [String]) -> Bool {
        mount(nil, target, nil, UInt(MS_REMOUNT), options.filter { $0 != "rw" }.joined(separator: ",")) == 0
    }

    @Test(.scratchDirectory) func theStepMakesMovesQuickAndGustdSaysWhenTheyAreNot() throws {
        guard getuid() == 0, let found = Self.v2Mount() else {
            print("CgroupMovesStepTests skipped: needs root and a cgroup v2 mount under /sys/fs/cgroup")
            return
        }
        let without = found.options.filter { $0 != "favordynmods" }
        guard Self.remount(found.target, options: without) else {
            print("CgroupMovesStepTests skipped: this kernel does not let root remount \(found.target) (errno \(errno))")
            return
        }
        defer { _ = Self.remount(found.target, options: found.options) }
        #expect(!Self.quick)

        // gustd (with cgroups in force) names the mount and what to do about it.
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let before = try GustdProcess(home: home)
        if before.logText.contains("rlimits only") {
            print("CgroupMovesStepTests: gustd's advice not checked, it has no cgroups here")
        } else {
            #expect(before.logText.contains("\(found.target) is mounted without favordynmods"), "\(before.logText)")
        }
        before.stop()

        let script = GustBinaries.sourceRoot.appendingPathComponent("contrib/systemd/gust-cgroups.sh").path
        let cgroupRoot = "gust-moves-" + UUID().uuidString.prefix(8).lowercased()
        defer { GustdProcess.cleanUp(home: home, cgroupRoot: cgroupRoot) }
        let stepped = try Command.run("/bin/bash", [script, "root", "--cgroup-root", cgroupRoot])
        #expect(stepped.status == 0, "\(stepped.output)")
        #expect(stepped.stdout.contains("favordynmods turned on for \(found.target)"), "\(stepped.output)")
        #expect(Self.quick)
        // The mount's other options are kept.
        #expect(Set(Self.v2Mount()?.options ?? []) == Set(without + ["favordynmods"]))
        // A second run changes nothing; GUST_FAVORDYNMODS=no leaves the mount alone.
        #expect(try Command.run("/bin/bash", [script, "root", "--cgroup-root", cgroupRoot]).stdout.contains("already has favordynmods"))
        #expect(Self.remount(found.target, options: without))
        let declined = try Command.run("/usr/bin/env", ["GUST_FAVORDYNMODS=no", "/bin/bash", script, "root", "--cgroup-root", cgroupRoot])
        #expect(declined.status == 0 && !Self.quick, "\(declined.output)")
        #expect(Self.remount(found.target, options: without + ["favordynmods"]))

        let after = try GustdProcess(home: home)
        defer { after.stop() }
        #expect(!after.logText.contains("without favordynmods"), "\(after.logText)")
    }
}
