import Foundation
import GustCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Who is asking for a records operation, when it is one of the app's own
/// functions (through the records channel): its instance, and the hook call
/// it is running, if any.
struct RecordsCaller: Sendable {
    var instance: Instance?
    /// The `X-Gust-Hook-Context` of the hook request the function is serving.
    var context: String?

    /// The caller of the records operation this task is running. Hooks that
    /// the operation causes go to this instance, past its gate: the function
    /// that asked is blocked until they answer, so nothing else runs there.
    @TaskLocal static var current: RecordsCaller?
}

/// The record services of every app, with hooks that run in the app's live
/// release, or for a write from an instance in that instance's own (docs/records.md).
/// One `RecordService` per app serialises its writes.
actor RecordsHub {
    private final class HookSet: Sendable {
        let hooks = Mutex<Set<String>>([])
    }

    private struct Entry {
        var service: RecordService
        var hooks: HookSet
        var limitsOf: Int?
        var limitRead: ContinuousClock.Instant
        /// The store's file as it was opened: `gust apps destroy` removes it while the entry holds it
        /// open, and an app made again under the name gets a new one.
        var file: FileIdentity
    }

    private let home: GustHome
    private let supervisor: Supervisor
    private var entries: [AppName: Entry] = [:]
    private var store: Store?
    /// The threads that run queries, one app's at a time.
    private let reads = RecordReads()

    /// It opens record stores and reads releases' config (SQLite): on the record
    /// stores' thread, never on an event loop.
    nonisolated var unownedExecutor: UnownedSerialExecutor { BlockingExecutor.records.asUnownedSerialExecutor() }

    init(home: GustHome, supervisor: Supervisor) {
        self.home = home
        self.supervisor = supervisor
    }

    func get(_ app: AppName, _ type: String, id: String) async throws -> RecordStore.Record {
        try await service(app).get(type, id: id)
    }

    /// A page of records as its JSON answer (`{"records": […]}`, with `more`
    /// and `next_offset` when the byte budget cut it short), queried and
    /// encoded on the threads kept for queries (`RecordReads`) when it is the
    /// app's turn: a page can be megabytes and a query seconds, and the event
    /// loops, the records thread and other apps' queries go on meanwhile.
    func page(_ app: AppName, _ type: String, _ query: RecordStore.Query) async throws -> ByteBuffer {
        let service = try await service(app)
        return try await reads.run(app) {
            ByteBuffer(bytes: try service.readPage(type, query).answer)
        }
    }

    /// The types that have records (for the console), read as a query is.
    func types(_ app: AppName) async throws -> [String] {
        let service = try await service(app)
        return try await reads.run(app) { try service.readTypes() }
    }

    func save(_ app: AppName, _ type: String, id: String?, fields: RecordStore.Record, caller: RecordsCaller?) async throws -> RecordStore.Record {
        try await CallMetrics.measureWrite(app, operation: "save") {
            let (service, live) = try await serviceForWrite(app)
            return try await write(type, live: live, caller: caller) { context in
                try await service.save(type, id: id, fields: fields, from: context)
            }
        }
    }

    func delete(_ app: AppName, _ type: String, id: String, caller: RecordsCaller?) async throws {
        try await CallMetrics.measureWrite(app, operation: "delete") {
            let (service, live) = try await serviceForWrite(app)
            try await write(type, live: live, caller: caller) { context in
                try await service.delete(type, id: id, from: context)
            }
        }
    }

    /// Runs a write with its caller known to the hooks it causes. A write from
    /// outside to a type with hooks first takes the live instance's gate and
    /// only then the app's write lock, the order a function's own write has
    /// (its call holds the gate): taking them the other way round, a function
    /// writing while an outside write waits for the gate would wait for each
    /// other until a time limit.
    private func write<T: Sendable>(
        _ type: String, live: LiveRelease?, caller: RecordsCaller?, _ body: @escaping @Sendable (String?) async throws -> T
    ) async throws -> T {
        if caller == nil, let live, live.manifest.hooks.contains(where: { $0.type == type }) {
            return try await supervisor.withInstance(live.app, deadline: .now + Self.writeLimit) { instance in
                try await RecordsCaller.$current.withValue(RecordsCaller(instance: instance)) { try await body(nil) }
            }
        }
        return try await RecordsCaller.$current.withValue(caller) { try await body(caller?.context) }
    }

    /// The app's service, made on first use, its disk limit applied (read again every few seconds).
    private func service(_ app: AppName) async throws -> RecordService {
        let (service, limit) = try serviceAndLimit(app)
        if let limit { try await service.limitDisk(toBytes: limit, app: app) }
        return service
    }

    /// The app's service, and its disk limit when it is due to be applied again.
    private func serviceAndLimit(_ app: AppName) throws -> (RecordService, Int??) {
        let file = home.data(app).appendingPathComponent("records.sqlite")
        // A store whose file is gone or replaced belonged to an app destroyed since: kept open (its
        // file unlinked, SQLite in WAL mode reads and writes on), it was served to the next app of
        // the name, its records and all. Checked on every use (a stat), not every few seconds: the
        // next app may be made and given a token within them.
        if let entry = entries[app], FileIdentity(of: file) != entry.file {
            entries[app] = nil
        }
        if let entry = entries[app] {
            if ContinuousClock.now - entry.limitRead > .seconds(2) {
                entries[app]?.limitRead = .now
                return try (entry.service, diskLimit(app))
            }
            return (entry.service, nil)
        }
        let hooks = HookSet()
        let log = supervisor.configuration.appLog(app)
        let recordStore = try RecordStore(home: home, app: app)
        try recordStore.limit(toBytes: try diskLimit(app), app: app)
        let service = RecordService(
            store: recordStore,
            // The hooks of the code that runs them: a hook runs in the instance whose write caused
            // it, and one of a release no longer live (a call in flight at a switch, draining) has
            // its own release's hooks, not the live release's, whose functions its code may lack.
            hooks: { RecordsCaller.current?.instance?.manifest.hookNames ?? hooks.hooks.withLock { $0 } },
            call: { [supervisor] event, type, record, original, context, timeout in
                try await CallMetrics.measureHook(app, event: event.rawValue, type: type, history: supervisor.consoleHistory) {
                    try await Self.runHook(supervisor, app, event, type, record, original, context, timeout)
                }
            },
            onAfterHookFailure: { hook, message in
                try? log.append([LogEntry(release: nil, instance: nil, stream: "gustd", function: "hook \(hook)", line: message)])
            }
        )
        guard let identity = FileIdentity(of: file) else {
            throw GustError.internal("\(app)'s records store at \(file.path) went away as it was opened.")
        }
        entries[app] = Entry(service: service, hooks: hooks, limitRead: .now, file: identity)
        return (service, nil)
    }

    /// `gust limits APP --disk` (else gustd's default): the records store's size bound.
    private func diskLimit(_ app: AppName) throws -> Int? {
        if store == nil { store = try Store(home: home) }
        return ((try? store!.limits(app)) ?? AppLimits()).over(supervisor.configuration.limitDefaults).disk
    }

    /// The live release of an app as a write needs it: which hooks it has.
    struct LiveRelease: Sendable {
        var app: AppName
        var version: Int
        var manifest: FunctionManifest
    }

    /// How long an outside write may wait for an instance to run its hooks.
    static let writeLimit: Duration = .seconds(30)

    /// The app's service with the hooks and limits of the live release (an
    /// instance is started if none has yet, so that a write never skips a hook
    /// for want of a manifest); no release when nothing is live.
    private func serviceForWrite(_ app: AppName) async throws -> (RecordService, LiveRelease?) {
        let service = try await service(app)
        let hooks = entries[app]!.hooks
        guard let (version, manifest) = try await supervisor.manifest(of: app, deadline: .now + Self.writeLimit) else {
            hooks.hooks.withLock { $0 = [] }
            return (service, nil)
        }
        hooks.hooks.withLock { $0 = manifest.hookNames }
        if entries[app]?.limitsOf != version {
            await service.setLimits(try limits(app, version: version))
            entries[app]?.limitsOf = version
        }
        return (service, LiveRelease(app: app, version: version, manifest: manifest))
    }

    /// `GUST_BEFORE_HOOK_TIMEOUT` and `GUST_AFTER_HOOK_TIMEOUT` of the release's config, else 10 s and 3 s.
    private func limits(_ app: AppName, version: Int) throws -> RecordService.Limits {
        if store == nil { store = try Store(home: home) }
        let config = try store!.requireRelease(app, version: version).config
        var limits = RecordService.Limits()
        // A value stored before `gust config set` checked it fails the write as gustd's error, with its hint.
        func timeout(_ name: String) throws -> Duration? {
            guard let text = config[name] else { return nil }
            do { return try HookTimeout.parse(text, name: name) } catch { throw GustError(error.message, code: 500, hint: error.hint) }
        }
        if let before = try timeout("GUST_BEFORE_HOOK_TIMEOUT") { limits.beforeHook = before }
        if let after = try timeout("GUST_AFTER_HOOK_TIMEOUT") { limits.afterHook = after }
        return limits
    }

    /// `POST /_gust/hooks/EVENT/TYPE` in the calling instance (past its gate),
    /// or else in the live instance (through its gate).
    private static func runHook(
        _ supervisor: Supervisor, _ app: AppName, _ event: RecordHookEvent, _ type: String,
        _ record: RecordStore.Record, _ original: RecordStore.Record?, _ context: String, _ timeout: Duration
    ) async throws -> RecordStore.Record? {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "X-Gust-Hook-Context", value: context)
        let payload = JSONValue.object(["record": .object(record), "original": original.map(JSONValue.object) ?? .null])
        let request = InstanceRequest(
            method: .POST, target: "/_gust/hooks/\(event.rawValue)/\(type)", headers: headers, body: ByteBuffer(bytes: payload.encoded())
        )
        let what = "The \(event.rawValue) hook of \(type)"
        let outcome = event.isBefore ? "nothing was written" : "the write stands"
        let response: InstanceResponse
        // A hook runs in the instance whose call (or outside write) caused it, past its pool's count:
        // that call waits for the hook, so nothing else runs there. An instance a hook leaves broken
        // (past its limit, or dead) is discarded when that call gives it back.
        do {
            // Collected up to what a hook's answer may be, not a whole answer's 32 MiB.
            if let nestedIn = RecordsCaller.current?.instance {
                response = try await nestedIn.callNested(request, timeout: timeout, maxBodyBytes: Self.maxHookAnswer)
            } else {
                response = try await supervisor.withInstance(app, deadline: .now + timeout) {
                    try await $0.call(request, timeout: timeout, maxBodyBytes: Self.maxHookAnswer)
                }
            }
        } catch InstanceCallError.tooLarge {
            throw GustError("\(what) answered more than a hook's answer may be (\(ByteCount(Self.maxHookAnswer))); \(outcome).", code: 502)
        } catch InstanceCallError.timedOut {
            throw GustError("\(what) did not answer within \(timeout.shortText); \(outcome).", code: 504)
        } catch let refusal as CallRefusal {
            throw GustError("\(what) could not run: \(refusal.message) \(outcome.prefix(1).uppercased() + outcome.dropFirst()).", code: refusal.status)
        } catch {
            throw GustError("\(what) crashed its process; \(outcome).", code: 502)
        }
        // The answer is the app's: one past what a before-save's record may be (with room for the
        // JSON around it) was refused unread above (`tooLarge`), and a failing hook's message is cut.
        let body = response.body.readableBytesView
        let answer = try? JSONValue.parse(Data(body)).objectValue
        guard response.status == 200 else {
            var code = response.status
            if let number = answer?["code"]?.intValue { code = number }
            var message = "\(what) failed with status \(response.status)"
            if case .string(let text)? = answer?["error"] { message = text.cut(toUTF8Bytes: 4096) }  // the writer and the app's log get it
            throw GustError(message, code: code)
        }
        guard event == .beforeSave else { return nil }
        return answer?["record"]?.objectValue
    }

    /// The most a hook may answer: a before-save's record (`RecordStore.maxRecordBytes`) twice over.
    static let maxHookAnswer = 2 * RecordStore.maxRecordBytes
}
