#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
import Synchronization

/// One running zygote: a Python runtime that imported a release's app once
/// and forks its instances when gustd asks (buildpacks/python/runtime/gust/zygote.py,
/// docs/runtime-protocol.md "Zygotes").
///
/// gustd talks to it over a SOCK_SEQPACKET socket pair whose other end the
/// zygote gets as descriptor 3: no path to bind or poll for, nothing another
/// process could connect to, and each message keeps its bounds and its
/// descriptors. A fork request carries the write ends of two pipes gustd made
/// (the instance's stdout and stderr, read and credited here like any
/// instance's); the answer carries a pidfd of the fork.
///
/// Why a pidfd and not the zygote's word alone: gustd sees a fork exit even
/// when the zygote that would report it is gone (crashed, or SIGKILLed), and
/// the pidfd names that process only, never one that reuses its pid. The
/// zygote reaps its forks (they are its children) and sends each wait status,
/// which is all the pidfd cannot tell.
///
/// Inside a sandbox (`SandboxSpawner`), the zygote and its forks live in the
/// sandbox's PID namespace: the pids it reports are the sandbox's, so gustd
/// takes each fork's host pid from its pidfd (`ZygoteWire.hostPID`), and the
/// zygote's own from the pidfd of itself it sends with its readiness. A fork
/// joins its instance's cgroups by writing itself into `cgroup.procs` files
/// that gustd opened for it *as the app's uid* (`gust_open_as_app`, in the
/// zygote's user namespace) and sent with the request: on cgroup v1 a write
/// moves a process only if the file was opened by its uid, and the files stay
/// gustd's (0644), so the app can write no cgroup of its own by path.
///
/// A reader thread takes every message; nothing here blocks an event loop.
final class Zygote: Sendable {
    let id: String
    let process: InstanceProcess
    let started = ContinuousClock.now
    /// The zygote's cgroup (under the sandbox), which `gust ps` reads its memory from; finished by the launcher.
    let cgroup: InstanceCgroup?
    /// The size of its sandbox's `/tmp` (the app's `tmp` limit when it started), which its forks share.
    let tmpBytes: Int?
    /// The app's uid inside the zygote's user namespace, which its forks' cgroup files are opened as;
    /// nil: opened as gustd (its forks run as gustd's uid on the host).
    private let appUID: UInt32?
    private let control: Int32
    private let state = Mutex(State())

    private struct State {
        var ready: CheckedContinuation<Readiness, any Error>?
        var readiness: Result<Readiness, any Error>?
        var forks: [String: ForkWait] = [:]
        var statuses: [pid_t: Int32] = [:]
        /// The forks answered to an asker, as the zygote numbers them: only their exit reports are kept
        /// (the zygote is the app's code, which could report any number of made-up exits).
        var made: Set<pid_t> = []
        var closed = false
        /// The runtime's host pid and its user namespace (`/proc/PID/ns/user`), from the pidfd it sent when ready.
        var runtime: (pid: pid_t, namespace: Int32)?
    }

    /// What the zygote said once it had imported the app.
    enum Readiness: Sendable, Equatable {
        case ready
        /// It cannot be forked safely: the reason (a thread or socket opened at import).
        case unforkable(String)
    }

    /// A fork, as the zygote answered: gustd owns the descriptors.
    struct Forked: Sendable {
        /// Its pid on the host (gustd's PID namespace).
        var pid: pid_t
        /// Its pid as the zygote sees it (the sandbox's), which its exit report names.
        var reportedPID: pid_t
        var pidfd: Int32
        var stdout: Int32
        var stderr: Int32
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts a zygote with `spawn`, which starts the runtime with the zygote's end of the control
    /// socket passed on (and says in `GUST_ZYGOTE_FD` which descriptor it is inside); returns at once.
    /// - Parameters:
    ///   - appUID: the uid inside the zygote's user namespace its forks' cgroup files are opened as.
    ///   - cgroup: the zygote's own cgroup, if it has one.
    ///   - tmpBytes: the size of its sandbox's `/tmp`, if it has one of a set size.
    init(
        id: String, appUID: UInt32? = nil, cgroup: InstanceCgroup? = nil, tmpBytes: Int? = nil,
        spawn: (_ control: Int32) throws -> InstanceProcess
    ) throws {
        var pair: [Int32] = [0, 0]
        guard gust_seqpacket_pair(&pair) == 0 else {
            throw Failure(description: "Cannot create a zygote's control socket: \(String(cString: strerror(errno)))")
        }
        do {
            process = try spawn(pair[1])
        } catch {
            close(pair[0])
            close(pair[1])
            throw error
        }
        close(pair[1])
        self.id = id
        self.appUID = appUID
        self.cgroup = cgroup
        self.tmpBytes = tmpBytes
        control = pair[0]
        let control = pair[0]
        Thread.detachNewThread { [self] in readMessages(from: control) }
    }

    /// Waits until the zygote has imported the app. Throws if it exits first (its output says why).
    func readiness() async throws -> Readiness {
        try await withCheckedThrowingContinuation { continuation in
            let known = state.withLock { state -> Result<Readiness, any Error>? in
                if let readiness = state.readiness { return readiness }
                state.ready = continuation
                return nil
            }
            if let known { continuation.resume(with: known) }
        }
    }

    /// The runtime's pid on the host (the zygote's process under a sandbox's bwrap), once it said it is ready.
    var runtimePID: pid_t? { state.withLock { $0.runtime?.pid } }

    /// A fork asked for: the answer may come before anyone waits for it, and one nobody will wait
    /// for any more is killed when it comes (`AskedFork.abandon`), never left running unowned.
    private enum ForkWait {
        case asked
        case waiting(CheckedContinuation<Forked, any Error>)
        case answered(Result<Forked, any Error>)
        case abandoned
    }

    /// A fork request sent, its answer still to come: `answer(within:)` waits for it, `abandon()`
    /// gives it up; exactly one of the two is called, and it closes the read ends.
    struct AskedFork: Sendable {
        let zygote: Zygote
        let id: String
        /// The zygote moves the fork into cgroups of its own (which take what it leaves when it exits).
        let inCgroups: Bool
        /// The read ends of the fork's stdout and stderr, gustd's.
        fileprivate let stdout: Int32
        fileprivate let stderr: Int32

        /// The fork, once the zygote has answered; throws if it could not fork, exited first, or did
        /// not answer within `bound` (a fork is answered in milliseconds: an app's import may have
        /// taken the request off the control socket, or changed the runtime). A fork made after that
        /// is killed when its answer comes.
        func answer(within bound: Duration) async throws -> Forked {
            do {
                var forked = try await zygote.answer(to: id, within: bound)
                forked.stdout = stdout
                forked.stderr = stderr
                return forked
            } catch {
                close(stdout)
                close(stderr)
                throw error
            }
        }

        /// Nobody will take this fork: if it was made (or is made later), it is killed and its descriptors closed.
        func abandon() {
            zygote.abandon(id)
            close(stdout)
            close(stderr)
        }
    }

    /// Whether a fork may be asked for before the zygote has said it is ready: the zygote reads
    /// requests only once it has imported the app, so one sent during the import waits in the
    /// socket and is forked the moment the import ends. Not when the fork's cgroup files are
    /// opened as the app's uid: that needs the zygote's user namespace, which readiness tells.
    var takesRequestsWhileImporting: Bool { appUID == nil }

    /// Asks for a fork with `environment` (its GUST_INSTANCE, socket, records token) serving on
    /// `listener`, a socket gustd bound (sent with the request, and closed here whatever happens), or
    /// else on `socketPath`, which the zygote binds before it forks (a release recorded before
    /// gustd bound them): gustd may connect as soon as it has the answer (`AskedFork.answer`).
    /// `cgroupProcs`: the instance's `cgroup.procs` files, which the fork writes itself into before
    /// anything else (through descriptors gustd opens here as the app's uid and sends with the
    /// request). The request is sent now.
    func ask(
        id: String, socketPath: String, listener: Int32? = nil, environment: [String: String], internalToken: String,
        cgroupProcs: [String] = []
    ) throws -> AskedFork {
        let cgroupFiles: [Int32]
        do { cgroupFiles = try openCgroupFiles(cgroupProcs) } catch {
            listener.map { _ = close($0) }
            throw error
        }
        let cgroupFilesAndListener = cgroupFiles + (listener.map { [$0] } ?? [])
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard gust_pipe_cloexec(&out) == 0 else {
            cgroupFilesAndListener.forEach { close($0) }
            throw Failure(description: "Cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        guard gust_pipe_cloexec(&err) == 0 else {
            (cgroupFilesAndListener + out).forEach { close($0) }
            throw Failure(description: "Cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let asked = AskedFork(zygote: self, id: id, inCgroups: !cgroupProcs.isEmpty, stdout: out[0], stderr: err[0])
        let request: (body: Data, descriptors: [Int32])
        do {
            request = try ZygoteWire.forkRequest(
                id: id, socketPath: socketPath, environment: environment, internalToken: internalToken,
                stdout: out[1], stderr: err[1], listener: listener, cgroupFiles: cgroupFiles
            )
        } catch {
            (cgroupFilesAndListener + [out[1], err[1]]).forEach { close($0) }
            close(out[0])
            close(err[0])
            throw error
        }
        let closed = state.withLock { state in
            if !state.closed { state.forks[id] = .asked }
            return state.closed
        }
        if closed {
            request.descriptors.forEach { close($0) }
            asked.abandon()
            throw Failure(description: "its zygote has exited")
        }
        let sent = request.body.withUnsafeBytes { bytes in
            request.descriptors.withUnsafeBufferPointer {
                gust_send_with_fds(control, bytes.baseAddress, bytes.count, $0.baseAddress, Int32(request.descriptors.count))
            }
        }
        request.descriptors.forEach { close($0) }
        if sent < 0 {
            let message = String(cString: strerror(errno))
            asked.abandon()
            throw Failure(description: "cannot reach its zygote: \(message)")
        }
        return asked
    }

    /// Waits for the answer to the fork `id`, at most `bound`; past it, or when the wait is
    /// cancelled, the fork is settled as failed, and an answer that comes later is killed.
    private func answer(to id: String, within bound: Duration) async throws -> Forked {
        try await withThrowingTaskGroup(of: Forked?.self) { group in
            group.addTask { try await self.answer(to: id) }
            group.addTask {
                try? await Task.sleep(for: bound)
                // A no-op once the answer has come.
                let reason = Task.isCancelled ? "the start was given up" : "its zygote did not answer within \(bound.shortText)"
                self.settle(id, with: .failure(Failure(description: reason)))
                return nil
            }
            while let answered = try await group.next() {
                if let forked = answered {
                    group.cancelAll()
                    return forked
                }
            }
            throw Failure(description: "its zygote did not answer")  // not reached: the answer's task returns or throws
        }
    }

    /// Waits for the answer to the fork `id` asked for (at once if it has come).
    private func answer(to id: String) async throws -> Forked {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Forked, any Error>) in
            let known = state.withLock { state -> Result<Forked, any Error>? in
                switch state.forks[id] {
                case .answered(let result)?:
                    state.forks[id] = nil
                    return result
                case .asked?:
                    state.forks[id] = .waiting(continuation)
                    return nil
                default:
                    return .failure(Failure(description: "no fork \(id) was asked for"))
                }
            }
            if let known { continuation.resume(with: known) }
        }
    }

    /// Gives up the fork `id`: one already made is killed now, one made later when its answer comes.
    private func abandon(_ id: String) {
        let made = state.withLock { state -> Forked? in
            switch state.forks[id] {
            case .answered(let result)?:
                state.forks[id] = nil
                let forked = try? result.get()
                if let forked { state.made.remove(forked.reportedPID) }  // killed here: its exit is nobody's to read
                return forked
            case .asked?:
                state.forks[id] = .abandoned
                return nil
            case .waiting(let continuation)?:  // its asker gave up while waiting: it hears so
                state.forks[id] = .abandoned
                continuation.resume(throwing: CancellationError())
                return nil
            default:
                return nil
            }
        }
        if let made { Self.kill(made) }
    }

    /// A fork nobody owns: SIGKILL through its pidfd (it names that process only), then the pidfd closed.
    private static func kill(_ forked: Forked) {
        _ = gust_pidfd_send_signal(forked.pidfd, SIGKILL)
        close(forked.pidfd)
    }

    /// Settles the fork `id` with `result`: to its waiter, or kept until one comes; a fork that was
    /// abandoned is killed.
    private func settle(_ id: String, with result: Result<Forked, any Error>) {
        let (waiter, unwanted) = state.withLock { state -> (CheckedContinuation<Forked, any Error>?, Bool) in
            let waiter: CheckedContinuation<Forked, any Error>?
            switch state.forks[id] {
            case .waiting(let continuation)?:
                state.forks[id] = nil
                waiter = continuation
            case .asked?:
                state.forks[id] = .answered(result)
                waiter = nil
            default:  // abandoned, or never asked for
                state.forks[id] = nil
                return (nil, true)
            }
            if case .success(let forked) = result { state.made.insert(forked.reportedPID) }  // its exit report is wanted
            return (waiter, false)
        }
        if let waiter { waiter.resume(with: result) }
        if unwanted, case .success(let forked) = result { Self.kill(forked) }
    }

    /// Every fork not yet answered fails with `reason`.
    private func settleAll(failing reason: String) {
        let unanswered = state.withLock { state in
            state.forks.compactMap { id, wait -> String? in
                switch wait {
                case .asked, .waiting, .abandoned: id
                case .answered: nil
                }
            }
        }
        for id in unanswered { settle(id, with: .failure(Failure(description: reason))) }
    }

    /// The instance's `cgroup.procs` files, opened for writing with the credentials of the uid its
    /// fork runs as: gustd's own (no sandbox, or a sandbox without app uids), else the app's.
    private func openCgroupFiles(_ paths: [String]) throws -> [Int32] {
        guard !paths.isEmpty else { return [] }
        guard let appUID else {
            var files: [Int32] = []
            for path in paths {
                let fd = open(path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    let reason = String(cString: strerror(errno))
                    files.forEach { close($0) }
                    throw Failure(description: "cannot open \(path) for its fork: \(reason)")
                }
                files.append(fd)
            }
            return files
        }
        guard let namespace = state.withLock({ $0.runtime?.namespace }) else {
            throw Failure(description: "its zygote did not say which process it is, so its forks cannot join their cgroups")
        }
        var files = [Int32](repeating: -1, count: paths.count)
        var step: Int32 = 0
        let strings = paths.map { UnsafePointer(strdup($0)) }
        defer { strings.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        let result = strings.withUnsafeBufferPointer { pointers in
            files.withUnsafeMutableBufferPointer {
                gust_open_as_app(namespace, appUID, pointers.baseAddress, Int32(paths.count), $0.baseAddress, &step)
            }
        }
        guard result == 0 else {
            let steps = [1: "entering its user namespace", 2: "taking the app's uid", 3: "taking CAP_DAC_OVERRIDE", 4: "opening them"]
            throw Failure(description: "cannot open its cgroup files as the app's uid (\(steps[Int(step)] ?? "starting"): \(String(cString: strerror(result))))")
        }
        return files
    }

    /// The wait status the zygote reported for its fork `pid`: waits up to a second for the
    /// report (it reaps on SIGCHLD, just after the exit the pidfd showed). Blocks: call it on a
    /// thread of its own. Without a report (the zygote is gone: init reaped the fork), SIGKILL's.
    func exitStatus(of pid: pid_t) -> Int32 {
        for _ in 0..<1000 {
            let (status, closed) = state.withLock { ($0.statuses.removeValue(forKey: pid), $0.closed) }
            if let status { return status }
            if closed { break }
            usleep(1000)
        }
        return SIGKILL
    }

    /// SIGTERM, then SIGKILL after `grace`; its forks (sessions of their own) are not touched.
    func stop(grace: Duration) async {
        await process.stop(grace: grace)
    }

    // MARK: Reading

    private struct Message: Decodable {
        var ready: Bool?
        var reason: String?
        var forked: String?
        var pid: Int32?
        var failed: String?
        var error: String?
        var exited: Int32?
        var status: Int32?
    }

    /// Until the zygote closes its end (it exited): answers to forks, exit reports.
    private func readMessages(from control: Int32) {
        var receiver = ZygoteWire.Receiver()
        reading: while true {
            switch receiver.receive(from: control) {
            case .closed:
                break reading
            case .oversize:
                // It may have been a fork's answer: those waiting fail now rather than at their timeout.
                settleAll(failing: "its zygote sent a message of more than \(ZygoteWire.messageBytes) bytes, which gustd does not read")
            case .message(let data, let descriptors):
                guard let message = try? JSONDecoder().decode(Message.self, from: data) else {
                    descriptors.forEach { close($0) }
                    continue
                }
                handle(message, descriptors)
            }
        }
        close(control)
        if let namespace = state.withLock({ $0.runtime?.namespace }) { close(namespace) }
        let ready = state.withLock { state -> CheckedContinuation<Readiness, any Error>? in
            state.closed = true
            defer { state.ready = nil }
            if state.readiness == nil { state.readiness = .failure(Failure(description: "its zygote exited while importing the app")) }
            return state.ready
        }
        ready?.resume(throwing: Failure(description: "its zygote exited while importing the app"))
        // Answered forks stay for their askers; the rest never come.
        settleAll(failing: "its zygote exited before it forked")
    }

    private func handle(_ message: Message, _ descriptors: [Int32]) {
        if let ready = message.ready {
            // Once: every later `ready` (the app's code can send it) would open a namespace again.
            guard state.withLock({ $0.readiness == nil }) else {
                descriptors.forEach { close($0) }
                return
            }
            // With it (a runtime of this version): a pidfd of the zygote itself.
            let runtime = descriptors.first.flatMap { pidfd -> (pid_t, Int32)? in
                guard let pid = ZygoteWire.hostPID(ofPidfd: pidfd) else { return nil }
                let namespace = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
                // Still the zygote (not a process that took its pid since): its pidfd says it is alive.
                guard namespace >= 0, ZygoteWire.hostPID(ofPidfd: pidfd) == pid else {
                    if namespace >= 0 { close(namespace) }
                    return nil
                }
                return (pid, namespace)
            }
            descriptors.forEach { close($0) }
            let readiness: Readiness = ready ? .ready : .unforkable(message.reason ?? "it did not say why")
            state.withLock { state in
                state.runtime = runtime
                state.readiness = .success(readiness)
                defer { state.ready = nil }
                return state.ready
            }?.resume(returning: readiness)
        } else if let id = message.forked, let pid = message.pid, descriptors.count == 1 {
            // Its pid on the host, from the pidfd (the zygote's number is its sandbox's, under one),
            // and only from a pidfd of a child of the zygote's: the app's code can make the zygote send
            // any descriptor and any number, and gustd signals what it takes as a fork's group
            // (`kill(-1)` had it taken the pid 1 a pipe came with).
            let zygotePID = state.withLock { $0.runtime?.pid }
            guard let hostPID = ZygoteWire.hostPID(ofPidfd: descriptors[0]), ZygoteWire.isPidfd(descriptors[0]),
                hostPID > 1, hostPID != getpid(), zygotePID.map({ ZygoteWire.parent(of: hostPID) == $0 }) ?? true
            else {
                close(descriptors[0])
                settle(id, with: .failure(Failure(description: "its zygote answered the fork without a pidfd of a child of its own")))
                return
            }
            settle(id, with: .success(Forked(pid: hostPID, reportedPID: pid, pidfd: descriptors[0], stdout: -1, stderr: -1)))
        } else if let error = message.error {
            descriptors.forEach { close($0) }
            let reason = "its zygote could not fork: \(error)"
            if let id = message.failed { settle(id, with: .failure(Failure(description: reason))) } else { settleAll(failing: reason) }
        } else if let pid = message.exited, let status = message.status {
            descriptors.forEach { close($0) }
            state.withLock { state in
                if state.made.remove(pid) != nil { state.statuses[pid] = status }
            }
        } else {
            descriptors.forEach { close($0) }
        }
    }
}
