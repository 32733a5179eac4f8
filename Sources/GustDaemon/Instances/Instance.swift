import Foundation
import GustBuild
import GustCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A running instance of one release: its process and its connections.
///
/// Which calls an instance takes, and how many at once, is its pool's
/// decision (`Pool`): this type only sends them. Each call has a connection of
/// its own (HTTP/1.1 over the instance's Unix socket, one exchange at a time),
/// taken from the idle ones, preferring one whose channel lives on the event
/// loop the caller runs on, and made when none is idle.
actor Instance {
    nonisolated let id: String
    nonisolated let app: AppName
    nonisolated let version: Int
    nonisolated let manifest: FunctionManifest
    nonisolated let process: InstanceProcess
    nonisolated let socketPath: String
    nonisolated let started: ContinuousClock.Instant
    /// Its cgroup, when limits are enforced: whether the kernel killed it for memory.
    nonisolated let cgroup: InstanceCgroup?
    /// Whether `memoryBytes` is its cgroup's (a sandboxed instance: its process is the sandbox's bwrap).
    private nonisolated let memoryFromCgroup: Bool
    /// The instance's secret for its internal surface, sent on every `/_gust/` call.
    private let internalToken: String
    let records: InstanceRecords
    /// Where its output goes (also for upgraded connections, `Instance+Upgrade.swift`).
    let output: InstanceOutput

    /// Its connections, under a lock rather than the actor's isolation: the gateway's lane for
    /// calls takes and gives them back on an event loop, without a task (`Instance+Lane.swift`).
    nonisolated let connections: Mutex<Connections>
    private let onStop: @Sendable () -> Void
    /// Whether gustd asked it to stop (an exit then is no crash). `Connections.stopped` is the one
    /// flag: set by `stop()` under the lock that hands out connections, so no call takes one after.
    nonisolated var isStopping: Bool { connections.withLock { $0.stopped } }
    /// A call passed its time limit (the process is in an unknown state) or
    /// lost its connection: the instance must not take another call.
    nonisolated var isBroken: Bool { broken.load(ordering: .relaxed) }
    private nonisolated let broken = Atomic(false)

    /// A call (on a connection of its own, an upgrade; or one that failed) left the instance in an unknown state.
    nonisolated func markBroken() { broken.store(true, ordering: .relaxed) }

    /// An instance's connections: the idle ones by the event loop their channel lives on, and all open.
    struct Connections {
        /// Idle connections, one stack per event loop. A list searched by loop rather than a
        /// dictionary: there are no more loops than cores, and a dictionary's element changed in
        /// place goes through its `_modify` accessor, a coroutine whose frame was allocated on
        /// the heap, a `malloc` for every call taking a connection and another giving it back.
        var idle: [(loop: ObjectIdentifier, connections: [InstanceConnection])] = []
        var open: [InstanceConnection] = []
        var stopped = false
        /// Whether a call has taken a connection yet: the first takes the one the launch opened.
        var tookOne = false

        /// An idle connection for a call on `loop` (nil: a caller on no event loop): one whose
        /// channel lives there; for the instance's first call, or a caller on no loop, any. The
        /// first call so takes the connection the launch opened (and read the manifest on): a new
        /// one would cost a connect and, in the instance, an accept and a thread, all on the way
        /// to the first answer after a start. Nil when the instance stopped or none fits.
        mutating func take(on loop: ObjectIdentifier?) -> InstanceConnection? {
            guard !stopped else { return nil }
            let first = !tookOne
            tookOne = true
            if let loop, let connection = popIdle(loop) { return connection }
            guard loop == nil || first, let key = idle.first(where: { !$0.connections.isEmpty })?.loop else { return nil }
            return popIdle(key)
        }

        /// An open idle connection on `loop`, dropping closed ones on the way.
        mutating func popIdle(_ loop: ObjectIdentifier) -> InstanceConnection? {
            guard let index = idle.firstIndex(where: { $0.loop == loop }) else { return nil }
            while let connection = idle[index].connections.popLast() {
                if connection.isOpen { return connection }
                open.removeAll { $0 === connection }
            }
            return nil
        }

        mutating func give(_ connection: InstanceConnection) {
            guard connection.isOpen, !stopped else {
                open.removeAll { $0 === connection }
                return
            }
            let loop = ObjectIdentifier(connection.eventLoop)
            if let index = idle.firstIndex(where: { $0.loop == loop }) {
                idle[index].connections.append(connection)
            } else {
                idle.append((loop, [connection]))
            }
        }

        /// A connection that will not come back (a streamed answer's, closed once it ends).
        mutating func forget(_ connection: InstanceConnection) {
            open.removeAll { $0 === connection }
        }
    }

    init(
        id: String, app: AppName, version: Int, manifest: FunctionManifest, process: InstanceProcess,
        socketPath: String, connection: InstanceConnection, records: InstanceRecords,
        output: InstanceOutput, cgroup: InstanceCgroup? = nil, memoryFromCgroup: Bool = false,
        onStop: @escaping @Sendable () -> Void = {}
    ) {
        self.cgroup = cgroup
        self.memoryFromCgroup = memoryFromCgroup
        self.onStop = onStop
        self.output = output
        self.id = id
        self.app = app
        self.version = version
        self.manifest = manifest
        self.process = process
        self.socketPath = socketPath
        self.records = records
        self.started = .now
        internalToken = connection.internalToken
        connections = Mutex(Connections(idle: [(ObjectIdentifier(connection.eventLoop), [connection])], open: [connection]))
    }

    /// Its memory for `gust ps`: under the sandbox its cgroup's (the app's processes, not the
    /// bwrap's), else its process's PSS; the process's too where there is no cgroup.
    nonisolated var memoryBytes: Int? {
        if memoryFromCgroup, let bytes = cgroup?.memoryBytes { return bytes }
        return InstanceStatus.memory(of: process.pid)
    }

    /// Sends one call its pool gave this instance. `maxBodyBytes`: the most of its answer gustd
    /// collects (past it, `tooLarge`); gustd's own calls set what they read of one.
    func call(
        _ request: InstanceRequest, timeout: Duration, maxBodyBytes: Int = InstanceConnection.wholeAnswerLimit
    ) async throws -> InstanceResponse {
        // A runtime that tags its output with call ids needs no pause: every line names its call.
        // Any other waits (at most 50 ms) until what the previous call wrote is delivered: a reader
        // thread that had not taken it yet would credit it to this call.
        if !manifest.takesCallIDs { await outputIsDelivered(within: .milliseconds(50)) }
        return try await send(request, timeout: timeout, maxBodyBytes: maxBodyBytes)
    }

    /// Sends a hook caused by a call this instance is serving: that call is
    /// blocked until the hook answers, so it runs outside the pool's count.
    func callNested(
        _ request: InstanceRequest, timeout: Duration, maxBodyBytes: Int = InstanceConnection.wholeAnswerLimit
    ) async throws -> InstanceResponse {
        try await send(request, timeout: timeout, maxBodyBytes: maxBodyBytes)
    }

    /// Sends `request` on a connection of its own, crediting what the
    /// instance prints meanwhile to its function.
    private func send(_ request: InstanceRequest, timeout: Duration, maxBodyBytes: Int) async throws -> InstanceResponse {
        let connection = try await take()
        var request = request
        let function = request.function
        let call = manifest.takesCallIDs ? CallTag.next() : nil
        request.callTag = call
        output.begin(function, call: call, request: request.headers.first(name: "X-Request-Id"))
        do {
            let response = try await connection.send(request, timeout: timeout, maxBodyBytes: maxBodyBytes)
            if let rest = response.rest {
                // Busy until its answer ends, then closed: it never goes back to the idle ones.
                // What it prints until then is still its function's.
                connections.withLock { $0.forget(connection) }
                let output = self.output
                rest.done.whenComplete { _ in
                    connection.close()
                    output.end(function, call: call)
                }
            } else {
                output.end(function, call: call)
                give(connection)
            }
            return response
        } catch {
            output.end(function, call: call)
            give(connection)
            markBroken()
            throw error
        }
    }

    /// An idle connection, best one on the event loop this code runs on: gustd
    /// runs Swift Concurrency on SwiftNIO's loops (Sources/gustd/main.swift),
    /// and a call sent and answered on the loop that read the caller's request
    /// never waits for another thread to wake up, which is most of what a hop
    /// through gustd costs. Else one made there (`Connections.take` says which).
    private func take() async throws -> InstanceConnection {
        let here = MultiThreadedEventLoopGroup.currentEventLoop
        if let taken = try idleConnection(on: here.map(ObjectIdentifier.init)) { return taken }
        return try await connect(on: here ?? MultiThreadedEventLoopGroup.singleton.next()).get()
    }

    /// `take` for a caller that is not a task (the gateway's lane, once a waiting call got this
    /// instance): an idle connection on `loop`, the launch's for the first call, else one made
    /// on `loop`. Fails with `connectionClosed` if the instance stopped or its socket is gone.
    nonisolated func connection(on loop: any EventLoop) -> EventLoopFuture<InstanceConnection> {
        do {
            if let taken = try idleConnection(on: ObjectIdentifier(loop)) { return loop.makeSucceededFuture(taken) }
        } catch {
            return loop.makeFailedFuture(error)
        }
        return connect(on: loop)
    }

    /// The idle connection `Connections.take` picks for `loop`, nil when none fits; fails once the
    /// instance stopped.
    private nonisolated func idleConnection(on loop: ObjectIdentifier?) throws(InstanceCallError) -> InstanceConnection? {
        let (taken, stopped) = connections.withLock { ($0.take(on: loop), $0.stopped) }
        guard !stopped else { throw .connectionClosed }
        return taken
    }

    /// A new connection to the instance on `loop`, counted among its open ones (closed at once
    /// if the instance stopped meanwhile). A connect that fails marks the instance broken.
    private nonisolated func connect(on loop: any EventLoop) -> EventLoopFuture<InstanceConnection> {
        InstanceConnection.connecting(socketPath: socketPath, below: records.directory.path, internalToken: internalToken, group: loop)
            .flatMapErrorThrowing { [self] _ in
                markBroken()  // its socket is gone: the process is
                throw InstanceCallError.connectionClosed
            }
            .flatMapThrowing { [self] made in
                let kept = connections.withLock { connections in
                    guard !connections.stopped else { return false }
                    connections.open.append(made)
                    return true
                }
                guard kept else {
                    made.close()
                    throw InstanceCallError.connectionClosed
                }
                return made
            }
    }

    private func give(_ connection: InstanceConnection) {
        connections.withLock { $0.give(connection) }
    }

    /// Waits, at most `limit`, until everything the process had written when asked is in the app's
    /// log. The runtimes flush before they answer, so what a call printed is in the pipes by the
    /// time its answer arrives; a reader thread may just not have delivered it yet. A schedule
    /// run waits for it before it logs its end, so the run's lines come before "Run finished"
    /// and `gust dev --run` finds them.
    nonisolated func outputIsDelivered(within limit: Duration) async {
        await process.outputIsDelivered(within: limit)
    }

    /// Whether its process was killed for going over its memory limit: asked after a call lost its
    /// connection, so it waits (briefly) for the process to exit and its cgroup to be read.
    nonisolated func ranOutOfMemory() async -> Bool {
        guard let cgroup else { return false }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.process.exitStatus() }
            group.addTask { try? await Task.sleep(for: .seconds(2)) }
            await group.next()
            group.cancelAll()
        }
        return cgroup.sawOutOfMemory  // exited or not: what the cgroup counts, or what finish recorded
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and forgets its files.
    func stop(grace: Duration = .seconds(3)) async {
        let open = connections.withLock { connections in
            connections.stopped = true
            defer { connections = Connections(stopped: true, tookOne: true) }
            return connections.open
        }
        onStop()
        open.forEach { $0.close() }
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
    private let running = Mutex(RunningFunctions())
    private let calls = Mutex(CallFunctions())
    let log: AppLog
    let version: Int
    let id: String
    let secrets: [String]
    /// The app's bound on how fast it logs; nil: unbounded.
    let throttle: LogThrottle?

    init(log: AppLog, version: Int, id: String, secrets: [String], throttle: LogThrottle? = nil) {
        self.throttle = throttle
        self.log = log
        self.version = version
        self.id = id
        self.secrets = secrets
    }

    func relay(to progress: (@Sendable (String) -> Void)?) { relay.withLock { $0 = progress } }

    /// The instance's output has ended: note lines the throttle dropped that no later line noted.
    func finish() {
        guard let throttle else { return }
        let dropped = throttle.takeDropped()
        guard dropped > 0 else { return }
        try? log.append([LogEntry(release: version, instance: id, stream: "gustd", function: nil, line: throttle.note(dropped))])
    }

    /// Output from now on belongs to `function` (a call into the instance
    /// starts), until the matching `end`. Nil (gustd's own calls) changes nothing.
    /// With protocol 2, `call` is the call's id: lines tagged with it are its own, however calls overlap,
    /// and are stored with the call's `request` id (`X-Request-Id`), which `gust call -v` looks for.
    func begin(_ function: String?, call: String? = nil, request: String? = nil) {
        guard let function else { return }
        running.withLock { $0.begin(function) }
        if let call { calls.withLock { $0.begin(call, function, request: request) } }
    }

    func end(_ function: String?, call: String? = nil) {
        guard function != nil else { return }
        running.withLock { $0.end() }
        if let call { calls.withLock { $0.end(call) } }
    }

    func deliver(_ tagged: [String], stream: String) {
        let untagged = running.withLock { $0.current(at: .now) }
        var entries: [LogEntry] = []
        var admitted = tagged
        if let throttle {
            let (kept, dropped) = throttle.admit(tagged)
            if dropped > 0 { entries.append(LogEntry(release: version, instance: id, stream: "gustd", function: nil, line: throttle.note(dropped))) }
            admitted = kept
        }
        var lines: [String] = []
        lines.reserveCapacity(admitted.count)
        entries += admitted.map { raw in
            guard let tagged = CallTag.split(raw) else {
                lines.append(raw)
                return LogEntry(release: version, instance: id, stream: stream, function: untagged, line: raw)
            }
            lines.append(tagged.line)
            let credited = calls.withLock { $0.credit(of: tagged.call) }
            return LogEntry(
                release: version, instance: id, stream: stream, function: credited?.function ?? untagged, line: tagged.line,
                request: credited?.request
            )
        }
        try? log.append(entries, masking: secrets)
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

/// Which function each call id names (protocol 2), kept a while after the call
/// ends: a line can reach gustd through the pipe just after its call answered.
struct CallFunctions: Sendable {
    static let remembered = 256
    /// The function a call runs and the request id it came with.
    struct Credit: Sendable, Equatable {
        var function: String
        var request: String?
    }
    private var running: [String: Credit] = [:]
    /// Ended calls, oldest first, at most `remembered`: a ring, as one drops out with every call
    /// once it is full (an array's `removeFirst` moved the other 255 each time).
    private var ended = CircularBuffer<(call: String, credit: Credit)>(initialCapacity: remembered)

    mutating func begin(_ call: String, _ function: String, request: String? = nil) {
        running[call] = Credit(function: function, request: request)
    }

    mutating func end(_ call: String) {
        guard let credit = running.removeValue(forKey: call) else { return }
        if ended.count == Self.remembered { ended.removeFirst() }
        ended.append((call, credit))
    }

    func credit(of call: String) -> Credit? {
        running[call] ?? ended.last(where: { $0.call == call })?.credit
    }

    func function(of call: String) -> String? { credit(of: call)?.function }
}

/// Call ids of runtime protocol 2: gustd sends one with every call in
/// `X-Gust-Call`, and the runtime starts each line the call prints with
/// `RS ID US` (bytes 0x1E, the id's digits, 0x1F), which gustd strips.
enum CallTag {
    static let header = "X-Gust-Call"
    private static let counter = Atomic<UInt64>(0)

    /// A new id, unique within this gustd: a decimal number.
    static func next() -> String { String(counter.add(1, ordering: .relaxed).newValue) }

    /// The call id a line is tagged with and the line without its tag; nil if it has none.
    static func split(_ line: String) -> (call: String, line: String)? {
        let bytes = line.utf8
        guard bytes.first == 0x1E else { return nil }
        var index = bytes.index(after: bytes.startIndex)
        var digits = 0
        while index != bytes.endIndex, digits <= 20 {
            let byte = bytes[index]
            if byte == 0x1F {
                guard digits > 0 else { return nil }
                let call = String(line[line.index(after: line.startIndex)..<index])
                return (call, String(line[bytes.index(after: index)...]))
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            digits += 1
            index = bytes.index(after: index)
        }
        return nil
    }
}
