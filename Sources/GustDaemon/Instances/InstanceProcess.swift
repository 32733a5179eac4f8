#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import Synchronization

/// One OS process of an instance, started by `gust_spawn` (fork and exec):
/// in its cgroups and under its rlimits before its program runs
/// (`SpawnConfinement`), in its own session (so that its whole process group
/// can be signalled), stdin from /dev/null, stdout and stderr each into a pipe
/// that a reader thread splits into lines, and no other descriptor of gustd's:
/// every one from 3 up is made close-on-exec in the child, whether or not its
/// opener asked (SwiftNIO's listeners and connections do not), so an instance
/// can never accept on gustd's port or read another app's connection.
///
/// Blocking reads and `waitpid` run on threads of their own: never on the
/// event loops that run gustd's tasks, and not on Dispatch's global queues
/// either, whose pool on Linux grows only about once a second when its
/// threads block (that delayed unrelated work, schedules among it, by a second).
final class InstanceProcess: Sendable {
    let pid: pid_t
    /// `/proc/PID/stat` field 22: with the pid, it tells this process from a later one that reuses the pid.
    let startTime: UInt64
    /// The process group `signal` addresses: the process's own, or a sandbox's first process's.
    private let group: pid_t
    /// Whether the process is PID 1 of a PID namespace of its own (started in a prepared sandbox):
    /// SIGTERM from gustd reaches it only if it handles the signal (`stop`).
    let isNamespaceInit: Bool
    private let exitState = Mutex<ExitState>(ExitState())
    /// The read ends of stdout and stderr still open, and how far each reader has got (a reader
    /// reads and closes its own end under this lock, so `outputMark` never asks about a reused
    /// descriptor, and never sees bytes that are in neither the pipe nor `taken`).
    private let readers = Mutex(OutputReaders())
    /// The app's log bound (`gateOutput`): the readers make no line of what it could not take.
    private let outputGate = Mutex<LogThrottle?>(nil)

    private struct OutputReaders {
        var open: [Int32] = []
        /// Bytes each reader has taken from its pipe, and how many of those it has delivered (the
        /// start of a line whose end has not come counts as delivered once the reader holds it).
        var taken: [Int32: Int] = [:]
        var delivered: [Int32: Int] = [:]
    }

    /// How much the process had written when it was taken, pipe by pipe.
    struct OutputMark: Sendable {
        fileprivate let through: [Int32: Int]
    }

    private struct ExitState {
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }

    /// Starts `executable` with exactly `environment`.
    /// - Parameters:
    ///   - marker: an entry of `environment` that every process it starts inherits; when the
    ///     process exits, those that left its process group are stopped too (`InstanceStragglers`).
    ///     Not with cgroups (`confinement`): what is left in those is killed as they are removed
    ///     (`InstanceCgroup.finish`), which a process of the app cannot leave, and the scan of
    ///     every process in /proc at each exit (a few ms of gustd's CPU) would find nothing more.
    ///   - confinement: the cgroups the child joins and the rlimits it gets before its program runs.
    ///   - onOutput: called from a reader thread with each batch of complete lines and their stream.
    ///   - onExit: called once with the wait status after the output has been read to its end.
    ///   - passing: descriptors the process gets as 3, 4, … (a zygote's control socket); gustd keeps its own.
    ///   - standardInput: the child's stdin instead of /dev/null (closed here once spawned).
    ///   - discardingOutput: stdout to /dev/null and stderr into `discardingOutput` (the caller's,
    ///     not closed here) instead of pipes that gustd reads (no reader threads; `onOutput` is not called).
    ///   - started: called with the pid right after the spawn; returns the process group to signal
    ///     (a sandbox's first process). If it throws, the process is killed and the error thrown.
    init(
        executable: String, arguments: [String] = [], environment: [String: String], directory: String,
        standardInput: Int32? = nil, discardingOutput errorOutput: Int32? = nil, marker: StragglerMarker? = nil,
        confinement: SpawnConfinement = SpawnConfinement(),
        passing: [Int32] = [],
        onOutput: @escaping @Sendable ([String], StandardStream) -> Void, onExit: @escaping @Sendable (Int32) -> Void,
        started: ((pid_t) throws -> pid_t)? = nil, entering entry: SpawnEntry? = nil
    ) throws {
        defer { if let standardInput { close(standardInput) } }
        guard passing.count <= Int(GUST_SPAWN_MAX_PASSING) else {
            throw SpawnError("Cannot start \(executable): more than \(GUST_SPAWN_MAX_PASSING) descriptors to pass on")
        }
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        if let errorOutput {
            out = [-1, open("/dev/null", O_WRONLY | O_CLOEXEC)]
            err = [-1, fcntl(errorOutput, F_DUPFD_CLOEXEC, 0)]
            guard out[1] >= 0, err[1] >= 0 else {
                let reason = String(cString: strerror(errno))
                [out[1], err[1]].filter { $0 >= 0 }.forEach { close($0) }
                throw SpawnError("Cannot give \(executable) its output: \(reason)")
            }
        } else {
            guard gust_pipe_cloexec(&out) == 0 else { throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))") }
            guard gust_pipe_cloexec(&err) == 0 else {
                close(out[0])
                close(out[1])
                throw SpawnError("Cannot create a pipe: \(String(cString: strerror(errno)))")
            }
        }
        let readEnds = [(out[0], StandardStream.stdout), (err[0], StandardStream.stderr)].filter { $0.0 >= 0 }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cgroups = confinement.cgroupProcs.map { UnsafePointer(strdup($0)) } + [nil]
        let workingDirectory = strdup(directory)
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            cgroups.forEach { free(UnsafeMutablePointer(mutating: $0)) }
            free(workingDirectory)
        }
        let request = SpawnArguments(
            argv: argv, envp: envp, cgroups: cgroups, directory: workingDirectory, standardInput: standardInput ?? -1,
            stdout: out[1], stderr: err[1], confinement: confinement, passing: passing, entry: entry
        )
        let (result, child, step) = confinement.diesWithGustd
            ? try SpawnThread.shared.run { request.spawn(executable) } : request.spawn(executable)
        close(out[1])
        close(err[1])
        guard result == 0 else {
            readEnds.forEach { close($0.0) }
            let reason = String(cString: strerror(result))
            switch Int(step) {
            case Int(GUST_SPAWN_STEP_CGROUP):
                throw SpawnError("Cannot start \(executable): joining its cgroup failed (\(reason)); it did not run")
            case Int(GUST_SPAWN_STEP_RLIMIT):
                throw SpawnError("Cannot start \(executable): setting its resource limits failed (\(reason)); it did not run")
            case Int(GUST_SPAWN_STEP_SANDBOX) where entry != nil:
                throw SpawnError("Cannot start \(executable): entering its prepared sandbox failed (\(reason)); it did not run", enteringSandbox: true)
            default:
                throw SpawnError("Cannot start \(executable): \(reason)")
            }
        }
        let spawned = child
        pid = spawned
        isNamespaceInit = entry != nil
        do {
            group = try started?(spawned) ?? spawned
        } catch {
            kill(spawned, SIGKILL)
            var status: Int32 = 0
            while waitpid(spawned, &status, 0) < 0 && errno == EINTR {}
            readEnds.forEach { close($0.0) }
            throw error
        }
        readers.withLock { $0.open = readEnds.map(\.0) }
        startTime = Self.startTime(of: spawned) ?? 0

        watch(readEnds: readEnds, marker: confinement.cgroupProcs.isEmpty ? marker : nil, onOutput: onOutput, onExit: onExit) {
            var status: Int32 = 0
            while waitpid(spawned, &status, 0) < 0 && errno == EINTR {}
            return status
        }
    }

    /// A process gustd did not start itself: a fork of a zygote (`Zygote`),
    /// whose parent is the zygote. Its exit is seen through `pidfd`, which
    /// the zygote opened before it could reap the fork (so it names this
    /// process and never a later one with its pid); its wait status is the
    /// zygote's to tell (`status`, called once the pidfd says it has exited).
    /// Takes ownership of `pidfd` and of both read ends. `marker`: as above, nil for a fork the
    /// zygote moved into cgroups of its own.
    init(
        forked: pid_t, pidfd: Int32, stdout: Int32, stderr: Int32, marker: StragglerMarker?,
        onOutput: @escaping @Sendable ([String], StandardStream) -> Void, onExit: @escaping @Sendable (Int32) -> Void,
        status: @escaping @Sendable () -> Int32
    ) {
        pid = forked
        group = forked
        isNamespaceInit = false
        let readEnds = [(stdout, StandardStream.stdout), (stderr, StandardStream.stderr)]
        readers.withLock { $0.open = readEnds.map(\.0) }
        startTime = Self.startTime(of: forked) ?? 0
        watch(readEnds: readEnds, marker: marker, onOutput: onOutput, onExit: onExit) {
            var exit = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            while poll(&exit, 1, -1) < 0 && errno == EINTR {}
            close(pidfd)
            return status()
        }
    }

    /// A reader thread per pipe and one that waits for the exit (`wait` blocks until then).
    ///
    /// The readers end at the pipes' end, or, 2 s after the process exited, when the waiter tells
    /// them to through `stop` (an eventfd it writes to): whatever else holds a write end
    /// would otherwise keep them, their threads and descriptors for good. A zygote is the app's own
    /// interpreter and is handed both write ends of every fork: app code run at each fork could
    /// keep them all, and gustd gained two threads and two descriptors per fork, without bound.
    private func watch(
        readEnds: [(Int32, StandardStream)], marker: StragglerMarker?, onOutput: @escaping @Sendable ([String], StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void, wait: @escaping @Sendable () -> Int32
    ) {
        let reaper = DispatchGroup()
        // Without it (no descriptor to spare), the readers wait for the pipes' end as before.
        let stop = readEnds.isEmpty ? -1 : gust_eventfd_cloexec()
        for (readEnd, stream) in readEnds {
            reaper.enter()
            Thread.detachNewThread {
                Self.readLines(
                    from: readEnd,
                    stop: stop,
                    take: { buffer, capacity in
                        self.readers.withLock { readers in
                            let count = read(readEnd, buffer, capacity)
                            if count > 0 { readers.taken[readEnd, default: 0] += count }
                            return count
                        }
                    },
                    done: { count in self.readers.withLock { $0.delivered[readEnd, default: 0] += count } },
                    allowance: { self.outputGate.withLock { $0 }?.available() },
                    dropped: { count in self.outputGate.withLock { $0 }?.drop(count) }
                ) { onOutput($0, stream) }
                self.readers.withLock { readers in
                    readers.open.removeAll { $0 == readEnd }
                    close(readEnd)
                }
                reaper.leave()
            }
        }
        Thread.detachNewThread {
            let status = wait()
            // What it started and left behind outside its process group goes with it.
            if let marker { InstanceStragglers.stop(marker: marker) }
            // The output is complete once the pipes are closed by every holder; wait a
            // little for it so that an exit report follows the last line, but not
            // forever: a grandchild, or the zygote, may hold the pipe.
            let drained = reaper.wait(timeout: .now() + 2) == .success
            if stop >= 0, !drained {  // the readers still reading stop
                var one: UInt64 = 1
                _ = write(stop, &one, MemoryLayout<UInt64>.size)
            }
            let waiters = self.exitState.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            onExit(status)
            waiters.forEach { $0.resume(returning: status) }
            // Closed once no reader polls it (a number reused under a poll would be another's).
            if stop >= 0, drained || reaper.wait(timeout: .now() + 10) == .success { close(stop) }
        }
    }

    var hasExited: Bool { exitState.withLock { $0.status != nil } }

    /// How many of the process's pipes a reader still reads.
    var readersReading: Int { readers.withLock { $0.open.count } }

    /// Whether the process has exited, or does within `bound` (checked every 5 ms).
    func hasExited(within bound: Duration) async -> Bool {
        let deadline = ContinuousClock.now + bound
        while !hasExited {
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(5))) != nil else { return hasExited }
        }
        return true
    }

    /// What the process has written so far: what its readers have taken, and what waits in its
    /// pipes. Taken under the lock the readers read under, so no byte is in neither place.
    func outputMark() -> OutputMark {
        readers.withLock { readers in
            OutputMark(through: Dictionary(uniqueKeysWithValues: readers.open.map { fd in
                var waiting: Int32 = 0
                if ioctl(fd, UInt(FIONREAD), &waiting) != 0 { waiting = 0 }
                return (fd, readers.taken[fd, default: 0] + Int(waiting))
            }))
        }
    }

    /// Whether everything written before `mark` was taken has been delivered to `onOutput`; what
    /// the process wrote since does not count, so a process that never stops writing still gets there.
    /// A reader that has ended delivered all it read first.
    func hasDelivered(_ mark: OutputMark) -> Bool {
        readers.withLock { readers in
            mark.through.allSatisfy { fd, bytes in !readers.open.contains(fd) || readers.delivered[fd, default: 0] >= bytes }
        }
    }

    /// Waits, at most `limit`, until everything the process had written when asked has been
    /// delivered to `onOutput`. Output comes through pipes read by threads of their own, while the
    /// answer that prompts the question (a call's, a start's readiness) comes another way, so the
    /// answer can overtake lines written before it. What is written after the question is not
    /// waited for, so a process that never stops printing does not hold the wait to its bound.
    func outputIsDelivered(within limit: Duration) async {
        let mark = outputMark()
        let deadline = ContinuousClock.now + limit
        while !hasDelivered(mark), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

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

    /// Signals the whole process group (the instance is a session leader); the
    /// process alone if it leads none yet (a fork between fork and setsid).
    func signal(_ signal: Int32) {
        // Never 0 or 1 (gustd's own group, or every process it may signal): no instance has either.
        guard !hasExited, group > 1 else { return }
        if kill(-group, signal) != 0 { kill(group, signal) }
    }

    /// Whether `pid` has a handler for `signal` (`SigCgt` of `/proc/PID/status`); false if it is gone.
    static func handles(_ signal: Int32, pid: pid_t) -> Bool {
        guard let field = statusField("SigCgt", of: pid), let mask = UInt64(field, radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }

    /// The field `name` of `/proc/PID/status` (`PPid`, `SigCgt` …), trimmed; nil once `pid` is gone.
    static func statusField(_ name: String, of pid: pid_t) -> String? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") })
        else { return nil }
        return line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns when the process has exited.
    func stop(grace: Duration = .seconds(3)) async {
        signal(SIGTERM)
        // PID 1 of its own namespace ignores a SIGTERM it does not handle, where any other process
        // would end: it ends as it would have (an ASGI lifespan's handler still gets its grace).
        if isNamespaceInit, !Self.handles(SIGTERM, pid: pid) { signal(SIGKILL) }
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = await self.exitStatus(); return true }
            group.addTask { try? await Task.sleep(for: grace); return false }
            // SIGKILL inside the group: it waits for its waiting task, which no cancel ends.
            if await group.next() == false { signal(SIGKILL) }
            group.cancelAll()
        }
    }

    /// Has the readers make no line of what `throttle` (the app's log bound, which the lines
    /// delivered go through too) could not take: past it, lines are only counted. Set once the
    /// process is started; what was read before is delivered and throttled as usual.
    func gateOutput(by throttle: LogThrottle?) {
        outputGate.withLock { $0 = throttle }
    }

    /// Which of the process's outputs a line came from.
    enum StandardStream: String, Sendable {
        case stdout, stderr
    }

    /// How long a reader waits before it reads what cannot be logged (milliseconds).
    static let exhaustedPause: Int32 = 10
    /// Past this, a line without its end yet is delivered (or dropped) as it is.
    static let longestLine = 64 * 1024

    /// Reads `fd` to its end, delivering each batch of complete lines. Lines are found with
    /// memchr over the bytes read, so an instance printing a gigabyte costs gustd one pass over it.
    /// `take` reads (once `poll` says there are bytes, so it does not block); `done(count)` follows
    /// once the lines in those bytes are delivered. `allowance()`, asked once a batch, is how many
    /// bytes of lines the app's log bound could take now (nil: unbounded): a line that costs more
    /// than is left of it (`LogThrottle.cost`) is only counted, `dropped(count)`, never made into
    /// a string. Made first and dropped by the bound after, every line past it cost gustd a
    /// string, an array slot and the bound's look at it: 0.5 s of gustd's CPU for 200 MB printed.
    /// With no room for any line, a read waits `exhaustedPause` first and its lines are counted in
    /// one pass.
    static func readLines(
        from fd: Int32, stop: Int32 = -1, take: (UnsafeMutableRawPointer?, Int) -> Int, done: (Int) -> Void,
        allowance: () -> Int? = { nil }, dropped: (Int) -> Void = { _ in }, _ deliver: ([String]) -> Void
    ) {
        let capacity = 64 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var pending = [UInt8]()  // the start of a line whose end has not arrived yet
        // `stop` readable (written to): the reader leaves, whoever still holds `fd`'s write end.
        var ready = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
        while true {
            ready[0].revents = 0
            ready[1].revents = 0
            let polled = poll(&ready, stop >= 0 ? 2 : 1, -1)
            if polled < 0 && errno == EINTR { continue }
            if stop >= 0, ready[1].revents != 0 { break }
            var left = allowance() ?? .max
            let exhausted = left < LogThrottle.leastLineCost
            if exhausted {
                // Nothing of this read can be logged: it is read a moment later, so that an app that
                // writes on while over its bound waits for its pipe a little (its lines still
                // dropped), and gustd reads a pipeful at most every `exhaustedPause`, whatever the
                // app writes. Read at once, a flood cost gustd as much CPU as the app's writing it.
                var stopping = [pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
                if poll(&stopping, stop >= 0 ? 1 : 0, exhaustedPause) > 0 { break }  // no `stop`: a plain wait
            }
            let count = take(buffer.baseAddress, capacity)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            defer { done(count) }
            let base = UnsafeRawPointer(buffer.baseAddress!)
            if exhausted {
                // No line can be made now: each one this read ends is only counted, in one pass. Line by
                // line (memchr, then the bound's look), a flood of empty lines cost gustd some 50 times
                // the app's writing them, on gustd's own CPU; this is what the loop below does then.
                let (ended, last) = newlines(in: base, count: count)
                if let last {
                    pending.removeAll(keepingCapacity: true)
                    pending.append(contentsOf: UnsafeRawBufferPointer(start: base + last + 1, count: count - last - 1))
                } else {
                    pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: count))
                }
                var unmade = ended
                if pending.count > longestLine {  // a line without end, cut as below
                    unmade += 1
                    pending.removeAll(keepingCapacity: true)
                }
                if unmade > 0 { dropped(unmade) }
                continue
            }
            var unmade = 0
            /// Whether a line of `length` bytes is made: the bound has room for it.
            func admits(_ length: Int) -> Bool {
                let cost = LogThrottle.cost(ofLine: length)
                guard cost <= left else {
                    unmade += 1
                    return false
                }
                left -= cost
                return true
            }
            var lines: [String] = []
            var start = 0
            while start < count, let found = memchr(base + start, 0x0A, count - start) {
                let end = base.distance(to: UnsafeRawPointer(found))
                let piece = UnsafeRawBufferPointer(start: base + start, count: end - start)
                if pending.isEmpty {
                    if admits(piece.count) { lines.append(String(decoding: piece, as: UTF8.self)) }
                } else {
                    if admits(pending.count + piece.count) {
                        pending.append(contentsOf: piece)
                        lines.append(String(decoding: pending, as: UTF8.self))
                    }
                    pending.removeAll(keepingCapacity: true)
                }
                start = end + 1
            }
            if start < count { pending.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: count - start)) }
            if pending.count > longestLine {  // a line without end: deliver it in pieces
                if admits(pending.count) { lines.append(String(decoding: pending, as: UTF8.self)) }
                pending.removeAll(keepingCapacity: true)
            }
            if unmade > 0 { dropped(unmade) }
            if !lines.isEmpty { deliver(lines) }
        }
        if !pending.isEmpty { deliver([String(decoding: pending, as: UTF8.self)]) }
    }

    /// How many of the `count` bytes at `base` are a newline, and where the last one is, eight bytes
    /// at a time: a byte of the word XOR "\n\n…" is zero where a newline was, and the high bit of
    /// ((b & 0x7F) + 0x7F) | b is clear only for b = 0 (no carry crosses a byte).
    static func newlines(in base: UnsafeRawPointer, count: Int) -> (count: Int, last: Int?) {
        let pattern = UInt64(littleEndian: 0x0A0A_0A0A_0A0A_0A0A), lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        var total = 0
        var last: Int?
        var at = 0
        while at + 8 <= count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) ^ pattern
            let zeros = ~(((word & lows) &+ lows) | word | lows)
            if zeros != 0 {
                total += zeros.nonzeroBitCount
                last = at + (63 - zeros.leadingZeroBitCount) / 8  // byte i of the word is bits 8i to 8i + 7
            }
            at += 8
        }
        while at < count {
            if base.load(fromByteOffset: at, as: UInt8.self) == 0x0A {
                total += 1
                last = at
            }
            at += 1
        }
        return (total, last)
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

    /// Whether `status` is how gustd's stop ends a process: SIGTERM, SIGKILL after the grace, or an
    /// exit of 0 (a runtime that handles SIGTERM and returns).
    static func isStopStatus(_ status: Int32) -> Bool {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff == 0 : signal == SIGTERM || signal == SIGKILL
    }

    /// A wait status as words: "exited with code 1", "was killed by signal 9".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with code \((status >> 8) & 0xff)" }
        return "was killed by signal \(signal)"
    }
}

/// How a spawned process is confined from its first instruction: the cgroups
/// it joins and the rlimits it gets between fork and exec (`gust_spawn`).
/// Any executable may be spawned so: the direct launcher's runtime, or bubblewrap.
/// What `gust_spawn` is given, as C strings the caller owns and frees once the spawn returned
/// (it waits for it, on whatever thread it ran: hence `@unchecked Sendable`).
private struct SpawnArguments: @unchecked Sendable {
    var argv: [UnsafeMutablePointer<CChar>?]
    var envp: [UnsafeMutablePointer<CChar>?]
    var cgroups: [UnsafePointer<CChar>?]
    var directory: UnsafeMutablePointer<CChar>?
    var standardInput: Int32
    var stdout: Int32
    var stderr: Int32
    var confinement: SpawnConfinement
    var passing: [Int32]
    var entry: SpawnEntry?

    /// gust_spawn's result, the child's pid and the step that failed.
    func spawn(_ executable: String) -> (result: Int32, child: pid_t, step: Int32) {
        var child: pid_t = 0
        var step: Int32 = 0
        let result = executable.withCString { path in
            argv.withUnsafeBufferPointer { argv in
                envp.withUnsafeBufferPointer { envp in
                    cgroups.withUnsafeBufferPointer { cgroups in
                        passing.withUnsafeBufferPointer { passing in
                            var request = gust_spawn_request(
                                path: path, argv: argv.baseAddress, envp: envp.baseAddress, directory: directory,
                                stdin_fd: standardInput, stdout_fd: stdout, stderr_fd: stderr, cgroup_procs: cgroups.baseAddress,
                                address_space_limit: Int64(confinement.addressSpaceLimit ?? 0),
                                process_limit: Int64(confinement.processLimit ?? 0),
                                passing: passing.baseAddress, passing_count: Int32(passing.count),
                                parent_death_signal: confinement.diesWithGustd ? SIGKILL : 0, listen_pid_entry: nil,
                                file_mode_mask: confinement.fileModeMask.map { Int32($0) } ?? -1
                            )
                            guard let entry else { return gust_spawn(&request, &child, &step) }
                            return entry.withC { gust_spawn_entering(&request, $0, &child, &step) }
                        }
                    }
                }
            }
        }
        return (result, child, step)
    }
}

struct SpawnConfinement: Sendable, Equatable {
    /// `cgroup.procs` files (v2, or v1 per controller) to write the child into.
    var cgroupProcs: [String] = []
    /// RLIMIT_AS in bytes: the last-resort memory bound where no cgroup works.
    var addressSpaceLimit: Int?
    /// RLIMIT_NPROC: the last-resort process bound (counted per uid, so only right with a uid per app).
    var processLimit: Int?
    /// The size of the private `/tmp`, where the spawner gives one (the sandbox's tmpfs); nil: its default.
    var tmpBytes: Int?
    /// Whether the process is killed when gustd's process ends, however it ends (SIGKILL included):
    /// spawned on `SpawnThread`, with PR_SET_PDEATHSIG (bwrap, for a sandbox, which takes the sandbox with it).
    var diesWithGustd = false
    /// The child's umask; nil keeps gustd's (077).
    var fileModeMask: mode_t?
}

struct SpawnError: Error, CustomStringConvertible {
    var description: String
    /// The start failed entering its prepared sandbox (`SpawnEntry`), before its program ran.
    var enteringSandbox = false
    init(_ description: String, enteringSandbox: Bool = false) {
        self.description = description
        self.enteringSandbox = enteringSandbox
    }
}

/// A prepared sandbox that a process starts in (`gust_spawn_entering`) instead of gustd's namespaces:
/// a holder's user and mount namespaces (`SandboxHolders`), entered with fresh PID, IPC and UTS
/// namespaces, the release read-only at `/app` and the socket directory at `/run/gust`.
/// The namespace descriptors belong to the holder, which the caller keeps open across the spawn.
struct SpawnEntry: Sendable {
    var ownerUserNamespace: Int32
    /// The holder's own user namespace where bwrap nested one in the owner; -1 when the same.
    var userNamespace: Int32
    var mountNamespace: Int32
    var release: String
    var sockets: String
    var socketsWritable: Bool
    var tmpBytes: Int
    var uid: UInt32
    var gid: UInt32
    var setsGroups: Bool
    var seccomp: [UInt8]?

    func withC<Result>(_ body: (UnsafePointer<gust_sandbox_entry>) -> Result) -> Result {
        let filter = seccomp ?? []
        return release.withCString { release in
            sockets.withCString { sockets in
                filter.withUnsafeBytes { program in
                    var entry = gust_sandbox_entry(
                        owner_userns_fd: ownerUserNamespace, userns_fd: userNamespace, mnt_fd: mountNamespace,
                        pid_fd: -1, ipc_fd: -1, uts_fd: -1, release: release, sockets: sockets, sockets_writable: socketsWritable ? 1 : 0,
                        tmp_bytes: Int64(tmpBytes),
                        uid: uid, gid: gid, set_groups: setsGroups ? 1 : 0,
                        seccomp: filter.isEmpty ? nil : program.baseAddress, seccomp_length: Int32(filter.count)
                    )
                    return body(&entry)
                }
            }
        }
    }
}
