import GustBuild
import GustCore
import Synchronization

/// The zygotes of an app for `gust ps`: one line each, beside its instances.
extension Supervisor {
    /// The live release's resident zygote, if it has one: its runtime's pid, its memory (its
    /// cgroup's under the sandbox, else its PSS) and uptime. A replaced release's zygote, still
    /// there while its last instances finish, is not listed.
    nonisolated func zygotes(of app: AppName) -> [InstanceStatus] {
        guard let route = routes.withLock({ $0[app] }), let zygote = route.launcher.zygote?.current else { return [] }
        let pid = zygote.runtimePID ?? zygote.process.pid
        let memory = route.launcher.spawner.isSandboxed ? zygote.cgroup?.memoryBytes : nil
        return [
            InstanceStatus(
                id: zygote.id, release: route.version, pid: Int(pid), state: "zygote", served: 0, inFlight: 0,
                memoryBytes: memory ?? InstanceStatus.memory(of: pid), uptimeSeconds: (ContinuousClock.now - zygote.started).seconds,
                kind: "zygote"
            )
        ]
    }
}
