import GustBuild
import GustCore

/// How an instance's cgroup reaches its process: the spawn shim joins the
/// cgroups (or sets the rlimits) between fork and exec. gustd's side of
/// `InstanceCgroup`, which gust-receive shares for builds.
extension InstanceCgroup {
    /// What the spawned process does before its program runs: join these cgroups, or take these rlimits.
    /// `ownUID`: the app's processes run as a host uid of their own (the sandbox with a subordinate
    /// range), so RLIMIT_NPROC, which the kernel counts per uid, bounds the app's processes and
    /// threads alone (all its instances' together), as `BuildRlimits` bounds a build's; without one
    /// they would count gustd's, and no process bound is set.
    func confinement(ownUID: Bool) -> SpawnConfinement {
        switch mechanism {
        case .cgroup1, .cgroup2:
            return SpawnConfinement(cgroupProcs: directories.map { $0 + "/cgroup.procs" })
        case .rlimits:
            // The address space of a runtime is larger than its memory (mapped libraries, thread stacks): give room.
            return SpawnConfinement(addressSpaceLimit: limits.memory.map { $0 + 256 << 20 }, processLimit: ownUID ? limits.pids : nil)
        }
    }
}
