#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustCore

/// The gustd that `gust dev` runs over its dev home: the same executable a
/// server runs, serving only the dev app at the root of 127.0.0.1:PORT, as the
/// developer's user, unsandboxed and unconfined. Started in a process group of
/// its own (a Ctrl-C reaches `gust dev`, which then stops it with one SIGTERM)
/// and stopped by its PID.
final class DevGustd {
    let pid: pid_t
    let workspace: DevWorkspace

    init(_ workspace: DevWorkspace, port: Int, installation: Installation) throws {
        self.workspace = workspace
        let executable = installation.executable("gustd").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw GustError("Cannot find gustd beside gust (\(executable)); `gust dev` runs it.", hint: "Install Gust's three executables together.")
        }
        try? FileManager.default.removeItem(at: workspace.addressFile)
        let arguments = [
            executable, "--home", workspace.home.path, "--http", "127.0.0.1:\(port)", "--only-app", workspace.app.rawValue,
            "--sandbox", "none", "--no-limits", "--access-log", workspace.home.root.appendingPathComponent("access.log").path,
        ]
        let log = open(workspace.gustdLog.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw GustError("Cannot write \(workspace.gustdLog.path): \(String(cString: strerror(errno))).") }
        defer { close(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        _ = gust_spawn_addclosefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment = ProcessInfo.processInfo.environment
        environment["GUST_HOME"] = nil
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw GustError("Cannot start \(executable): \(String(cString: strerror(status))).") }
        pid = child
    }

    /// The port gustd listens on, once it does (bounded); throws with its log if it stopped.
    func waitUntilServing(within seconds: Double = 30) throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let exit = exitStatus() {
                throw GustError("gustd stopped as it started (\(exit)):\n\(logTail())")
            }
            if let text = try? String(contentsOf: workspace.addressFile, encoding: .utf8), let address = ListenAddressText(text),
                AdminClient(home: workspace.home, readTimeout: .seconds(5)).isRunning
            {
                return address.port
            }
            usleep(10_000)
        }
        throw GustError("gustd did not start within \(Int(seconds)) s:\n\(logTail())")
    }

    /// Whether it has exited (reaped now if so), and how.
    func exitStatus() -> String? {
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        guard reaped == pid else { return reaped < 0 ? "gone" : nil }
        return (status & 0x7f) == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
    }

    /// SIGTERM: gustd stops every instance and exits; SIGKILL if it has not within `grace` seconds.
    func stop(grace: Double = 25) {
        guard exitStatus() == nil else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            if exitStatus() != nil { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: workspace.gustdLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).map { "       " + $0 }.joined(separator: "\n")
    }
}
