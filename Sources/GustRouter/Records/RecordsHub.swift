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
/// release (docs/records.md). One `RecordService` per app serialises its writes.
actor RecordsHub {
    private final class HookSet: Sendable {
        let hooks = Mutex<Set<String>>([])
    }

    private struct Entry {
        var service: RecordService
        var hooks: HookSet
        var limitsOf: Int?
    }

    private let home: GustHome
    private let supervisor: Supervisor
    private var entries: [AppName: Entry] = [:]
    private var store: Store?

    init(home: GustHome, supervisor: Supervisor) {
        self.home = home
        self.supervisor = supervisor
    }

    func get(_ app: AppName, _ type: String, id: String) async throws -> RecordStore.Record {
        try await service(app, refresh: false).get(type, id: id)
    }

    func find(_ app: AppName, _ type: String, _ query: RecordStore.Query) async throws -> [RecordStore.Record] {
        try await service(app, refresh: false).find(type, query)
    }

    func save(_ app: AppName, _ type: String, id: String?, fields: RecordStore.Record, caller: RecordsCaller?) async throws -> RecordStore.Record {
        let service = try await service(app, refresh: true)
        return try await RecordsCaller.$current.withValue(caller) {
            try await service.save(type, id: id, fields: fields, from: caller?.context)
        }
    }

    func delete(_ app: AppName, _ type: String, id: String, caller: RecordsCaller?) async throws {
        let service = try await service(app, refresh: true)
        try await RecordsCaller.$current.withValue(caller) {
            try await service.delete(type, id: id, from: caller?.context)
        }
    }

    /// The app's service; before a write, with the hooks and limits of the
    /// live release (whose instance is started if it is not running, so that
    /// a write never skips a hook for want of a manifest).
    private func service(_ app: AppName, refresh: Bool) async throws -> RecordService {
        if entries[app] == nil {
            let hooks = HookSet()
            let log = AppLog(home: home, app: app)
            let service = RecordService(
                store: try RecordStore(home: home, app: app),
                hooks: { hooks.hooks.withLock { $0 } },
                call: { [supervisor] event, type, record, original, context, timeout in
                    try await Self.runHook(supervisor, app, event, type, record, original, context, timeout)
                },
                onAfterHookFailure: { message in
                    try? log.append([LogEntry(release: nil, instance: nil, stream: "gustd", function: nil, line: message)])
                }
            )
            entries[app] = Entry(service: service, hooks: hooks)
        }
        let entry = entries[app]!
        guard refresh else { return entry.service }
        guard let state = await supervisor.state(of: app) else {
            entry.hooks.hooks.withLock { $0 = [] }
            return entry.service
        }
        let live = try await supervisor.instance(for: app)
        entry.hooks.hooks.withLock { $0 = Set(live.manifest.hooks.map { "\($0.event) \($0.type)" }) }
        if entries[app]?.limitsOf != state.version {
            await entry.service.setLimits(try limits(app, version: state.version))
            entries[app]?.limitsOf = state.version
        }
        return entry.service
    }

    /// `GUST_BEFORE_HOOK_TIMEOUT` and `GUST_AFTER_HOOK_TIMEOUT` of the release's config, else 10 s and 3 s.
    private func limits(_ app: AppName, version: Int) throws -> RecordService.Limits {
        if store == nil { store = try Store(home: home) }
        let config = try store!.requireRelease(app, version: version).config
        var limits = RecordService.Limits()
        if let text = config["GUST_BEFORE_HOOK_TIMEOUT"] { limits.beforeHook = try Self.duration(text, "GUST_BEFORE_HOOK_TIMEOUT") }
        if let text = config["GUST_AFTER_HOOK_TIMEOUT"] { limits.afterHook = try Self.duration(text, "GUST_AFTER_HOOK_TIMEOUT") }
        return limits
    }

    /// `10s`, `500ms`, `2m`, or a number of seconds.
    static func duration(_ text: String, _ name: String) throws -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("ms"), let value = Double(trimmed.dropLast(2)), value > 0 { return .milliseconds(value) }
        let units: [Character: Double] = ["s": 1, "m": 60]
        if let unit = trimmed.last, let scale = units[unit], let value = Double(trimmed.dropLast()), value > 0 { return .seconds(value * scale) }
        if let value = Double(trimmed), value > 0 { return .seconds(value) }
        throw GustError(
            "\(name) is '\(text.prefix(32))', which is not a time limit.",
            code: 500, hint: "Set it to seconds or milliseconds, like `gust config set APP \(name)=10s` or `=500ms`."
        )
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
        let nestedIn = RecordsCaller.current?.instance
        let instance: Instance
        if let nestedIn { instance = nestedIn } else { instance = try await supervisor.instance(for: app) }
        do {
            response = nestedIn == nil ? try await instance.call(request, timeout: timeout) : try await instance.callNested(request, timeout: timeout)
        } catch InstanceCallError.timedOut {
            if nestedIn == nil { await supervisor.discard(instance, because: "\(event.rawValue) \(type) passed its \(timeout.shortText) limit") }
            throw GustError("\(what) did not answer within \(timeout.shortText); \(outcome).", code: 504)
        } catch {
            if nestedIn == nil { await supervisor.discard(instance, because: "its process died during a hook") }
            throw GustError("\(what) crashed its process; \(outcome).", code: 502)
        }
        let answer = try? JSONValue.parse(Data(response.body.readableBytesView)).objectValue
        guard response.status == 200 else {
            var code = response.status
            if case .number(let number)? = answer?["code"] { code = Int(number) }
            var message = "\(what) failed with status \(response.status)"
            if case .string(let text)? = answer?["error"] { message = text }
            throw GustError(message, code: code)
        }
        guard event == .beforeSave else { return nil }
        return answer?["record"]?.objectValue
    }
}
