import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin API on `GUST_HOME/run/gustd.sock` (mode 0600), spoken by
/// `gust-receive` and `gust` through `AdminClient`:
///
/// - `POST /v1/deploy` `{"app": "cats", "version": 3}`: newline-delimited JSON,
///   streamed as it happens: `{"progress": "…"}` lines, then `{"live": 3, "url": "…"}`
///   or `{"error": "…", "code": N}`.
/// - `POST /v1/reconcile`: re-read the database and converge (after `apps destroy`, say).
/// - `GET /v1/status`: the live release of every app and the state of its pool.
/// - `GET /v1/apps/APP/instances`: `[InstanceStatus]`, for `gust ps`.
struct AdminAPI: HTTPResponder {
    typealias Context = BasicRequestContext

    let supervisor: Supervisor

    func respond(to request: Request, context: Context) async throws -> Response {
        switch (request.method, request.uri.path) {
        case (.post, "/v1/deploy"):
            return try await deploy(request)
        case (.post, "/v1/reconcile"):
            await supervisor.reconcile()
            return Gateway.json(200, ["ok": true])
        case (.get, "/v1/status"):
            return Gateway.json(200, ["apps": await supervisor.status()])
        case (.get, let path) where path.hasPrefix("/v1/apps/") && path.hasSuffix("/instances"):
            let name = path.dropFirst("/v1/apps/".count).dropLast("/instances".count)
            guard let app = try? AppName(String(name)) else { return Gateway.error(400, "'\(name)' is not an app name.") }
            let data = (try? JSONEncoder().encode(await supervisor.instances(of: app))) ?? Data("[]".utf8)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        default:
            return Gateway.error(404, "No admin endpoint \(request.method) \(request.uri.path).")
        }
    }

    private struct DeployRequest: Decodable {
        var app: String
        var version: Int
    }

    private func deploy(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let wanted = try? JSONDecoder().decode(DeployRequest.self, from: Data(body.readableBytesView)),
            let app = try? AppName(wanted.app)
        else {
            return Gateway.error(400, "Send {\"app\": NAME, \"version\": N}.")
        }
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let supervisor = self.supervisor
        Task {
            do {
                let url = try await supervisor.deploy(app, version: wanted.version) { line in
                    continuation.yield(.progress(line))
                }
                continuation.yield(.live(wanted.version, url))
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
            for await event in events {
                try await writer.write(ByteBuffer(bytes: event.line))
            }
            try await writer.finish(nil)
        })
    }

    private enum Event: Sendable {
        case progress(String)
        case live(Int, String)
        case failed(Int, String)

        var line: Data {
            let object: [String: Any] = switch self {
            case .progress(let text): ["progress": text]
            case .live(let version, let url): ["live": version, "url": url]
            case .failed(let code, let message): ["error": message, "code": code]
            }
            var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            data.append(UInt8(ascii: "\n"))
            return data
        }
    }
}
