#if canImport(Glibc)
import Glibc
#endif
import Foundation
package import GustCore
import Synchronization

/// The cgroup of one instance (`ROOT/APP/ID` under each hierarchy the
/// mechanism uses), with the app's limits written into it before the
/// instance's process joins it (between fork and exec, `SpawnConfinement`).
/// When the process has exited, `finish()` reads whether the kernel killed it
/// for memory, stops whatever it left behind in the cgroup, and removes it.
///
/// Where no cgroup can be used (`LimitMechanism.rlimits`), there is no
/// directory: memory and processes become rlimits of the process.
package final class InstanceCgroup: Sendable {
    package let limits: AppLimits
    package let mechanism: LimitMechanism
    /// The instance's directory under each hierarchy (empty with rlimits).
    package let directories: [String]
    private let outOfMemory = Atomic(false)
    private let finished = Atomic(false)

    /// Makes the instance's cgroup and writes its limits; throws if a limit cannot be set.
    package init(mechanism: LimitMechanism, app: AppName, id: String, limits: AppLimits) throws {
        self.limits = limits
        self.mechanism = mechanism
        var made: [String] = []
        do {
            switch mechanism {
            case .cgroup2(let root):
                let directory = try Self.make(root, app: app, id: id, subtree: "+memory +pids +cpu")
                made.append(directory)
                if let memory = limits.memory {
                    try Self.write("\(memory)", to: directory, "memory.max")
                    try? Self.write("0", to: directory, "memory.swap.max")
                }
                if let pids = limits.pids { try Self.write("\(pids)", to: directory, "pids.max") }
                if let cpu = limits.cpuMillis { try Self.write("\(cpu * Self.period / 1000) \(Self.period)", to: directory, "cpu.max") }
            case .cgroup1(let roots):
                if let root = roots["memory"] {
                    let directory = try Self.make(root, app: app, id: id)
                    made.append(directory)
                    if let memory = limits.memory {
                        try Self.write("\(memory)", to: directory, "memory.limit_in_bytes")
                        // RAM and swap together, where the kernel accounts swap: no escape into swap.
                        if FileManager.default.fileExists(atPath: directory + "/memory.memsw.limit_in_bytes") {
                            try Self.write("\(memory)", to: directory, "memory.memsw.limit_in_bytes")
                        }
                    }
                }
                if let root = roots["pids"] {
                    let directory = try Self.make(root, app: app, id: id)
                    made.append(directory)
                    if let pids = limits.pids { try Self.write("\(pids)", to: directory, "pids.max") }
                }
                if let root = roots["cpu"] {
                    let directory = try Self.make(root, app: app, id: id)
                    made.append(directory)
                    if let cpu = limits.cpuMillis {
                        try Self.write("\(Self.period)", to: directory, "cpu.cfs_period_us")
                        try Self.write("\(cpu * Self.period / 1000)", to: directory, "cpu.cfs_quota_us")
                    }
                }
            case .rlimits:
                break
            }
        } catch {
            made.forEach { rmdir($0) }
            throw error
        }
        directories = made
    }

    /// CFS period: 100 ms, the kernel's default.
    package static let period = 100_000

    /// Whether the kernel's OOM killer killed a process of the instance; known once `finish()` ran.
    package var wasOutOfMemory: Bool { outOfMemory.load(ordering: .acquiring) }

    /// Whether the kernel killed a process of it for memory, asked once the process has exited: its
    /// exit handler may not have run `finish` yet (which records the kill, then removes the
    /// directories). The count is read first: read after the removal it is 0, but then the kill
    /// was recorded before, and `wasOutOfMemory` (read second) says so.
    package var sawOutOfMemory: Bool {
        let kills = oomKills
        return kills > 0 || wasOutOfMemory
    }

    /// `out of memory (64 MB limit)`, for the caller and the app's log.
    package var outOfMemoryText: String {
        "out of memory (\(limits.memory.map(LimitSize.spoken) ?? "no") limit)"
    }

    /// The OOM kills counted in the instance's memory cgroup now.
    package var oomKills: Int {
        for directory in directories {
            for file in ["memory.oom_control", "memory.events"] {
                guard let text = try? String(contentsOfFile: directory + "/" + file, encoding: .utf8) else { continue }
                for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
                    return Int(line.dropFirst("oom_kill ".count)) ?? 0
                }
            }
        }
        return 0
    }

    /// The memory its processes use now: v1 the RSS of `memory.stat` (`total_rss`: anonymous
    /// memory, what the app's own pages are, without the page cache of files it read), v2
    /// `memory.current`; nil without a memory cgroup.
    package var memoryBytes: Int? {
        for directory in directories {
            if let text = try? String(contentsOfFile: directory + "/memory.stat", encoding: .utf8),
                let rss = Self.field("total_rss", in: text)
            {
                return rss
            }
            if let text = try? String(contentsOfFile: directory + "/memory.current", encoding: .utf8),
                let current = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return current
            }
        }
        return nil
    }

    /// A `NAME VALUE` line's value (`memory.stat`, `memory.events`).
    package static func field(_ name: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// How often a fork or clone was refused at the pids limit (`pids.events`, v1 and v2), now.
    package var pidsLimitHits: Int {
        for directory in directories {
            guard let text = try? String(contentsOfFile: directory + "/pids.events", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("max ") {
                return Int(line.dropFirst("max ".count)) ?? 0
            }
        }
        return 0
    }

    /// The instance's main process has exited: note an OOM kill, kill what is left in the cgroup, remove it.
    package func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if oomKills > 0 { outOfMemory.store(true, ordering: .releasing) }
        for directory in directories {
            for _ in 0..<50 {
                let pids = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8))?
                    .split(separator: "\n").compactMap { pid_t($0) } ?? []
                pids.forEach { kill($0, SIGKILL) }
                if rmdir(directory) == 0 || errno == ENOENT { break }
                usleep(10_000)  // killed processes leave the cgroup once the kernel has reaped them
            }
        }
        // The app's directory goes when its last instance's does (another start may be making one: then it stays).
        for directory in directories { rmdir((directory as NSString).deletingLastPathComponent) }
    }

    /// The start of a build's cgroup name.
    package static let buildPrefix = "build-"

    /// Removes the instance and build cgroups a previous gustd left (killed, it could not): every
    /// `APP/ID` under gustd's root, killing what is still in one. Only at start, before any instance
    /// or build starts.
    package static func sweep(_ mechanism: LimitMechanism) {
        let roots: [String]
        switch mechanism {
        case .cgroup2(let directory): roots = [directory]
        case .cgroup1(let directories): roots = Array(directories.values)
        case .rlimits: roots = []
        }
        let fm = FileManager.default
        for root in roots {
            for app in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where (try? AppName(app)) != nil {
                let appDirectory = root + "/" + app
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: appDirectory, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
                for id in (try? fm.contentsOfDirectory(atPath: appDirectory)) ?? [] where !id.contains(".") {
                    let directory = appDirectory + "/" + id
                    for _ in 0..<50 {
                        let pids = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8))?
                            .split(separator: "\n").compactMap { pid_t($0) } ?? []
                        pids.forEach { kill($0, SIGKILL) }
                        if rmdir(directory) == 0 || errno != EBUSY { break }
                        usleep(10_000)
                    }
                }
                rmdir(appDirectory)
            }
        }
    }

    private static func make(_ root: String, app: AppName, id: String, subtree: String? = nil) throws -> String {
        let appDirectory = root + "/" + app.rawValue
        let directory = appDirectory + "/" + id
        // The app's directory may vanish between the two mkdirs (its last instance's `finish`): try again then.
        for _ in 0..<3 {
            if mkdir(appDirectory, 0o755) != 0 && errno != EEXIST { break }
            if let subtree { try? write(subtree, to: appDirectory, "cgroup.subtree_control") }
            if mkdir(directory, 0o755) == 0 { return directory }
            if errno != ENOENT { break }
        }
        throw GustError("Cannot make the cgroup \(directory): \(String(cString: strerror(errno)))")
    }

    private static func write(_ value: String, to directory: String, _ file: String) throws {
        let path = directory + "/" + file
        switch CgroupFile.write(value, to: path) {
        case nil: return
        case .open(let reason): throw GustError("Cannot set \(path): \(reason)")
        case .write(let reason): throw GustError("Cannot write \(value) to \(path): \(reason)")
        }
    }
}
