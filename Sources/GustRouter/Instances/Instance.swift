import Foundation
import GustCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A running instance of one release: its process, its connection, and a gate
/// that lets one request through at a time (the runtimes' contract today).
///
/// Several instances per app, idle stop and pre-forked workers fit around this
/// type: the supervisor holds a list of them per app and picks one; nothing
/// here assumes it is the only one.
actor Instance {
    nonisolated let id: String
    nonisolated let app: AppName
    nonisolated let version: Int
    nonisolated let manifest: FunctionManifest
    nonisolated let process: InstanceProcess
    nonisolated let socketPath: String
    private let connection: InstanceConnection
    private let records: InstanceRecords
    private let output: InstanceOutput

    /// Extra connections for hooks nested in the request holding the gate (docs/runtime-protocol.md).
    private var spare: [InstanceConnection] = []
    /// A connection per event loop besides the first one's, made on first use: a call
    /// then stays on the loop that read the caller's request (see `connectionForThisLoop`).
    private var perLoop: [ObjectIdentifier: InstanceConnection] = [:]
    private let onStop: @Sendable () -> Void
    private let gate = CallGate()

    init(
        id: String, app: AppName, version: Int, manifest: FunctionManifest, process: InstanceProcess,
        socketPath: String, connection: InstanceConnection, records: InstanceRecords,
        output: InstanceOutput, onStop: @escaping @Sendable () -> Void = {}
    ) {
        self.onStop = onStop
        self.output = output
        self.id = id
        self.app = app
        self.version = version
        self.manifest = manifest
        self.process = process
        self.socketPath = socketPath
        self.connection = connection
        self.records = records
    }

    /// Sends one request when the instance is free, within `timeout` from now (waiting included).
    func call(_ request: InstanceRequest, timeout: Duration) async throws -> InstanceResponse {
        try await call(deadline: .now + timeout) { request }
    }

    /// Sends the request `makeRequest` gives once the instance is free: the
    /// caller's body is read only then, so a waiting call holds none of it.
    /// `deadline` counts from the call's arrival; past it while waiting, or
    /// once `clientGone` completes, the call leaves the queue without running
    /// (`CallGateError`). Once sent, the rest of the time is the call's limit.
    func call(
        deadline: ContinuousClock.Instant, clientGone: (@Sendable () async -> EventLoopFuture<Void>?)? = nil,
        _ makeRequest: @Sendable () async throws -> InstanceRequest
    ) async throws -> InstanceResponse {
        try await gate.enter(deadline: deadline, clientGone: clientGone)
        defer { gate.leave() }
        guard deadline > .now else { throw CallGateError.deadlinePassed }  // handed the gate just too late
        let request = try await makeRequest()
        let remaining = deadline - .now
        guard remaining > .zero else { throw CallGateError.deadlinePassed }
        let connection = await connectionForThisLoop()
        await outputOfTheLastCallIsRead()
        return try await send(request, on: connection, timeout: remaining)
    }

    /// Sends `request`, crediting what the instance prints meanwhile to its function.
    private func send(_ request: InstanceRequest, on connection: InstanceConnection, timeout: Duration) async throws -> InstanceResponse {
        let function = request.function
        output.begin(function)
        defer { output.end(function) }
        return try await connection.send(request, timeout: timeout)
    }

    /// The connection whose channel lives on the event loop this code runs on.
    /// gustd runs Swift Concurrency on SwiftNIO's loops (Sources/gustd/main.swift),
    /// and a task stays on the loop it started on; a call sent and answered on
    /// the loop that read the caller's request never waits for another thread to
    /// wake up, which is most of what a hop through gustd costs. Off the loops,
    /// or if a connection cannot be made, the first connection serves.
    private func connectionForThisLoop() async -> InstanceConnection {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop, loop !== connection.eventLoop else { return connection }
        let key = ObjectIdentifier(loop)
        if let existing = perLoop[key], existing.isOpen { return existing }
        guard let made = try? await InstanceConnection.connect(socketPath: socketPath, group: loop) else { return connection }
        perLoop[key] = made
        return made
    }

    /// Waits (at most 50 ms) until the pipes hold nothing the previous call
    /// wrote. The runtimes flush before they answer, so what a call printed is
    /// in the pipes by the time its answer arrives; a reader thread may just
    /// not have taken it yet, and would then credit it to this call.
    private func outputOfTheLastCallIsRead() async {
        for _ in 0..<50 where process.unreadOutputBytes > 0 {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Runs `body` holding the gate, for a record write from outside whose
    /// hooks then go past it (`callNested`), as a function's own writes do.
    func withGate<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await gate.enter()
        defer { gate.leave() }
        return try await body()
    }

    /// Sends a hook request caused by the request that holds the gate, past
    /// the gate and on a connection of its own: that request is blocked until
    /// this answers, so the instance runs one thing at a time all the same.
    func callNested(_ request: InstanceRequest, timeout: Duration) async throws -> InstanceResponse {
        let connection: InstanceConnection
        if let reused = spare.popLast(), reused.isOpen { connection = reused } else {
            connection = try await InstanceConnection.connect(socketPath: socketPath)
        }
        let response = try await send(request, on: connection, timeout: timeout)
        if connection.isOpen { spare.append(connection) }
        return response
    }

    /// Returns once no request is running or waiting.
    func drained() async {
        await gate.drained()
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and forgets its files.
    func stop(grace: Duration = .seconds(3)) async {
        onStop()
        connection.close()
        spare.forEach { $0.close() }
        spare = []
        perLoop.values.forEach { $0.close() }
        perLoop = [:]
        await process.stop(grace: grace)
        records.forget(id: id)
    }
}

/// Where output of an instance goes: always the app's log, each line with its
/// stream and the function that was running when it came (so `gust logs --function` finds
/// it); during start-up also the deploy's progress, so that a traceback
/// reaches the pusher.
final class InstanceOutput: Sendable {
    private let relay = Mutex<(@Sendable (String) -> Void)?>(nil)
    private let recent = Mutex<[String]>([])
    private let running = Mutex(RunningFunctions())
    let log: AppLog
    let version: Int
    let id: String
    let secrets: [String]

    init(log: AppLog, version: Int, id: String, secrets: [String]) {
        self.log = log
        self.version = version
        self.id = id
        self.secrets = secrets
    }

    func relay(to progress: (@Sendable (String) -> Void)?) { relay.withLock { $0 = progress } }

    /// The last lines written, for an error report.
    var tail: [String] { recent.withLock { $0 } }

    /// Output from now on belongs to `function` (a call into the instance
    /// starts), until the matching `end`. Nil (gustd's own calls) changes nothing.
    func begin(_ function: String?) {
        if let function { running.withLock { $0.begin(function) } }
    }

    func end(_ function: String?) {
        if function != nil { running.withLock { $0.end() } }
    }

    func deliver(_ lines: [String], stream: String) {
        let function = running.withLock { $0.current(at: .now) }
        let entries = lines.map { LogEntry(release: version, instance: id, stream: stream, function: function, line: $0) }
        try? log.append(entries, masking: secrets)
        recent.withLock { recent in
            recent.append(contentsOf: lines)
            if recent.count > 200 { recent.removeFirst(recent.count - 200) }
        }
        if let progress = relay.withLock({ $0 }) {
            for line in lines { progress(line.maskingSecrets(secrets)) }
        }
    }
}

/// Which function an instance is running: a stack, because a record hook can
/// run nested in the function whose write caused it. Output reaches gustd
/// through a pipe, so a line can arrive just after its call has answered; for
/// a moment after the last call ends, lines still belong to it.
struct RunningFunctions: Sendable {
    static let trailing: Duration = .milliseconds(250)
    private var stack: [String] = []
    private var last: (name: String, ended: ContinuousClock.Instant)?

    mutating func begin(_ function: String) { stack.append(function) }

    mutating func end() {
        guard let ended = stack.popLast() else { return }
        if stack.isEmpty { last = (ended, .now) }
    }

    func current(at now: ContinuousClock.Instant) -> String? {
        if let top = stack.last { return top }
        if let last, now - last.ended < Self.trailing { return last.name }
        return nil
    }
}
