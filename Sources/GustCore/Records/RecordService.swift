import Foundation

/// The four record hooks a function can register.
public enum RecordHookEvent: String, Sendable, CaseIterable {
    case beforeSave = "before_save", afterSave = "after_save", beforeDelete = "before_delete", afterDelete = "after_delete"

    public var isBefore: Bool { self == .beforeSave || self == .beforeDelete }
}

/// Calls a hook in the app's live release. Returns the record a before-save
/// hook wants stored (nil: store it as given); throws the function's error.
/// `context` identifies this hook call, so writes the hook makes come back tagged with it.
public typealias RecordHookCall = @Sendable (
    _ event: RecordHookEvent, _ type: String, _ record: RecordStore.Record, _ original: RecordStore.Record?,
    _ context: String, _ timeout: Duration
) async throws -> RecordStore.Record?

/// Writes to an app's records with its hooks around them.
///
/// A before-hook and the write it guards are one transaction: writes are
/// serialised per app, and one that a before-hook rejects (or that passes its
/// time limit) leaves nothing behind. After-hooks run once the write is
/// committed; their failure is logged, never undone. Writes that come from a
/// hook (tagged with its context) run no hooks of the record they touch, so a
/// hook that saves its own record does not call itself forever.
public actor RecordService {
    public struct Limits: Sendable {
        public var beforeHook: Duration = .seconds(10)
        public var afterHook: Duration = .seconds(3)
        public init(beforeHook: Duration = .seconds(10), afterHook: Duration = .seconds(3)) {
            self.beforeHook = beforeHook
            self.afterHook = afterHook
        }
    }

    /// Read outside the actor by `readPage` and `readTypes` only, through its reading connection.
    private nonisolated(unsafe) let store: RecordStore
    private var limits: Limits
    private let hooks: @Sendable () -> Set<String>
    private let call: RecordHookCall
    /// Called with the hook (`after_save cat`) and what went wrong.
    private let onAfterHookFailure: @Sendable (_ hook: String, _ message: String) -> Void
    /// Where this actor runs: a thread of its own, never an event loop (its statements block).
    private let executor: BlockingExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// The token of the write in progress, whose before-hook's own writes join its transaction.
    /// Only ever a token this actor made: a context comes from a function's request header.
    private var writing: String?
    /// Whether the lock is held, or being handed to the next waiter (then `writing` is nil).
    private var held = false
    /// FIFO of writers waiting for the one in progress.
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// - Parameters:
    ///   - hooks: the live release's hooks, as `"before_save cat"` strings.
    ///   - call: how to run one.
    public init(
        store: RecordStore, limits: Limits = Limits(), hooks: @escaping @Sendable () -> Set<String>,
        call: @escaping RecordHookCall, onAfterHookFailure: @escaping @Sendable (_ hook: String, _ message: String) -> Void,
        executor: BlockingExecutor = .records
    ) {
        self.executor = executor
        self.store = store
        self.limits = limits
        self.hooks = hooks
        self.call = call
        self.onAfterHookFailure = onAfterHookFailure
    }

    /// The limits of the live release's config (gustd sets them when it changes).
    public func setLimits(_ limits: Limits) { self.limits = limits }

    public func get(_ type: String, id: String) throws -> RecordStore.Record {
        try RecordStore.validateType(type)
        guard let record = try store.get(type, id: id) else { throw RecordStore.missing(type, id) }
        return record
    }

    public func find(_ type: String, _ query: RecordStore.Query) throws -> [RecordStore.Record] {
        try store.find(type, query)
    }

    /// Bounds the store at the app's disk limit (`RecordStore.limit`), between writes.
    public func limitDisk(toBytes bytes: Int?, app: AppName) throws {
        try store.limit(toBytes: bytes, app: app)
    }

    /// A page of a query, read outside the actor so that gustd can run it on
    /// threads of its own rather than this actor's (which every app's writes
    /// share). It goes through the store's reading connection: it sees what is
    /// committed, and is stopped at `RecordStore.queryLimit`.
    public nonisolated func readPage(_ type: String, _ query: RecordStore.Query) throws -> RecordStore.Page {
        try store.page(type, query)
    }

    /// The types that have records, read as `readPage` reads.
    public nonisolated func readTypes() throws -> [String] {
        try store.types()
    }

    /// Creates (`id` nil) or updates (fields merged into the stored record).
    public func save(_ type: String, id: String?, fields: RecordStore.Record, from context: String? = nil) async throws -> RecordStore.Record {
        try RecordStore.validateType(type)
        if let context, context == writing {
            // A write from inside the before-hook that holds the lock: it joins that transaction, hook-free.
            return try write(type, id: id, fields: fields)
        }
        let (saved, original) = try await exclusively { token in
            let original = try id.map { id in
                guard let record = try store.get(type, id: id) else { throw RecordStore.missing(type, id) }
                return record
            }
            var record = (original ?? [:]).merging(fields.filter { !$0.key.hasPrefix("_") }) { $1 }
            if let id { record["_id"] = .string(id) }
            if hooksApply(.beforeSave, type, context: context, id: id),
                let changed = try await call(.beforeSave, type, record, original, token, limits.beforeHook) {
                record = changed
            }
            return (try write(type, id: id, fields: record), original)
        }
        if hooksApply(.afterSave, type, context: context, id: saved.id) {
            await runAfter(.afterSave, type, saved, original, depth: depth(after: context))
        }
        return saved
    }

    public func delete(_ type: String, id: String, from context: String? = nil) async throws {
        try RecordStore.validateType(type)
        if let context, context == writing { return try store.delete(type, id: id) }
        let original = try await exclusively { token in
            guard let original = try store.get(type, id: id) else { throw RecordStore.missing(type, id) }
            if hooksApply(.beforeDelete, type, context: context, id: id) {
                _ = try await call(.beforeDelete, type, original, original, token, limits.beforeHook)
            }
            try store.delete(type, id: id)
            return original
        }
        if hooksApply(.afterDelete, type, context: context, id: id) {
            await runAfter(.afterDelete, type, original, original, depth: depth(after: context))
        }
    }

    /// Runs `body` as the only writer, in one transaction: committed if it
    /// returns, rolled back if it throws. The lock is released before after-hooks run.
    private func exclusively<T>(_ body: (String) async throws -> T) async throws -> T {
        let token = UUID().uuidString
        if held {
            await withCheckedContinuation { waiters.append($0) }
        }
        held = true
        writing = token
        defer { release() }
        try store.db.execute("BEGIN IMMEDIATE")
        do {
            let value = try await body(token)
            try store.db.execute("COMMIT")
            return value
        } catch {
            try? store.db.execute("ROLLBACK")
            throw error
        }
    }

    private func write(_ type: String, id: String?, fields: RecordStore.Record) throws -> RecordStore.Record {
        if let id { return try store.replace(type, id: id, fields) }
        return try store.insert(type, fields)
    }

    /// Whether a hook runs: it is registered, and the write does not come
    /// from a hook call on this same record.
    private func hooksApply(_ event: RecordHookEvent, _ type: String, context: String?, id: String?) -> Bool {
        guard hooks().contains("\(event.rawValue) \(type)") else { return false }
        guard let context, let id else { return true }
        return afterHooks[context]?.record != "\(type) \(id)"
    }

    /// How many after-hooks may nest, each run by a write of the one before: an after-hook that
    /// saves a new record of its own type (or two types whose hooks write each other) would chain
    /// without end, each level holding a records connection and an instance. As AWS Lambda stops a
    /// recursive loop at 16 invocations.
    public static let hookDepthLimit = 16
    /// The after-hooks in progress, by their context: the record each runs for (`type id`: its own
    /// writes to that record skip hooks), and how deep it nests (1 for one run by a write from
    /// outside any hook).
    private var afterHooks: [String: (record: String, depth: Int)] = [:]

    /// The depth an after-hook run by a write from `context` has.
    private func depth(after context: String?) -> Int {
        (context.flatMap { afterHooks[$0]?.depth } ?? 0) + 1
    }

    private func runAfter(_ event: RecordHookEvent, _ type: String, _ record: RecordStore.Record, _ original: RecordStore.Record?, depth: Int) async {
        guard depth <= Self.hookDepthLimit else {
            let hook = "\(event.rawValue) \(type)"
            return onAfterHookFailure(
                hook, "\(hook) was not run: hooks nested \(Self.hookDepthLimit) deep (a hook's write ran a hook that wrote again); the write stands"
            )
        }
        let context = UUID().uuidString
        afterHooks[context] = (record: "\(type) \(record.id ?? "")", depth: depth)
        defer { afterHooks[context] = nil }
        do {
            _ = try await call(event, type, record, original, context, limits.afterHook)
        } catch {
            onAfterHookFailure("\(event.rawValue) \(type)", "\(event.rawValue) \(type) failed; the write stands: \(error)")
        }
    }

    private func release() {
        writing = nil
        // Ownership passes straight to the next waiter (`held` stays set), so a newcomer cannot
        // slip in between. A marker string in `writing` for the handover let a write whose context
        // header said those words skip its before-hook and run outside any transaction.
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// A record's `_id`.
    public var id: String? {
        if case .string(let id) = self["_id"] { return id }
        return nil
    }
}
