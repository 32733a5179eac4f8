import Foundation
import GustCore
import NIOCore
import NIOHTTP1
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

    /// Extra connections for hooks nested in the request holding the gate (docs/runtime-protocol.md).
    private var spare: [InstanceConnection] = []
    private let onStop: @Sendable () -> Void
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    init(
        id: String, app: AppName, version: Int, manifest: FunctionManifest, process: InstanceProcess,
        socketPath: String, connection: InstanceConnection, records: InstanceRecords,
        onStop: @escaping @Sendable () -> Void = {}
    ) {
        self.onStop = onStop
        self.id = id
        self.app = app
        self.version = version
        self.manifest = manifest
        self.process = process
        self.socketPath = socketPath
        self.connection = connection
        self.records = records
    }

    /// Sends one request when the instance is free.
    func call(_ request: InstanceRequest, timeout: Duration) async throws -> InstanceResponse {
        await acquire()
        defer { release() }
        return try await connection.send(request, timeout: timeout)
    }

    /// Sends a hook request caused by the request that holds the gate, past
    /// the gate and on a connection of its own: that request is blocked until
    /// this answers, so the instance runs one thing at a time all the same.
    func callNested(_ request: InstanceRequest, timeout: Duration) async throws -> InstanceResponse {
        let connection: InstanceConnection
        if let reused = spare.popLast(), reused.isOpen { connection = reused } else {
            connection = try await InstanceConnection.connect(socketPath: socketPath)
        }
        let response = try await connection.send(request, timeout: timeout)
        if connection.isOpen { spare.append(connection) }
        return response
    }

    /// Returns once no request is running or waiting.
    func drained() async {
        if !busy && waiters.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and forgets its files.
    func stop(grace: Duration = .seconds(3)) async {
        onStop()
        connection.close()
        spare.forEach { $0.close() }
        spare = []
        await process.stop(grace: grace)
        records.forget(id: id)
    }

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            busy = false
            let idle = idleWaiters
            idleWaiters = []
            idle.forEach { $0.resume() }
        } else {
            waiters.removeFirst().resume()  // stays busy: handed straight to the next caller
        }
    }
}

/// Where output of an instance goes: always the app's log; during start-up
/// also the deploy's progress, so that a traceback reaches the pusher.
final class InstanceOutput: Sendable {
    private let relay = Mutex<(@Sendable (String) -> Void)?>(nil)
    private let recent = Mutex<[String]>([])
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

    func deliver(_ lines: [String]) {
        let entries = lines.map { LogEntry(release: version, instance: id, stream: "output", function: nil, line: $0) }
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
