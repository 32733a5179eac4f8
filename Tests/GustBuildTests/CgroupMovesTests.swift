import GustBuild
import Testing

/// Reading whether cgroup moves are quick from mountinfo text: no kernel involved.
@Suite struct CgroupMovesTests {
    let proc = "22 41 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw"
    let v1 = "33 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"

    @Test func theOptionOnTheV2MountMakesMovesQuick() {
        let hybrid = [proc, v1, "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,favordynmods"]
        #expect(CgroupMoves(mountinfo: hybrid.joined(separator: "\n")) == .quick)
        #expect(CgroupMoves.quick.advice == nil)
        // systemd's v2-only mount, with optional tags before the separator and other options beside it.
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,favordynmods,memory_recursiveprot"
        #expect(CgroupMoves(mountinfo: unified) == .quick)
    }

    @Test func aV2MountWithoutItIsNamedInTheAdvice() {
        let hybrid = [proc, v1, "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"]
        let moves = CgroupMoves(mountinfo: hybrid.joined(separator: "\n"))
        #expect(moves == .waitForTheKernel(mountPoint: "/sys/fs/cgroup/unified"))
        #expect(moves.advice?.contains("mount -o remount,favordynmods /sys/fs/cgroup/unified") == true)
        // The option's name in a mount's own (per-mount) options is not the superblock's.
        let misleading = "41 31 0:38 / /sys/fs/cgroup/unified rw,favordynmods - cgroup2 cgroup2 rw"
        #expect(CgroupMoves(mountinfo: misleading) == .waitForTheKernel(mountPoint: "/sys/fs/cgroup/unified"))
    }

    @Test func withoutAV2MountThereIsNothingToSay() {
        #expect(CgroupMoves(mountinfo: [proc, v1].joined(separator: "\n")) == .unknown)
        #expect(CgroupMoves(mountinfo: "") == .unknown)
        #expect(CgroupMoves(mountinfo: "garbage\n- cgroup2\n") == .unknown)
    }

    @Test func theV2MountsAreReadWithTheirSuperblockOptions() {
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,favordynmods"
        let mounts = CgroupV2Mount.all(mountinfo: [proc, v1, unified, "garbage - cgroup2"].joined(separator: "\n"))
        #expect(mounts == [CgroupV2Mount(target: "/sys/fs/cgroup", options: ["rw", "nsdelegate", "favordynmods"])])
        #expect(mounts.first?.favorsDynamicModifications == true)
    }
}
