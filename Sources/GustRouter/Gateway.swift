import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// The public HTTP surface: finds the app (by host or `/apps/APP/` prefix),
/// checks its token if it is private, and hands the request to its live
/// release's instance. Every error is JSON `{"code": N, "error": message}`.
struct Gateway: HTTPResponder {
    typealias Context = GatewayContext

    let supervisor: Supervisor
    let configuration: RouterConfiguration
    let records: RecordsAPI

    func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request, context: context)
        } catch let error as GustError {
            return Self.error(error.code, error.message)
        }
    }

    private func route(_ request: Request, context: Context) async throws -> Response {
        let deadline = ContinuousClock.now + configuration.functionTimeout  // a call's time limit counts from its arrival
        guard let target = AppAddress(host: request.head.authority, path: request.uri.path, domain: configuration.domain) else {
            throw GustError.notFound("No app at this address: use APP.\(configuration.domain) or the path /apps/APP/.")
        }
        let app = target.app
        if target.path == "/_/records" || target.path.hasPrefix("/_/records/") {
            return try await recordsRequest(request, app: app, path: target.path.dropFirst("/_/records".count))
        }
        guard let state = await supervisor.state(of: app) else {
            if await supervisor.hasApp(app) {
                throw GustError("\(app) has no live release yet: push to deploy it.", code: 503)
            }
            throw GustError.notFound("No app named \(app).")
        }
        let path = target.path
        if path == "/_/health" {
            return Self.json(200, [
                "app": app.rawValue, "release": "v\(state.version)",
                "state": state.instance == nil ? "starting" : "running",
            ])
        }
        if state.isPrivate {
            guard let token = request.headers[HTTPField.Name("X-Auth-Token")!], await supervisor.verifyToken(app, token) else {
                throw GustError("\(app) is private: send a valid token in X-Auth-Token (`gust tokens create \(app)`).", code: 403)
            }
        }
        let query = request.uri.query.map { "?\($0)" } ?? ""
        let instanceTarget: String
        if path.hasPrefix("/_/functions/") {
            guard request.method == .post else {
                return Self.error(405, "Call an op with POST.", headers: [.allow: "POST"])
            }
            instanceTarget = "/_gust/ops/" + path.dropFirst("/_/functions/".count)
        } else if path.hasPrefix("/_/") || path == "/_" || path.hasPrefix("/_gust") {
            throw GustError.notFound("No endpoint \(path).")
        } else {
            instanceTarget = path + query
        }

        var headers = HTTPHeaders()
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) {
            headers.add(name: field.name.rawName, value: field.value)
        }
        let (method, fields, body, maxBodyBytes, channel) = (
            HTTPMethod(rawValue: request.method.rawValue), headers, request.body, configuration.maxBodyBytes, context.channel
        )
        return try await forward(to: app, deadline: deadline, channel: channel) {
            var collected = try await Self.collect(body, upTo: maxBodyBytes, by: deadline, channel: channel)
            return InstanceRequest(
                method: method, target: instanceTarget, headers: fields,
                body: collected.readSlice(length: collected.readableBytes) ?? ByteBuffer()
            )
        }
    }

    /// A call's body, read once the call holds the instance so that a waiting call keeps none in
    /// memory. A body still arriving at the call's deadline closes the connection rather than hold
    /// the instance; a client that stalls or leaves is its own doing, never the instance's.
    private static func collect(
        _ body: RequestBody, upTo maxBytes: Int, by deadline: ContinuousClock.Instant, channel: any Channel
    ) async throws -> ByteBuffer {
        let stop = channel.eventLoop.scheduleTask(in: TimeAmount(deadline - .now)) { channel.close(promise: nil) }
        defer { stop.cancel() }
        do {
            return try await body.collect(upTo: maxBytes)
        } catch let error as NIOTooManyBytesError {
            throw error
        } catch {
            throw ContinuousClock.now >= deadline ? CallGateError.deadlinePassed : CallGateError.clientGone
        }
    }

    /// Records need an app token whether the app is private or not: 401 without one, and nothing happens.
    private func recordsRequest(_ request: Request, app: AppName, path: Substring) async throws -> Response {
        guard await supervisor.hasApp(app) else { throw GustError.notFound("No app named \(app).") }
        guard let token = request.headers[HTTPField.Name("X-Auth-Token")!], await supervisor.verifyToken(app, token) else {
            return Self.error(401, "Records of \(app) need a valid app token in X-Auth-Token (`gust tokens create \(app)`).")
        }
        let body = try await RecordsAPI.collect(request.body)
        return await records.respond(app: app, method: request.method, path: path, query: request.uri.query, body: body, caller: nil)
    }

    /// Calls the app's instance once it is free, with the request `makeRequest` gives then.
    private func forward(
        to app: AppName, deadline: ContinuousClock.Instant, channel: any Channel,
        _ makeRequest: @escaping @Sendable () async throws -> InstanceRequest
    ) async throws -> Response {
        let instance = try await supervisor.instance(for: app)
        let answer: InstanceResponse
        do {
            answer = try await instance.call(deadline: deadline, clientGone: { await ClientDisconnectHandler.gone(of: channel) }, makeRequest)
        } catch CallGateError.deadlinePassed {
            // The instance is not at fault: the calls before this one took its time.
            throw GustError("The function did not answer within \(configuration.functionTimeout.shortText): the calls before it held the instance that long.", code: 504)
        } catch CallGateError.clientGone {
            throw GustError("The client closed the connection before the call ran; it did not run.", code: 499)
        } catch InstanceCallError.timedOut {
            await supervisor.discard(instance, because: "no answer within \(configuration.functionTimeout.shortText)")
            throw GustError("The function did not answer within \(configuration.functionTimeout.shortText).", code: 504)
        } catch let error where error is InstanceCallError || error is ChannelError {
            await supervisor.discard(instance, because: "its process died during a request")
            throw GustError("The function's process died while answering; the next request starts a new one.", code: 502)
        }
        var fields = HTTPFields()
        for (name, value) in answer.headers where !Self.hopByHop.contains(name.lowercased()) && name.lowercased() != "content-length" {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: answer.body))
    }

    private static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "date",
    ]

    static func json(_ status: Int, _ value: [String: Any], headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(status, ["code": status, "error": message], headers: headers)
    }
}

/// Which app a request is for: `APP.DOMAIN[:port]` by host, else `/apps/APP/...` by path.
struct AppAddress: Equatable {
    var app: AppName
    /// The path within the app, always starting with `/`.
    var path: String

    init?(host: String?, path: String, domain: String) {
        if let host {
            let name = host.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
            let suffix = "." + domain.lowercased()
            if name.hasSuffix(suffix), let app = try? AppName(String(name.dropLast(suffix.count))) {
                self.app = app
                self.path = path.isEmpty ? "/" : path
                return
            }
        }
        let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        // "", "apps", "cats/rest…"
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "apps" else { return nil }
        let rest = parts[2]
        let name = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard let app = try? AppName(name) else { return nil }
        self.app = app
        self.path = "/" + rest.dropFirst(name.count).drop { $0 == "/" }
    }
}
