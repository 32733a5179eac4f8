import Foundation

/// This machine's processes as `/proc` lists them, for tests that look for
/// what a push started (a build's `sleep`, a hook) by its command line.
public enum ProcessTable {
    /// The pids whose argument vector (`/proc/PID/cmdline`, split at its NULs) `matches`.
    public static func processes(where matches: ([String]) -> Bool) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            return matches(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }) ? pid : nil
        }
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
