#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import Synchronization

/// One OS process of an instance: spawned in its own session (so that its
/// whole process group can be signalled), stdin from /dev/null, stdout and
/// stderr merged into one pipe that a reader thread splits into lines.
///
/// Blocking reads and `waitpid` run on Dispatch threads, never on Swift's
/// cooperative pool, which has one thread per core.
final class InstanceProcess: Sendable {
    let pid: pid_t
    /// `/proc/PID/stat` field 22: with the pid, it tells this process from a later one that reuses the pid.
    let startTime: UInt64
    private let exitState = Mutex<ExitState>(ExitState())

    private struct ExitState {
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }

    /// Starts `executable` with exactly `environment`.
    /// - Parameters:
    ///   - onOutput: called from a reader thread with each batch of complete lines.
    ///   - onExit: called once with the wait status after the output has been read to its end.
    init(
        executable: String, arguments: [String] = [], environment: [String: String], directory: String,
        onOutput: @escaping @Sendable ([String]) -> Void, onExit: @escaping @Sendable (Int32) -> Void
    ) throws {
        var fds: [Int32] = [0, 0]
        guard gust_pipe_cloexec(&fds) == 0 else { throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        gust_spawn_addchdir(&actions, directory)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unmasked = sigset_t()
        sigemptyset(&unmasked)
        posix_spawnattr_setsigmask(&attributes, &unmasked)
        posix_spawnattr_setflags(&attributes, gust_spawn_setsid_flag() | Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        close(writeEnd)
        guard result == 0 else {
            close(readEnd)
            throw SpawnError("Cannot start \(executable): \(String(cString: strerror(result)))")
        }
        let spawned = child
        pid = spawned
        startTime = Self.startTime(of: spawned) ?? 0

        let reaper = DispatchGroup()
        reaper.enter()
        DispatchQueue.global().async {
            Self.readLines(from: readEnd, onOutput)
            close(readEnd)
            reaper.leave()
        }
        DispatchQueue.global().async {
            var status: Int32 = 0
            while waitpid(spawned, &status, 0) < 0 && errno == EINTR {}
            // The output is complete once the pipe is closed by every holder; wait a
            // little for it so that an exit report follows the last line, but not
            // forever: a grandchild may have inherited the pipe.
            _ = reaper.wait(timeout: .now() + 2)
            let waiters = self.exitState.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            onExit(status)
            waiters.forEach { $0.resume(returning: status) }
        }
    }

    var hasExited: Bool { exitState.withLock { $0.status != nil } }

    /// The wait status, once the process has exited.
    func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status: Int32? = exitState.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Signals the whole process group (the instance is a session leader).
    func signal(_ signal: Int32) {
        guard !hasExited else { return }
        kill(-pid, signal)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns when the process has exited.
    func stop(grace: Duration = .seconds(3)) async {
        signal(SIGTERM)
        let exited = await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = await self.exitStatus(); return true }
            group.addTask { try? await Task.sleep(for: grace); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !exited {
            signal(SIGKILL)
            _ = await exitStatus()
        }
    }

    private static func readLines(from fd: Int32, _ deliver: @Sendable ([String]) -> Void) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
            guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else {
                if pending.count > 64 * 1024 {  // a line without end: deliver it in pieces
                    deliver([String(decoding: pending, as: UTF8.self)])
                    pending.removeAll(keepingCapacity: true)
                }
                continue
            }
            let lines = pending[..<lastNewline].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            pending.removeSubrange(...lastNewline)
            deliver(lines)
        }
        if !pending.isEmpty { deliver([String(decoding: pending, as: UTF8.self)]) }
    }

    /// The start time of a process in clock ticks since boot, or nil if it does not exist.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may contain spaces): state is field 3, starttime field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// A wait status as words: "exited with code 1", "was killed by signal 9".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with code \((status >> 8) & 0xff)" }
        return "was killed by signal \(signal)"
    }
}

struct SpawnError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
