#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustCore
import Logging
import ServiceLifecycle
import UnixSignals

/// An upgrade of gustd that drops no call (`kill -USR2 PID`, docs/operations.md):
/// gustd starts the gustd binary now at its own path (a new version, if one was
/// installed there) with its own arguments, handing it every listening socket
/// (systemd's socket-activation protocol, as `InheritedSockets` reads it) and
/// one end of a pipe. Once the new process says on that pipe that it is up, this
/// one stops accepting, answers the requests in progress, drains and exits; the
/// new one waits for it (gustd's lock), starts the live releases and accepts.
/// Connections that arrive in between wait in the sockets' queue. If the new
/// process fails before it is up, this one keeps serving and says why.
struct GustdHandover: Service {
    let listeners: Listeners
    /// gustd's executable as it was at start (`/proc/self/exe`): the path a new version is installed at.
    let executable: String
    let arguments: [String]
    let logger: Logger

    /// The path of the running executable (readlink of /proc/self/exe), read at start.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sigusr2).cancelOnGracefulShutdown() {
            // systemd would take the old gustd's exit for the service's and stop the new one with it.
            if ProcessInfo.processInfo.environment["INVOCATION_ID"] != nil {
                logger.error("gustd runs under systemd and does not hand over on SIGUSR2: upgrade it with `systemctl restart gustd` (its sockets are systemd's, gustd.socket)")
                continue
            }
            do {
                let pid = try await startSuccessor()
                logger.notice("gustd hands over to \(executable) (PID \(pid)): this one stops accepting, finishes its requests and exits")
                listeners.outliveThisGustd = true
                return  // the group shuts down gracefully (`.gracefullyShutdownGroup`)
            } catch {
                logger.error("gustd did not hand over, and keeps serving: \(error)")
            }
        }
    }

    /// Starts the new gustd and waits (up to 30 s) until it says it is up, or dies.
    private func startSuccessor() async throws -> pid_t {
        var ready: [Int32] = [-1, -1]
        guard gust_pipe_cloexec(&ready) == 0 else { throw GustError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
        defer { close(ready[0]) }
        let sockets = listeners.sockets
        let names = sockets.map(\.name) + [Self.readyName]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LISTEN_") }
        environment["LISTEN_FDS"] = "\(names.count)"
        environment["LISTEN_FDNAMES"] = names.joined(separator: ":")
        let listenPID = strdup("LISTEN_PID=" + String(repeating: " ", count: 20))
        let argv = ([executable] + arguments.dropFirst()).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [listenPID, nil]
        defer { (argv + envp).forEach { free($0) } }
        let passing = sockets.map(\.descriptor) + [ready[1]]
        var child: pid_t = 0
        var step: Int32 = 0
        let result = executable.withCString { path in
            argv.withUnsafeBufferPointer { argv in
                envp.withUnsafeBufferPointer { envp in
                    passing.withUnsafeBufferPointer { passing in
                        var request = gust_spawn_request(
                            path: path, argv: argv.baseAddress, envp: envp.baseAddress, directory: nil,
                            stdin_fd: -1, stdout_fd: 1, stderr_fd: 2, cgroup_procs: nil, address_space_limit: 0, process_limit: 0,
                            passing: passing.baseAddress, passing_count: Int32(passing.count), parent_death_signal: 0,
                            listen_pid_entry: listenPID, file_mode_mask: -1
                        )
                        return gust_spawn(&request, &child, &step)
                    }
                }
            }
        }
        close(ready[1])
        guard result == 0 else { throw GustError("Cannot start \(executable): \(String(cString: strerror(result)))") }
        // The new gustd writes one byte once it has its arguments and sockets; end of file means it died.
        for _ in 0..<600 {
            var poller = pollfd(fd: ready[0], events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                var byte: UInt8 = 0
                guard read(ready[0], &byte, 1) == 1 else {
                    throw GustError("The new gustd (PID \(child)) exited before it was up; see its error above.")
                }
                return child
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(child, SIGKILL)
        throw GustError("The new gustd (PID \(child)) did not say it was up within 30 s; it was killed.")
    }

    /// The name of the pipe among the descriptors passed: the new gustd writes a byte on it once up.
    static let readyName = "gustd-ready"

    /// In the new gustd: tells the old one it is up.
    static func sayReady(_ inherited: InheritedSockets) -> Bool {
        guard let fd = inherited.take(readyName) else { return false }
        var byte: UInt8 = 1
        _ = write(fd, &byte, 1)
        close(fd)
        return true
    }
}
