import Foundation

/// This machine's processes as `/proc` lists them, for tests that look for
/// what a push started (a build's `sleep`, a hook) by its command line, its
/// uid or its ancestors.
public enum ProcessTable {
    /// The pids whose argument vector (`/proc/PID/cmdline`, split at its NULs) `matches`.
    public static func processes(where matches: ([String]) -> Bool) -> [Int32] {
        pids.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return matches(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        }
    }

    /// The pids of every process whose real uid (the first of `/proc/PID/status`'s `Uid:`) is `uid`.
    public static func processes(ownedBy uid: Int) -> [Int32] {
        pids.filter { pid in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })?.split(separator: "\t").dropFirst().first
                == Substring(String(uid))
        }
    }

    /// `pid`'s parent and process group, from `/proc/PID/stat` (after its name: state, parent, group).
    public static func parentAndGroup(of pid: Int32) -> (parent: Int32, group: Int32)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let parent = Int32(fields[1]), let group = Int32(fields[2]) else { return nil }
        return (parent, group)
    }

    /// `pid`'s parent, its parent's… up to init (left out), as the host numbers them.
    public static func ancestors(of pid: Int32) -> [Int32] {
        var chain: [Int32] = []
        var current = pid
        while chain.count < 64, let parent = parentAndGroup(of: current)?.parent, parent > 1 {
            chain.append(parent)
            current = parent
        }
        return chain
    }

    /// A process's name (`/proc/PID/comm`); empty once it has gone.
    public static func name(of pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static var pids: [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }

    /// The first process whose argv[0] is `name`, waited for up to `seconds` (polled every 0.1 s).
    public static func waitForProcess(named name: String, seconds: Int) -> Int32? {
        for _ in 0..<(seconds * 10) {
            if let pid = processes(where: { $0.first == name }).first { return pid }
            usleep(100_000)
        }
        return nil
    }
}
