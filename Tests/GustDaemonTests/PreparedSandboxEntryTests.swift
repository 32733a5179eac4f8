#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
@testable import GustBuild
import Testing

/// `gust_spawn_entering`: a program started in a prepared sandbox (a holder's namespaces, made once
/// by bwrap) instead of a sandbox bwrap builds for it (docs/benchmarks.md, "Entering a prepared
/// sandbox"). Not used by gustd yet; these pin what it gives: the holder's user namespace, a mount
/// namespace of the start's own with the release read-only and nothing else of the host, no
/// capability, the seccomp filter, the program as the caller's own child, and nothing run when a
/// step fails. Without app uids (as CI runs), like bwrap's `--uid 1000`.
@Suite(.enabled(if: Sandbox.unavailableReason() == nil, "bubblewrap cannot make namespaces here"))
struct PreparedSandboxEntryTests {
    /// The holder: bwrap with the sandbox's namespaces and mount points, running `sleep infinity`.
    final class Holder {
        let bwrap: pid_t
        /// The process whose namespaces a start enters (bwrap's last child).
        let process: pid_t

        init() throws {
            var argv = [
                Sandbox.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--hostname", "gust", "--uid", "1000", "--gid", "1000", "--disable-userns",
                "--ro-bind", "/usr", "/usr",
            ]
            for link in ["bin", "sbin", "lib", "lib64"] {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/" + link) {
                    argv += ["--symlink", target, "/" + link]
                }
            }
            argv += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/run", "--proc", "/proc", "--dev", "/dev"]
            argv += ["--perms", "0755", "--dir", "/app", "--perms", "0755", "--dir", "/run/gust", "--perms", "1777", "--dir", "/tmp"]
            argv += ["--remount-ro", "/", "--", "/usr/bin/sleep", "infinity"]
            let words = argv.map { strdup($0) } + [nil]
            defer { words.forEach { free($0) } }
            var pid: pid_t = 0
            guard posix_spawn(&pid, argv[0], nil, nil, words, environ) == 0 else { throw SandboxError("cannot start bwrap") }
            bwrap = pid
            var found: pid_t?
            for _ in 0..<2_000 where found == nil {
                if let child = Self.child(of: pid).flatMap(Self.child(of:)),
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child)/exe")) == "/usr/bin/sleep"
                {
                    found = child
                }
                usleep(1_000)
            }
            guard let found else {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                throw SandboxError("the holder did not start within 2 s")
            }
            process = found
        }

        static func child(of pid: pid_t) -> pid_t? {
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8))?.split(separator: " ").first.flatMap { pid_t($0) }
        }

        func namespace(_ name: String) -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process)/ns/\(name)")) ?? "?"
        }

        func stop() {
            kill(bwrap, SIGKILL)
            var status: Int32 = 0
            while waitpid(bwrap, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// What a start was given, and what it printed into its socket directory.
    struct Start {
        var result: Int32
        var step: Int32
        var status: Int32?
        var output: String
    }

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prepared-\(UUID().uuidString.prefix(8))")
        for name in ["app", "run"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try "hello\n".write(to: directory.appendingPathComponent("app/greeting"), atomically: true, encoding: .utf8)
        return directory
    }

    /// Runs `script` (sh) in `holder`'s prepared sandbox, the release `release` at /app, `run` at /run/gust.
    func start(_ script: String, in holder: Holder, release: String, run: String, freshPID: Bool, seccomp: [UInt8]? = nil) throws -> Start {
        let names = ["user", "mnt", "pid", "ipc", "uts"]
        let fds = Dictionary(uniqueKeysWithValues: names.map { ($0, Glibc.open("/proc/\(holder.process)/ns/\($0)", O_RDONLY | O_CLOEXEC)) })
        let owner = ioctl(fds["mnt"]!, 0xb701)  // NS_GET_USERNS: the user namespace that owns the holder's mounts
        defer { (Array(fds.values) + [owner]).forEach { close($0) } }
        let nested = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(owner)")) != holder.namespace("user")
        let output = run + "/output"
        let words: [String] = ["/bin/sh", "-c", "exec > /run/gust/output 2>&1\n" + script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        let paths: [UnsafeMutablePointer<CChar>?] = [strdup("/app"), strdup(release), strdup(run)]
        defer { (argv + envp + paths).forEach { free($0) } }
        let null = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(null) }
        let filter = seccomp ?? []
        var pid: pid_t = 0
        var step: Int32 = 0
        let result = filter.withUnsafeBytes { program in
            argv.withUnsafeBufferPointer { argv in
                envp.withUnsafeBufferPointer { envp in
                    var request = gust_spawn_request(
                        path: argv[0], argv: argv.baseAddress, envp: envp.baseAddress, directory: paths[0], stdin_fd: -1,
                        stdout_fd: null, stderr_fd: null, cgroup_procs: nil, address_space_limit: 0, process_limit: 0, passing: nil,
                        passing_count: 0, parent_death_signal: SIGKILL, listen_pid_entry: nil, file_mode_mask: -1
                    )
                    var entry = gust_sandbox_entry(
                        owner_userns_fd: owner, userns_fd: nested ? fds["user"]! : -1, mnt_fd: fds["mnt"]!,
                        pid_fd: freshPID ? -1 : fds["pid"]!, ipc_fd: freshPID ? -1 : fds["ipc"]!, uts_fd: freshPID ? -1 : fds["uts"]!,
                        release: paths[1], sockets: paths[2], sockets_writable: 1, tmp_bytes: 1 << 20, uid: 1000, gid: 1000, set_groups: 0,
                        seccomp: filter.isEmpty ? nil : program.baseAddress, seccomp_length: Int32(filter.count)
                    )
                    return gust_spawn_entering(&request, &entry, &pid, &step)
                }
            }
        }
        var status: Int32?
        if result == 0 {
            var waited: Int32 = 0
            while waitpid(pid, &waited, 0) < 0 && errno == EINTR {}
            status = waited
        }
        return Start(result: result, step: step, status: status, output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    func line(_ output: String, _ key: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(key + " ") }.map { String($0.dropFirst(key.count + 1)) }
    }

    @Test func aStartJoinsTheHoldersNamespacesInAMountNamespaceOfItsOwnWithNothingOfTheHost() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let holder = try Holder()
        defer { holder.stop() }
        let script = """
            echo user $(readlink /proc/self/ns/user)
            echo mnt $(readlink /proc/self/ns/mnt)
            echo pid $(readlink /proc/self/ns/pid)
            echo uid $(id -u)
            echo caps $(grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status | cut -f2 | sort -u)
            echo greeting $(cat /app/greeting)
            echo root $(ls / | tr '\\n' ' ')
            touch /app/written 2>/dev/null && echo app writable || echo app read-only
            echo tmp $(df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2)
            echo pwd $(pwd)
            """
        let start = try start(script, in: holder, release: directory.path + "/app", run: directory.path + "/run", freshPID: false)
        #expect(start.result == 0 && start.status == 0, "\(start)")
        let output = start.output
        #expect(line(output, "user") == holder.namespace("user"), "\(output)")
        #expect(line(output, "pid") == holder.namespace("pid"), "\(output)")
        #expect(line(output, "mnt") != nil && line(output, "mnt") != holder.namespace("mnt"), "\(output)")
        #expect(line(output, "uid") == "1000")
        #expect(line(output, "caps") == "0000000000000000", "no capability in any set: \(output)")
        #expect(line(output, "greeting") == "hello")
        let root = Set((line(output, "root") ?? "").split(separator: " ").map(String.init))
        let system: Set = ["app", "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp", "usr"]
        #expect(root.contains("app") && root.isSubset(of: system), "only the sandbox's own entries at /: \(output)")
        #expect(output.contains("app read-only"))
        #expect(line(output, "tmp") == "1024", "its own /tmp of the size asked: \(output)")
        #expect(line(output, "pwd") == "/app")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/app/written"))
        // The start's mounts stayed in its own namespace: the holder's has no /app or /run/gust mount.
        let mounts = try String(contentsOfFile: "/proc/\(holder.process)/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(" /app ") && !mounts.contains(" /run/gust "), "\(mounts)")
        #expect(!mounts.contains(directory.path), "no host path of the start in the holder: \(mounts)")
    }

    @Test func aStartWithFreshPIDNamespacesIsPIDOneOfItsOwnAndLoadsTheSeccompFilter() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let holder = try Holder()
        defer { holder.stop() }
        let script = """
            echo user $(readlink /proc/self/ns/user)
            echo pid $(readlink /proc/self/ns/pid)
            echo self $$
            echo hostname $(cat /proc/sys/kernel/hostname)
            unshare --user true 2>/dev/null && echo nested allowed || echo nested refused
            echo seccomp $(grep '^Seccomp:' /proc/self/status | cut -f2)
            """
        // x86-64 has a filter (SandboxSeccomp); elsewhere there is none to load.
        guard let filter = SandboxSeccomp.program else { return }
        let start = try start(script, in: holder, release: directory.path + "/app", run: directory.path + "/run", freshPID: true, seccomp: filter)
        #expect(start.result == 0 && start.status == 0, "\(start)")
        let output = start.output
        #expect(line(output, "user") == holder.namespace("user"), "\(output)")
        #expect(line(output, "pid") != nil && line(output, "pid") != holder.namespace("pid"), "\(output)")
        #expect(line(output, "self") == "1", "the program is PID 1 of its own namespace: \(output)")
        #expect(line(output, "hostname") == "gust")
        #expect(output.contains("nested refused"), "\(output)")
        #expect(line(output, "seccomp") == "2", "a filter is loaded: \(output)")
    }

    @Test func aStepThatFailsIsTheStartsErrorAndNothingRuns() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let holder = try Holder()
        defer { holder.stop() }
        let start = try start(
            "echo ran", in: holder, release: directory.path + "/no-such-release", run: directory.path + "/run", freshPID: true
        )
        #expect(start.result == ENOENT, "\(start)")
        #expect(start.step == Int32(GUST_SPAWN_STEP_SANDBOX))
        #expect(start.output.isEmpty, "the program never ran")
    }
}
