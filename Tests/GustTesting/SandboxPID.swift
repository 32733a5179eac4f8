import Foundation

/// A process of a sandboxed instance as the host numbers it. Code in a sandbox
/// sees its own PID namespace (`os.getpid()` is 2 or so); a test that signals or
/// inspects that process from outside finds the host pid whose `NSpid` line ends
/// with it, among the descendants of gustd's child (bwrap) it recorded.
/// Unsandboxed, the pid is the host's already and comes back as it is.
/// `host(runningAs:under:)` finds an instance by the host uid it runs as, below the same roots.
public enum SandboxPID {
    public static func host(of inside: Int32, under roots: [Int32]) -> Int32? {
        var candidates: [Int32] = []
        for (pid, status) in processes() {
            guard let levels = numbers("NSpid:", in: status) else { continue }
            if levels.count == 1, pid == inside, roots.contains(pid) || descends(pid, from: roots) { return pid }
            // Under a sandbox's wrapper, or recorded itself (a fork of a zygote in its sandbox).
            if levels.count > 1, levels.last == inside, roots.contains(pid) || descends(pid, from: roots) { candidates.append(pid) }
        }
        return candidates.first ?? (roots.isEmpty ? inside : nil)
    }

    /// The first process (in /proc's order) among `roots` and their descendants whose real uid, as the
    /// host numbers it, is `uid`: an app's sandboxed instance, found from outside. Only below `roots`
    /// (the pids this run's gustd recorded): another run of the same tests has the same test user and
    /// uid range, and its instances are no business of this one.
    public static func host(runningAs uid: Int, under roots: [Int32]) -> Int32? {
        processes().first { pid, status in
            numbers("Uid:", in: status)?.first == Int32(uid) && (roots.contains(pid) || descends(pid, from: roots))
        }?.pid
    }

    /// Every process's pid and `/proc/PID/status`, in /proc's order.
    private static func processes() -> [(pid: Int32, status: String)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name in
            guard let pid = Int32(name), let status = try? String(contentsOfFile: "/proc/\(name)/status", encoding: .utf8) else { return nil }
            return (pid, status)
        }
    }

    /// The numbers of a status line (`Uid:`, `NSpid:`), or nil where there is no such line.
    private static func numbers(_ key: String, in status: String) -> [Int32]? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { Int32($0) }
    }

    /// Whether `pid` has one of `roots` among its ancestors.
    public static func descends(_ pid: Int32, from roots: [Int32]) -> Bool {
        var current = pid
        for _ in 0..<64 {
            guard let stat = try? String(contentsOfFile: "/proc/\(current)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, let parent = Int32(fields[1]), parent > 1 else { return false }
            if roots.contains(parent) { return true }
            current = parent
        }
        return false
    }
}
