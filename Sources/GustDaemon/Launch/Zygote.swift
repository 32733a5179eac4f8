#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
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
/// A reader thread takes every message; nothing here blocks an event loop.
final class Zygote: Sendable {
    let id: String
    let process: InstanceProcess
    private let control: Int32
    private let state = Mutex(State())

    private struct State {
        var ready: CheckedContinuation<Readiness, any Error>?
        var readiness: Result<Readiness, any Error>?
        var forks: [String: CheckedContinuation<Forked, any Error>] = [:]
        var statuses: [pid_t: Int32] = [:]
        var closed = false
    }

    /// What the zygote said once it had imported the app.
    enum Readiness: Sendable, Equatable {
        case ready
        /// It cannot be forked safely: the reason (a thread or socket opened at import).
        case unforkable(String)
    }

    /// A fork, as the zygote answered: gustd owns the descriptors.
    struct Forked: Sendable {
        var pid: pid_t
        var pidfd: Int32
        var stdout: Int32
        var stderr: Int32
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts a zygote (`executable` as an instance starts, with `GUST_ZYGOTE_FD=3`); returns
    /// at once. `readiness()` tells when it has imported the app.
    init(
        id: String, executable: String, environment: [String: String], directory: String,
        onOutput: @escaping @Sendable ([String], InstanceProcess.StandardStream) -> Void,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws {
        var pair: [Int32] = [0, 0]
        guard gust_seqpacket_pair(&pair) == 0 else {
            throw Failure(description: "Cannot create a zygote's control socket: \(String(cString: strerror(errno)))")
        }
        var environment = environment
        environment["GUST_ZYGOTE_FD"] = "3"
        do {
            process = try InstanceProcess(
                executable: executable, environment: environment, directory: directory,
                marker: InstanceStragglers.marker(id: id), passing: [pair[1]], onOutput: onOutput, onExit: onExit
            )
        } catch {
            close(pair[0])
            close(pair[1])
            throw error
        }
        close(pair[1])
        self.id = id
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

    /// Asks for a fork with `environment` (its GUST_INSTANCE, socket, records token) serving on
    /// `socketPath`, which the zygote binds before it forks: gustd may connect as soon as this returns.
    /// `cgroupProcs`: the instance's `cgroup.procs` files, which the fork writes itself into before anything else.
    func fork(id: String, socketPath: String, environment: [String: String], internalToken: String, cgroupProcs: [String] = []) async throws -> Forked {
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard gust_pipe_cloexec(&out) == 0 else { throw Failure(description: "Cannot create a pipe: \(String(cString: strerror(errno)))") }
        guard gust_pipe_cloexec(&err) == 0 else {
            close(out[0])
            close(out[1])
            throw Failure(description: "Cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let request: [String: Any] = [
            "fork": id, "socket": socketPath, "environment": environment, "internal_token": internalToken, "cgroups": cgroupProcs,
        ]
        let body = try JSONSerialization.data(withJSONObject: request)
        do {
            var forked = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Forked, any Error>) in
                let closed = state.withLock { state in
                    if !state.closed { state.forks[id] = continuation }
                    return state.closed
                }
                if closed { return continuation.resume(throwing: Failure(description: "its zygote has exited")) }
                let sent = body.withUnsafeBytes { bytes in
                    [out[1], err[1]].withUnsafeBufferPointer { gust_send_with_fds(control, bytes.baseAddress, bytes.count, $0.baseAddress, 2) }
                }
                close(out[1])
                close(err[1])
                if sent < 0 {
                    let message = String(cString: strerror(errno))
                    state.withLock { $0.forks.removeValue(forKey: id) }?.resume(throwing: Failure(description: "cannot reach its zygote: \(message)"))
                }
            }
            forked.stdout = out[0]
            forked.stderr = err[0]
            return forked
        } catch {
            close(out[0])
            close(err[0])
            throw error
        }
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
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds: [Int32] = [-1, -1, -1, -1]
        while true {
            var count: Int32 = 0
            let received = buffer.withUnsafeMutableBytes { bytes in
                fds.withUnsafeMutableBufferPointer { gust_receive_with_fds(control, bytes.baseAddress, bytes.count, $0.baseAddress, 4, &count) }
            }
            guard received > 0 else { break }
            let descriptors = Array(fds.prefix(Int(count)))
            guard let message = try? JSONDecoder().decode(Message.self, from: Data(buffer[0..<received])) else {
                descriptors.forEach { close($0) }
                continue
            }
            handle(message, descriptors)
        }
        close(control)
        let (ready, forks) = state.withLock { state -> (CheckedContinuation<Readiness, any Error>?, [String: CheckedContinuation<Forked, any Error>]) in
            state.closed = true
            defer {
                state.ready = nil
                state.forks = [:]
            }
            if state.readiness == nil { state.readiness = .failure(Failure(description: "its zygote exited while importing the app")) }
            return (state.ready, state.forks)
        }
        ready?.resume(throwing: Failure(description: "its zygote exited while importing the app"))
        for (_, waiter) in forks { waiter.resume(throwing: Failure(description: "its zygote exited before it forked")) }
    }

    private func handle(_ message: Message, _ descriptors: [Int32]) {
        if let ready = message.ready {
            descriptors.forEach { close($0) }
            let readiness: Readiness = ready ? .ready : .unforkable(message.reason ?? "it did not say why")
            state.withLock { state in
                state.readiness = .success(readiness)
                defer { state.ready = nil }
                return state.ready
            }?.resume(returning: readiness)
        } else if let id = message.forked, let pid = message.pid, descriptors.count == 1 {
            guard let waiter = state.withLock({ $0.forks.removeValue(forKey: id) }) else {
                close(descriptors[0])
                return
            }
            waiter.resume(returning: Forked(pid: pid, pidfd: descriptors[0], stdout: -1, stderr: -1))
        } else if let error = message.error {
            descriptors.forEach { close($0) }
            let waiters = state.withLock { state -> [CheckedContinuation<Forked, any Error>] in
                if let id = message.failed { return state.forks.removeValue(forKey: id).map { [$0] } ?? [] }
                defer { state.forks = [:] }
                return Array(state.forks.values)
            }
            waiters.forEach { $0.resume(throwing: Failure(description: "its zygote could not fork: \(error)")) }
        } else if let pid = message.exited, let status = message.status {
            descriptors.forEach { close($0) }
            state.withLock { $0.statuses[pid] = status }
        } else {
            descriptors.forEach { close($0) }
        }
    }
}
