import CGustSystem
#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import Synchronization

/// A program a test runs (git, ssh, the built gust binaries, gustd), started the way gustd starts
/// instances: `gust_spawn` (fork and exec). Never Foundation's `Process`, whose `run()` walks
/// /proc/self/fd reading past `d_name` (swiftlang/swift-corelibs-foundation#5472) and crashed
/// the test process at random, and whose SIGCHLD monitor could miss an exit.
///
/// The child gets default signal handlers and an empty signal mask, a session (so a process
/// group) of its own, stdin, stdout and stderr as given, and no other descriptor of the test
/// process's. Only this object reaps it (`waitpid` on its pid, under a lock), and a signal is
/// only ever sent before it was reaped: never to a pid the kernel gave to another process since.
public final class ChildProcess: Sendable {
    /// How the child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)

        /// The exit code, or 128 + the signal's number, as a shell reports it.
        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            }
        }
    }

    public let pid: Int32
    /// How it ended, once reaped.
    private let ending = Mutex<Termination?>(nil)

    /// Starts `executable` (a path, or a name looked up on PATH) with `arguments`.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil: this process's.
    ///   - directory: the child's working directory; nil: this process's.
    ///   - standardInput, standardOutput, standardError: descriptors the child gets as 0, 1 and 2
    ///     (the caller keeps its own and closes them); nil: /dev/null.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil,
        standardInput: Int32? = nil, standardOutput: Int32? = nil, standardError: Int32? = nil
    ) throws {
        let path = executable.contains("/") ? executable : try Command.which(executable)
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw ChildProcessFailure(command: path, step: "open /dev/null", error: errno) }
        defer { close(null) }

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { variables in variables.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        let workingDirectory = directory.map { strdup($0.path) }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
            workingDirectory.map { free($0) }
        }
        var child: pid_t = 0
        var step: Int32 = 0
        let result = path.withCString { cPath in
            argv.withUnsafeBufferPointer { argv in
                (envp ?? []).withUnsafeBufferPointer { ownEnvironment in
                    var request = gust_spawn_request(
                        path: cPath, argv: argv.baseAddress, envp: envp == nil ? UnsafePointer(environ) : ownEnvironment.baseAddress,
                        directory: workingDirectory.flatMap { UnsafePointer($0) },
                        stdin_fd: standardInput ?? null, stdout_fd: standardOutput ?? null, stderr_fd: standardError ?? null,
                        cgroup_procs: nil, address_space_limit: 0, process_limit: 0, passing: nil, passing_count: 0,
                        parent_death_signal: 0, listen_pid_entry: nil, file_mode_mask: -1
                    )
                    return gust_spawn(&request, &child, &step)
                }
            }
        }
        guard result == 0 else {
            let steps: [Int32: String] = [Int32(GUST_SPAWN_STEP_SETUP): "fork or set-up", Int32(GUST_SPAWN_STEP_EXEC): "exec"]
            throw ChildProcessFailure(command: ([path] + arguments).joined(separator: " "), step: steps[step] ?? "step \(step)", error: result)
        }
        pid = child
    }

    /// How it ended, reaping it if it has; nil while it runs.
    public var termination: Termination? {
        ending.withLock { ending in
            if ending == nil {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid {
                    let signal = status & 0x7f
                    ending = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
                } else if reaped == -1 && errno == ECHILD {
                    ending = .exited(-1)  // reaped by something else: gone, its status unknown
                }
            }
            return ending
        }
    }

    public var isRunning: Bool { termination == nil }

    /// Waits up to `seconds` for the child to end; nil if it still runs then.
    public func wait(upTo seconds: Double) -> Termination? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            if let termination { return termination }
            if ContinuousClock.now >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Sends `signal` unless the child has been reaped already.
    public func send(_ signal: Int32) {
        ending.withLock { ending in
            if ending == nil { _ = kill(pid, signal) }
        }
    }

    /// SIGTERM, up to `seconds` for the child to end, then SIGKILL and up to 10 s more.
    /// How it ended; nil if not even SIGKILL ended it in time.
    @discardableResult
    public func stop(within seconds: Double) -> Termination? {
        if let termination { return termination }
        send(SIGTERM)
        if let ended = wait(upTo: seconds) { return ended }
        send(SIGKILL)
        return wait(upTo: 10)
    }

    /// A pipe whose two ends close on exec (a child gets one only as 0, 1 or 2).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard gust_pipe_cloexec(&ends) == 0 else { throw ChildProcessFailure(command: "pipe", step: "pipe2", error: errno) }
        return (ends[0], ends[1])
    }
}

/// Why a child could not be started (the step and its errno), so a test failure says it rather than a bare code.
public struct ChildProcessFailure: Error, CustomStringConvertible {
    public var command: String
    public var step: String
    public var error: Int32
    public var description: String { "\(command) could not be started: \(step) failed (\(String(cString: strerror(error))))" }
}
