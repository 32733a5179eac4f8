#if canImport(Glibc)
import Glibc
#endif
import Foundation
package import GustBuild

/// gustd's own CPU weight: at start, gustd moves itself (the whole process, every thread) into a
/// cgroup of its own beside its instances' tree (`/sys/fs/cgroup/cpu/gustd` beside `…/cpu/gust`
/// on cgroup v1, `…/gustd` with `cpu.weight` on v2) and gives it `--cpu-weight`.
///
/// Why: started by hand or by a script, gustd is a process of the root cgroup, where the kernel
/// shares the CPU between sessions (`kernel.sched_autogroup_enabled`): gustd, every thread of it
/// together, is one session at weight 1024 beside the instances' whole tree (one more 1024) and
/// every other session. During a deploy, when the host runs the most, gustd's event loops, which
/// every call goes through, then wait runnable for a CPU (docs/benchmarks.md, "Where gustd stalls
/// during a deploy"). A task outside the root cgroup is out of the autogroups, so the weight set
/// here is gustd's. Under a service manager gustd is in a cgroup of its own already (systemd's
/// unit; its `CPUWeight=` sets the weight): then it is left there. Nothing here fails gustd's
/// start: where the cgroup cannot be made or joined, `Outcome.line` says why and gustd goes on.
///
/// Processes gustd starts afterwards begin in this cgroup; instances, zygotes in the sandbox and
/// builds move into cgroups of their own under the tree (`InstanceCgroup`) before their program runs.
package struct GustdCgroup: Equatable, Sendable {
    /// The weight in cgroup v2 units (1–10000; 100 is the kernel's default for a cgroup).
    package var weight: Int

    /// What `--cpu-weight` is without the option: 4× a cgroup's default (docs/benchmarks.md,
    /// "gustd's own CPU weight").
    package static let defaultWeight = 400
    package static let weights = 1...10000

    /// nil for 0 (leave gustd where it is); nil too outside 1–10000.
    package init?(weight: Int) {
        guard Self.weights.contains(weight) else { return nil }
        self.weight = weight
    }

    /// `--cpu-weight`'s text: a weight, or `off` / `0`; nil (unset) when it is neither.
    package static func parse(_ text: String) -> GustdCgroup?? {
        if text == "off" || text == "0" { return .some(nil) }
        guard let weight = Int(text), let parsed = GustdCgroup(weight: weight) else { return nil }
        return .some(parsed)
    }

    /// cgroup v1's `cpu.shares` for the weight, mapped as systemd maps `CPUWeight=` (100 ↔ 1024).
    package var shares: Int { weight * 1024 / 100 }

    /// gustd's cgroup beside its tree: the tree's name and a `d` (`gust` → `gustd`), so that two
    /// gustds on one host (different `--cgroup-root`s) each have their own.
    package static func name(cgroupRoot: String) -> String { cgroupRoot + "d" }

    /// What `place` did, for gustd's log at start.
    package enum Outcome: Equatable, Sendable {
        /// gustd is in `directory` now, and `file` holds `value`.
        case joined(directory: String, file: String, value: Int)
        /// gustd stays where it is: `reason` says why (its own cgroup already, or no cpu controller to write).
        case leftAsIs(reason: String)
        /// Making, weighting or joining the cgroup failed: gustd stays where it was.
        case failed(reason: String)

        package var line: String {
            switch self {
            case .joined(let directory, let file, let value):
                "gustd's CPU weight: \(file) \(value) in \(directory), a cgroup of its own beside its instances' tree"
            case .leftAsIs(let reason):
                "gustd's CPU weight: not set, \(reason)"
            case .failed(let reason):
                "gustd's CPU weight: not set (\(reason)); gustd shares the CPU as its session does"
            }
        }
    }

    /// Moves process `pid` into gustd's cgroup beside `mechanism`'s tree, made or reused, with the
    /// weight written first; `membership` is the process's `/proc/PID/cgroup`.
    package func place(pid: Int32, mechanism: LimitMechanism?, cgroupRoot: String, membership: String) -> Outcome {
        let tree: String
        let controller: String?
        switch mechanism {
        case nil:
            return .leftAsIs(reason: "no cgroups are used (--no-limits)")
        case .rlimits:
            return .leftAsIs(reason: "gustd has no cgroup it may use (its limits are rlimits)")
        case .cgroup2(let directory):
            (tree, controller) = (directory, nil)
        case .cgroup1(let directories):
            guard let directory = directories["cpu"] else { return .leftAsIs(reason: "the cgroup v1 cpu controller is not mounted") }
            (tree, controller) = (directory, "cpu")
        }
        let hierarchy = (tree as NSString).deletingLastPathComponent
        let name = Self.name(cgroupRoot: cgroupRoot)
        let directory = hierarchy + "/" + name
        guard let current = Self.cgroup(in: membership, controller: controller) else {
            return .failed(reason: "/proc/\(pid)/cgroup names no \(controller.map { "cgroup v1 \($0)" } ?? "cgroup v2") cgroup")
        }
        // The root: started by hand or by a script. Its own: the gustd before this one handed over to it.
        guard current == "/" || current == "/" + name else {
            return .leftAsIs(reason: "gustd is in the cgroup \(current) already (a service's: its CPUWeight= sets gustd's weight)")
        }
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            return .failed(reason: "cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        let (file, value) = controller == nil ? ("cpu.weight", weight) : ("cpu.shares", shares)
        if let failure = Self.write("\(value)", to: directory + "/" + file) { return .failed(reason: failure) }
        // v1 and v2 alike, cgroup.procs moves the whole process, every thread of it.
        if let failure = Self.write("\(pid)", to: directory + "/cgroup.procs") { return .failed(reason: failure) }
        return .joined(directory: directory, file: file, value: value)
    }

    /// The process's cgroup in the v1 hierarchy of `controller` (`4:cpu,cpuacct:/PATH`), or in the
    /// v2 hierarchy (`0::/PATH`) when `controller` is nil.
    package static func cgroup(in membership: String, controller: String?) -> String? {
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",").map(String.init)
            let matches = if let controller { controllers.contains(controller) } else { fields[0] == "0" && controllers.isEmpty }
            if matches { return String(fields[2]) }
        }
        return nil
    }

    /// Writes `value` into the file; nil when done, else why not.
    private static func write(_ value: String, to path: String) -> String? {
        switch CgroupFile.write(value, to: path) {
        case nil: nil
        case .open(let reason): "cannot open \(path): \(reason)"
        case .write(let reason): "cannot write \(value) to \(path): \(reason)"
        }
    }
}
