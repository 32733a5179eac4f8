import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin API on `GUST_HOME/run/gustd.sock` (mode 0600), spoken by
/// `gust-receive` and `gust` through `AdminClient`:
///
/// - `POST /v1/deploy` `{"app": "cats", "version": 3, "phase": "warm"|"switch"|"full"}`
///   (`AdminDeployRequest`; Supervisor+Deploy says what each phase does):
///   newline-delimited JSON, streamed as it happens: `{"progress": "…"}` lines,
///   `{"heartbeat": true}` every few seconds while nothing else is said (so a
///   client can tell a slow start from a dead gustd), then `{"live": 3, "url": "…"}`
///   (`{"warm": 3, "url": "…"}` for a warm) or `{"error": "…", "code": N}`.
/// - `POST /v1/build` (`AdminBuildRequest`): builds the tree a push's hook exported, in the app's
///   sandbox, streaming `AdminBuildEvent`s (AdminAPI+Build); the build stops if the hook goes away.
/// - `POST /v1/reconcile`: re-read the database and converge (after `apps destroy`, say).
/// - `POST /v1/domains/refresh`: re-read the apps' own domains (after `gust domains add|remove|renew`).
/// - `POST /v1/schedules/run` `{"app": "cats", "schedule": "meow"}`: runs that schedule of the live
///   release now (`gust dev --run`), answering once it ended: `{"ok": true}` or `{"ok": false, "error": …}`.
/// - `GET /v1/status`: the live release of every app and the state of its pool.
/// - `GET /v1/apps/APP/instances`: `[InstanceStatus]`, for `gust ps` (the zygote last, `kind` "zygote").
/// - `POST /v1/apps/APP/output-delivered`: answers `{"ok": true}` once what the app's instances have
///   written is in its log (at most a second): `gust call -v` asks before it reads its call's lines.
struct AdminAPI: HTTPResponder {
    typealias Context = BasicRequestContext

    let supervisor: Supervisor
    /// The apps' own domains and their certificates.
    var domains: CertificateManager? = nil

    func respond(to request: Request, context: Context) async throws -> Response {
        switch (request.method, request.uri.path) {
        case (.post, "/v1/deploy"):
            return try await deploy(request)
        case (.post, "/v1/build"):
            return try await build(request)
        case (.post, "/v1/schedules/run"):
            return try await runSchedule(request)
        case (.post, "/v1/reconcile"):
            await supervisor.reconcile()
            await domains?.refresh()
            return Gateway.json(200, FlatJSON([("ok", .bool(true))]))
        case (.post, "/v1/domains/refresh"):
            await domains?.refresh()
            return Gateway.json(200, FlatJSON([("ok", .bool(true))]))
        case (.get, "/v1/status"):
            return Gateway.json(200, ["apps": await supervisor.status()])
        case (.get, let path) where path.hasPrefix("/v1/apps/") && path.hasSuffix("/instances"):
            let name = path.dropFirst("/v1/apps/".count).dropLast("/instances".count)
            guard let app = try? AppName(String(name)) else { return Gateway.error(400, "'\(name)' is not an app name.") }
            // The instances, then the live release's zygote (`gust ps` shows it as its own line).
            let listed = await supervisor.instances(of: app) + supervisor.zygotes(of: app)
            let data = (try? JSONEncoder().encode(listed)) ?? Data("[]".utf8)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case (.post, let path) where path.hasPrefix("/v1/apps/") && path.hasSuffix("/output-delivered"):
            let name = path.dropFirst("/v1/apps/".count).dropLast("/output-delivered".count)
            guard let app = try? AppName(String(name)) else { return Gateway.error(400, "'\(name)' is not an app name.") }
            await supervisor.outputIsDelivered(of: app, within: .seconds(1))
            return Gateway.json(200, FlatJSON([("ok", .bool(true))]))
        default:
            return Gateway.error(404, "No admin endpoint \(request.method) \(request.uri.path).")
        }
    }

    private func runSchedule(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        guard let wanted = try? JSONDecoder().decode([String: String].self, from: Data(body.readableBytesView)),
            let app = wanted["app"].flatMap({ try? AppName($0) }), let name = wanted["schedule"], !name.isEmpty
        else {
            return Gateway.error(400, "Send {\"app\": NAME, \"schedule\": NAME}.")
        }
        do {
            if let failure = try await supervisor.runSchedule(app, name: name) {
                return Gateway.json(200, FlatJSON([("ok", .bool(false)), ("error", .string(failure))]))
            }
            return Gateway.json(200, FlatJSON([("ok", .bool(true))]))
        } catch let error as GustError {
            return Gateway.error(error.code, error.message + (error.hint.map { " \($0)" } ?? ""))
        }
    }

    /// How often a deploy's stream says it is alive.
    static let heartbeat: Duration = .seconds(5)

    private func deploy(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let wanted = try? JSONDecoder().decode(AdminDeployRequest.self, from: Data(body.readableBytesView)),
            let app = try? AppName(wanted.app)
        else {
            return Gateway.error(400, "Send {\"app\": NAME, \"version\": N, \"phase\": \"warm\"|\"switch\"|\"full\"}.")
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let supervisor = self.supervisor
        let (version, phase) = (wanted.version, wanted.phase ?? .full)
        // Not tied to the connection: a client that goes away does not cut a switch in half.
        Task {
            do {
                let progress: @Sendable (String) -> Void = { continuation.yield(.progress($0)) }
                switch phase {
                case .warm:
                    let url = try await supervisor.warm(app, version: version, progress: progress)
                    continuation.yield(.warm(version, url))
                case .switch:
                    let url = try await supervisor.switchLive(app, version: version, progress: progress)
                    continuation.yield(.live(version, url))
                case .full:
                    let url = try await supervisor.deploy(app, version: version, progress: progress)
                    continuation.yield(.live(version, url))
                }
            } catch let error as GustError {
                continuation.yield(.failed(error.code, error.message + (error.hint.map { "\n\($0)" } ?? "")))
            } catch {
                continuation.yield(.failed(500, String(describing: error)))
            }
            continuation.finish()
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.heartbeat)
                        if !Task.isCancelled { continuation.yield(.heartbeat) }
                    }
                }
                defer { group.cancelAll() }
                for await event in events {
                    try await writer.write(ByteBuffer(bytes: event.line))
                }
            }
            try await writer.finish(nil)
        })
    }

    private enum Event: Sendable {
        case progress(String)
        case heartbeat
        case warm(Int, String)
        case live(Int, String)
        case failed(Int, String)

        var line: Data {
            let object: [String: Any] = switch self {
            case .progress(let text): ["progress": text]
            case .heartbeat: ["heartbeat": true]
            case .warm(let version, let url): ["warm": version, "url": url]
            case .live(let version, let url): ["live": version, "url": url]
            case .failed(let code, let message): ["error": message, "code": code]
            }
            var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            data.append(UInt8(ascii: "\n"))
            return data
        }
    }
}
