import Foundation

/// Whether moving a process into a cgroup is quick on this host, read from
/// `/proc/self/mountinfo` at gustd's start.
///
/// Every new instance moves into cgroups of its own (memory, pids, cpu). The
/// kernel guards such moves with one lock that, by default, is cheap for fork
/// and exit and dear for a move: the first move after a quiet spell waits for
/// an RCU grace period, about 10 ms here, which a scale-out pays in full. The
/// cgroup v2 mount option `favordynmods` (Linux 6.0+, host-wide, whichever
/// hierarchy the moves are in) turns that around: a move costs about 0.3 ms,
/// fork and exit a little more. The installer's root step
/// (`contrib/systemd/gust-cgroups.sh`) turns it on; gustd only says whether it is.
package enum CgroupMoves: Equatable, Sendable {
    /// A cgroup v2 hierarchy is mounted with `favordynmods`.
    case quick
    /// A cgroup v2 hierarchy is mounted at `mountPoint` without it.
    case waitForTheKernel(mountPoint: String)
    /// No cgroup v2 hierarchy is mounted (where the option would be set).
    case unknown

    /// Reads mountinfo's text (`CgroupV2Mount`): quick if any v2 mount has the option.
    package init(mountinfo: String) {
        self.init(mounts: CgroupV2Mount.all(mountinfo: mountinfo))
    }

    package init(mounts: [CgroupV2Mount]) {
        if mounts.contains(where: \.favorsDynamicModifications) {
            self = .quick
        } else {
            self = mounts.first.map { .waitForTheKernel(mountPoint: $0.target) } ?? .unknown
        }
    }

    /// This process's view of the host's mounts.
    package static func current() -> CgroupMoves {
        CgroupMoves(mounts: CgroupV2Mount.current())
    }

    /// A line for gustd's log at start when instances get cgroups; nil where there is nothing to say.
    package var advice: String? {
        switch self {
        case .quick, .unknown:
            nil
        case .waitForTheKernel(let mountPoint):
            "Each new instance's move into its cgroups may wait about 10 ms for the kernel: \(mountPoint) is mounted "
                + "without favordynmods. As root: mount -o remount,favordynmods \(mountPoint) (gustd.service's "
                + "gust-cgroups.sh does it; docs/operations.md, \"Quick cgroup moves\")"
        }
    }
}
