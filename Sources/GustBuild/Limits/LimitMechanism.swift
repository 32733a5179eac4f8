#if canImport(Glibc)
import Glibc
#endif
package import Foundation
import GustCore

/// How gustd bounds an instance's memory, CPU and processes on this machine,
/// decided once at start from what the kernel offers under the cgroup mount
/// (`root`, /sys/fs/cgroup; tests pass a fake directory):
///
/// - cgroup v2, where a unified hierarchy's `cgroup.controllers` lists
///   memory, pids and cpu (at the mount itself, or at `unified/` on a hybrid machine);
/// - cgroup v1, one hierarchy per controller (`memory/`, `pids/`, `cpu/`),
///   for the controllers that are mounted;
/// - rlimits (RLIMIT_AS, RLIMIT_NPROC) as the last resort: coarse (address
///   space, not memory; processes counted per uid) and no CPU bound.
///
/// A mechanism is only chosen if gustd can make its own directory there
/// (`--cgroup-root`, under each hierarchy); otherwise the next one is.
package enum LimitMechanism: Codable, Equatable, Sendable {
    /// `directory` is gustd's cgroup in the unified hierarchy (`/sys/fs/cgroup/gust`).
    case cgroup2(directory: String)
    /// gustd's cgroup under each mounted v1 controller, by controller name (`memory`, `pids`, `cpu`).
    case cgroup1(directories: [String: String])
    /// No cgroup gustd may use: `reason` says why, for gustd's log.
    case rlimits(reason: String)

    package static let controllers = ["memory", "pids", "cpu"]

    /// Looks at `root` and makes `name` under the hierarchy chosen.
    package static func detect(root: String = "/sys/fs/cgroup", name: String, fileManager: FileManager = .default) -> LimitMechanism {
        var reasons: [String] = []
        for unified in [root, root + "/unified"] {
            guard let listed = try? String(contentsOfFile: unified + "/cgroup.controllers", encoding: .utf8) else { continue }
            let available = Set(listed.split(whereSeparator: \.isWhitespace).map(String.init))
            let missing = controllers.filter { !available.contains($0) }
            guard missing.isEmpty else {
                reasons.append("cgroup v2 at \(unified) offers no \(missing.joined(separator: ", ")) controller")
                continue
            }
            let directory = unified + "/" + name
            do {
                // The hierarchy's root hands the controllers down to gustd's cgroup (already so where delegated).
                try? Data("+memory +pids +cpu".utf8).write(to: URL(fileURLWithPath: unified + "/cgroup.subtree_control"))
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
                // Children of gustd's cgroup get the controllers (the parent's must already delegate them).
                try Data("+memory +pids +cpu".utf8).write(to: URL(fileURLWithPath: directory + "/cgroup.subtree_control"))
                return .cgroup2(directory: directory)
            } catch {
                reasons.append("cannot use cgroup v2 at \(directory): \(error.localizedDescription)")
            }
        }
        var directories: [String: String] = [:]
        for controller in controllers {
            let mount = root + "/" + controller
            // The hierarchy's own file tells a mounted controller from an empty directory.
            let marker = ["memory": "memory.limit_in_bytes", "pids": "cgroup.procs", "cpu": "cpu.cfs_period_us"][controller]!
            guard fileManager.fileExists(atPath: mount + "/" + marker) else { continue }
            let directory = mount + "/" + name
            do {
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
                // It may be there already, another user's (root's, from an earlier gustd): gustd must make cgroups in it.
                guard access(directory, W_OK) == 0 else {
                    reasons.append("cannot write to \(directory) (make it gustd's user's: docs/security.md, \"Running as the gust user\")")
                    continue
                }
                directories[controller] = directory
            } catch {
                reasons.append("cannot make \(directory): \(error.localizedDescription)")
            }
        }
        if directories["memory"] != nil { return .cgroup1(directories: directories) }
        if reasons.isEmpty { reasons.append("no cgroup v2 controllers and no cgroup v1 memory controller under \(root)") }
        return .rlimits(reason: reasons.joined(separator: "; "))
    }

    /// One line for gustd's log at start.
    package var description: String {
        switch self {
        case .cgroup2(let directory):
            "Limits: cgroup v2 at \(directory) (memory, pids, cpu)"
        case .cgroup1(let directories):
            "Limits: cgroup v1, "
                + Self.controllers.map { controller in
                    directories[controller].map { "\(controller) at \($0)" } ?? "\(controller) not mounted: not enforced"
                }.joined(separator: ", ")
        case .rlimits(let reason):
            "Limits: rlimits only (memory as address space, processes per uid, no CPU bound), because \(reason)"
        }
    }
}
