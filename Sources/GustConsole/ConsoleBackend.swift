public import Foundation
public import GustCore

/// What the console needs of gustd: the store, what the supervisor serves, and
/// the same paths a deploy, an op call and the records API take. gustd gives
/// the real one (GustDaemon's `SupervisorConsoleBackend`); tests give a fake.
public protocol ConsoleBackend: Sendable {
    var home: GustHome { get }
    /// Runs `body` with the store, off the event loops.
    func withStore<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T
    /// Runs blocking file work (reading an app's log) off the event loops and without the store:
    /// the store's one connection is every private app's token check's too, and must not wait on it.
    func offTheLoops<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T
    /// What serves the app now, if anything.
    func live(_ app: AppName) -> ConsoleLiveState?
    /// Calls and errors per minute, oldest first, for the last `minutes` minutes (this one included).
    func history(_ app: AppName, minutes: Int) -> [ConsoleMinute]
    /// The same minutes per function (op, handler, schedule, hook) with a call in them, busiest first.
    func functionHistory(_ app: AppName, minutes: Int) -> [ConsoleFunctionHistory]
    func instances(_ app: AppName) async -> [InstanceStatus]
    /// The ops the live release declares, once an instance of it has said.
    func operations(_ app: AppName) -> [String]
    /// Starts, checks and switches to `version` as a deploy does; returns the app's URL.
    func deploy(_ app: AppName, version: Int) async throws -> String
    /// Calls an op as the gateway would (the same pool, metrics and logs).
    func call(_ app: AppName, op: String, arguments: Data) async -> ConsoleAnswer
    func records(_ app: AppName, type: String, query: RecordStore.Query) async throws -> [RecordStore.Record]
    func record(_ app: AppName, type: String, id: String) async throws -> RecordStore.Record
    /// Saves through the records API's path: its before-hooks may refuse (a `GustError` with their message).
    func saveRecord(_ app: AppName, type: String, id: String?, fields: RecordStore.Record) async throws -> RecordStore.Record
    func deleteRecord(_ app: AppName, type: String, id: String) async throws
    /// The record types the app's store holds.
    func recordTypes(_ app: AppName) async -> [String]
    /// Re-reads the store and converges, as `gust scale` asks a running gustd to: new scale rules apply at once.
    func reconcile() async
    /// Re-reads the apps' domains, as `gust domains add/remove` asks a running gustd to.
    func refreshDomains() async
}

/// The live release of an app as the supervisor serves it.
public struct ConsoleLiveState: Sendable, Equatable {
    public var version: Int
    /// `running`, `starting`, `idle` or `crashing`.
    public var state: String
    public var instances: Int
    public var error: String?

    public init(version: Int, state: String, instances: Int, error: String? = nil) {
        self.version = version
        self.state = state
        self.instances = instances
        self.error = error
    }
}

/// One minute of an app: its calls, their latency, and its instances.
public struct ConsoleMinute: Sendable, Equatable {
    public var calls: Int
    public var errors: Int
    /// nil in a minute without calls.
    public var latency: ConsoleLatency?
    public var instances: ConsoleInstanceCounts

    public init(calls: Int, errors: Int, latency: ConsoleLatency? = nil, instances: ConsoleInstanceCounts = ConsoleInstanceCounts()) {
        self.calls = calls
        self.errors = errors
        self.latency = latency
        self.instances = instances
    }
}

/// One function's minutes: `kind` is `op`, `handler`, `schedule` or `hook`; `name` its metric label
/// (as the manifest declares it, or `other`), which the app controls: escape it.
public struct ConsoleFunctionHistory: Sendable, Equatable {
    public var kind: String
    public var name: String
    public var minutes: [ConsoleMinute]

    public init(kind: String, name: String, minutes: [ConsoleMinute]) {
        self.kind = kind
        self.name = name
        self.minutes = minutes
    }
}

/// A minute's latency percentiles, in milliseconds.
public struct ConsoleLatency: Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double

    public init(p50: Double, p95: Double, p99: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
    }
}

/// The most instances an app's pool had in a minute, by state.
public struct ConsoleInstanceCounts: Sendable, Equatable {
    public var starting: Int
    public var idle: Int
    public var busy: Int

    public init(starting: Int = 0, idle: Int = 0, busy: Int = 0) {
        self.starting = starting
        self.idle = idle
        self.busy = busy
    }
}

/// What an op call answered.
public struct ConsoleAnswer: Sendable, Equatable {
    public var status: Int
    public var body: String

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}
