#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What gustd and a zygote exchange, apart from the socket that carries it
/// (docs/runtime-protocol.md, "Zygotes"): the fork request and its
/// descriptors, and how a pidfd the zygote sent names a process on the host.
/// Pure functions, so unit tests check the encoding without a zygote.
enum ZygoteWire {
    /// A fork request: its JSON, and the descriptors sent with it in this order: the fork's stdout
    /// and stderr, then one `cgroup.procs` file per cgroup it joins (`cgroup_files` says how many),
    /// which it writes itself into before anything else runs.
    static func forkRequest(
        id: String, socketPath: String, environment: [String: String], internalToken: String,
        stdout: Int32, stderr: Int32, cgroupFiles: [Int32]
    ) throws -> (body: Data, descriptors: [Int32]) {
        let request: [String: Any] = [
            "fork": id, "socket": socketPath, "environment": environment, "internal_token": internalToken,
            "cgroup_files": cgroupFiles.count,
        ]
        return (try JSONSerialization.data(withJSONObject: request, options: .sortedKeys), [stdout, stderr] + cgroupFiles)
    }

    /// The pid of the process `pidfd` names, in gustd's PID namespace (the `Pid:` line of its
    /// fdinfo): a zygote in a sandbox numbers its forks in the sandbox's namespace. Nil if the
    /// process has exited (the kernel says -1) or the descriptor is no pidfd.
    static func hostPID(ofPidfd pidfd: Int32) -> pid_t? {
        guard let text = try? String(contentsOfFile: "/proc/self/fdinfo/\(pidfd)", encoding: .utf8) else { return nil }
        return pid(inFdinfo: text)
    }

    /// The `Pid:` field of a pidfd's fdinfo; nil when absent or not a live pid (0 or -1).
    static func pid(inFdinfo text: String) -> pid_t? {
        for line in text.split(separator: "\n") where line.hasPrefix("Pid:") {
            guard let pid = pid_t(line.dropFirst(4).trimmingCharacters(in: .whitespaces)), pid > 0 else { return nil }
            return pid
        }
        return nil
    }
}
