import Foundation
import GustBuild
import GustConsole
import GustCore
import NIOCore
import NIOHTTP1

/// The console's view of gustd: the store through the request path's
/// `StoreAccess`, the supervisor's routes and pools, deploys as the admin API
/// makes them, op calls as the gateway makes them, and records through the
/// same hub (and so the same hooks) as the records API.
struct SupervisorConsoleBackend: ConsoleBackend {
    let supervisor: Supervisor
    let records: RecordsHub
    /// The apps' own domains, told of a change as the admin API's refresh tells them.
    let domains: CertificateManager?

    var home: GustHome { supervisor.configuration.home }

    func withStore<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
        try await supervisor.requestStore.run(body)
    }

    func offTheLoops<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await BlockingWork.run(body)
    }

    func live(_ app: AppName) -> ConsoleLiveState? {
        guard let route = supervisor.route(of: app) else { return nil }
        let snapshot = route.pool.snapshot
        return ConsoleLiveState(version: route.version, state: snapshot.state, instances: snapshot.serving, error: snapshot.crashing)
    }

    func history(_ app: AppName, minutes: Int) -> [ConsoleMinute] {
        // This minute's instances as they are now, not only as the sampler last saw them.
        if let counts = supervisor.route(of: app)?.pool.snapshot.counts {
            supervisor.callHistory.sample(app, starting: counts.starting, idle: counts.idle, busy: counts.busy)
        }
        return supervisor.callHistory.minutes(app, count: minutes).map(Self.consoleMinute)
    }

    func functionHistory(_ app: AppName, minutes: Int) -> [ConsoleFunctionHistory] {
        supervisor.callHistory.functions(app, count: minutes).map { series in
            ConsoleFunctionHistory(kind: series.function.kind.rawValue, name: series.function.name, minutes: series.minutes.map(Self.consoleMinute))
        }
    }

    private static func consoleMinute(_ minute: CallHistory.Summary) -> ConsoleMinute {
        ConsoleMinute(
            calls: minute.calls, errors: minute.errors,
            latency: minute.p50.map { ConsoleLatency(p50: $0, p95: minute.p95 ?? $0, p99: minute.p99 ?? $0) },
            instances: ConsoleInstanceCounts(starting: minute.starting, idle: minute.idle, busy: minute.busy)
        )
    }

    func reconcile() async {
        await supervisor.reconcile()
    }

    func refreshDomains() async {
        await domains?.refresh()
    }

    func instances(_ app: AppName) async -> [InstanceStatus] {
        await supervisor.instances(of: app)
    }

    func operations(_ app: AppName) -> [String] {
        supervisor.route(of: app)?.launcher.manifest?.ops.map(\.name) ?? []
    }

    func deploy(_ app: AppName, version: Int) async throws -> String {
        try await supervisor.deploy(app, version: version) { _ in }
    }

    func call(_ app: AppName, op: String, arguments: Data) async -> ConsoleAnswer {
        let timeout = supervisor.configuration.functionTimeout
        let deadline = ContinuousClock.now + timeout
        let name = op.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? op
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let request = InstanceRequest(method: .POST, target: "/_gust/ops/\(name)", headers: headers, body: ByteBuffer(bytes: arguments))
        let began = ContinuousClock.now
        let answer: ConsoleAnswer
        do {
            let response = try await supervisor.withInstance(app, deadline: deadline) { instance in
                try await instance.call(request, timeout: max(deadline - .now, .milliseconds(1)))
            }
            answer = ConsoleAnswer(status: response.status, body: String(decoding: response.body.readableBytesView, as: UTF8.self))
        } catch let refusal as CallRefusal {
            answer = ConsoleAnswer(status: refusal.status, body: refusal.message)
        } catch InstanceCallError.timedOut {
            answer = ConsoleAnswer(status: 504, body: "The function did not answer within \(timeout.shortText).")
        } catch {
            answer = ConsoleAnswer(status: 502, body: "The function's process died while answering.")
        }
        // Labelled as the gateway labels it: an op the live release does not declare is `other` (labels stay bounded).
        let manifest = supervisor.route(of: app)?.launcher.manifest
        CallMetrics.record(
            app, kind: .op, function: { FunctionLabel.op(op, in: manifest) }, status: answer.status, duration: .now - began,
            history: supervisor.callHistory)
        return answer
    }

    func records(_ app: AppName, type: String, query: RecordStore.Query) async throws -> [RecordStore.Record] {
        try RecordStore.validateType(type)
        let page = try await hubCall { try await records.page(app, type, query) }
        let parsed = try JSONValue.parse(Data(page.readableBytesView))
        guard case .array(let list)? = parsed.objectValue?["records"] else { return [] }
        return list.compactMap(\.objectValue)
    }

    func record(_ app: AppName, type: String, id: String) async throws -> RecordStore.Record {
        try RecordStore.validateType(type)
        return try await hubCall { try await records.get(app, type, id: id) }
    }

    func saveRecord(_ app: AppName, type: String, id: String?, fields: RecordStore.Record) async throws -> RecordStore.Record {
        try RecordStore.validateType(type)
        return try await hubCall { try await records.save(app, type, id: id, fields: fields, caller: nil) }
    }

    func deleteRecord(_ app: AppName, type: String, id: String) async throws {
        try RecordStore.validateType(type)
        try await hubCall { try await records.delete(app, type, id: id, caller: nil) }
    }

    func recordTypes(_ app: AppName) async -> [String] {
        let url = home.data(app).appendingPathComponent("records.sqlite")
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return (try? await records.types(app)) ?? []
    }

    /// The hub's refusals (a pool's, a hook's) as the `GustError` the console shows.
    private func hubCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let refusal as CallRefusal {
            throw GustError(refusal.message, code: refusal.status)
        }
    }
}
