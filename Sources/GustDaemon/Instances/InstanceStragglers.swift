#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The processes an instance started that left its process group.
///
/// An instance leads its own session, and stopping it signals that process
/// group; a process that calls `setsid()` (a daemon, a double fork) leaves the
/// group and would outlive its instance, its app, even `gust apps destroy`.
/// Every process an instance starts inherits its environment, with
/// `GUST_INSTANCE=ID` in it, so gustd finds them by that entry in
/// `/proc/PID/environ` (only processes of gustd's own uid: it never signals
/// anyone else's) and stops them when the instance stops or dies.
///
/// Why a scan and not a cgroup per instance: cgroup v1's `pids` controller is
/// writable only by root and cgroup v2 needs a subtree delegated to gustd's
/// user; gustd runs unprivileged as `gust` with neither. The scan needs no
/// privilege and works on every kernel. Its limit is known: a process that
/// rewrites or empties its environment escapes it. The sandboxed launcher
/// (design.md: a cgroup per app in a delegated subtree) closes that; this is the
/// minimal fix until then.
enum InstanceStragglers {
    /// The environment entry every process of instance `id` carries.
    static func marker(id: String) -> StragglerMarker { StragglerMarker(name: "GUST_INSTANCE", value: id) }

    /// Live processes of this uid, other than gustd itself, whose environment holds `marker`.
    static func find(marker: StragglerMarker) -> [pid_t] {
        let wanted = Array(marker.entry.utf8)
        let me = getpid(), uid = geteuid()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid > 1, pid != me else { return nil }
            let owner = (try? FileManager.default.attributesOfItem(atPath: "/proc/\(pid)"))?[.ownerAccountID] as? NSNumber
            guard owner?.uint32Value == uid,
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { return nil }
            let holds = environment.split(separator: 0, omittingEmptySubsequences: true).contains { $0.elementsEqual(wanted) }
            return holds ? pid : nil
        }
    }

    /// SIGTERM to each, SIGKILL to what is left after `grace`; scans again a few
    /// times to catch what forked meanwhile. Blocks: call it off the event loops.
    /// Returns how many processes it found.
    @discardableResult
    static func stop(marker: StragglerMarker, grace: Duration = .seconds(1)) -> Int {
        var found = Set<pid_t>()
        var pids = find(marker: marker)
        guard !pids.isEmpty else { return 0 }
        pids.forEach { kill($0, SIGTERM) }
        found.formUnion(pids)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            pids = find(marker: marker)
            if pids.isEmpty { return found.count }
            usleep(20_000)
        }
        for _ in 0..<10 {
            pids = find(marker: marker)
            if pids.isEmpty { break }
            found.formUnion(pids)
            pids.forEach { kill($0, SIGKILL) }
            usleep(20_000)
        }
        return found.count
    }
}

/// An entry of a process's environment (`NAME=value`) that every process it starts inherits, by
/// which gustd finds those that left its process group (`InstanceStragglers`). A pair, so that
/// whoever must set it (bwrap's own environment, outside the sandbox) reads its name and value
/// rather than parsing them back out of the entry.
struct StragglerMarker: Sendable, Equatable {
    let name: String
    let value: String

    /// As `/proc/PID/environ` holds it.
    var entry: String { "\(name)=\(value)" }
}
