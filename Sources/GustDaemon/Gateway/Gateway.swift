import Foundation
import GustBuild
import GustCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The public HTTP surface: finds the app (by host or `/apps/APP/` prefix),
/// checks its token if it is private, and hands the request to an instance
/// of its live release, from the release's pool. Every error is JSON
/// `{"code": N, "error": message}`.
struct Gateway: HTTPResponder {
    typealias Context = GatewayContext

    let supervisor: Supervisor
    let configuration: RouterConfiguration
    let records: RecordsAPI
    /// One line per call; nil writes none.
    let accessLog: AccessLog?
    let forwarding: ForwardedHeaders
    /// The apps' own domains (`gust domains`).
    let domains: DomainRoutes
    /// HTTP-01 answers for ACME, on the HTTP listener only.
    let challenges: ChallengeResponder?
    /// `--redirect-https`, on the HTTP listener only.
    let redirect: HTTPSRedirect?

    /// `scheme` is what `X-Forwarded-Proto` says: `http` here; the HTTPS listener passes `https`.
    init(
        supervisor: Supervisor, configuration: RouterConfiguration, records: RecordsAPI, accessLog: AccessLog? = nil, scheme: String = "http",
        domains: DomainRoutes = DomainRoutes(), challenges: ChallengeResponder? = nil, redirect: HTTPSRedirect? = nil
    ) {
        self.supervisor = supervisor
        self.configuration = configuration
        self.records = records
        self.accessLog = accessLog
        forwarding = ForwardedHeaders(scheme: scheme, trustedProxies: Set(configuration.trustedProxies))
        self.domains = domains
        self.challenges = challenges
        self.redirect = redirect
    }

    /// The header a private app's calls and every records request carry their app token in.
    static let authToken = HTTPField.Name("X-Auth-Token")!

    /// A private app's call without a valid token, on either path (`respond`, the lane): it never runs.
    static func notAuthorized(_ app: AppName) -> CallRefusal {
        CallRefusal(status: 403, message: "\(app) is private: send a valid token in X-Auth-Token (`gust tokens create \(app)`).")
    }

    /// What the access log learns of a call as it is routed.
    struct Note {
        var app: AppName?
        var release: Int?
        var instance: String?
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        let arrived = ContinuousClock.now
        let wallClock = accessLog == nil ? 0 : AccessLog.now()
        // A call's time limit counts from here: waiting for an instance is part of it.
        let deadline = arrived + configuration.functionTimeout
        let requestID = RequestID.of(sent: request.headers[ForwardedHeaders.requestID])
        var note = Note()
        var response: Response
        do {
            response = try await route(request, context: context, deadline: deadline, requestID: requestID, note: &note)
        } catch let error as GustError {
            response = Self.error(error.code, error.message)
        } catch let refusal as CallRefusal {
            response = Self.error(refusal.status, refusal.message, headers: refusal.headers)
        } catch is NIOTooManyBytesError {
            response = Self.tooLarge(configuration.maxBodyBytes)
        } catch let error as any HTTPResponseError {
            // Hummingbird's own (a body it could not read): still JSON, with its status.
            response = Self.error(Int(error.status.code), error.status.reasonPhrase)
        } catch let error as HTTPParserError {
            throw error  // Hummingbird answers a malformed request and closes the connection
        } catch {
            context.logger.error("gustd failed answering \(request.method) \(request.uri.path): \(error)")
            response = Self.error(500, "internal error in gustd")
        }
        response.headers[ForwardedHeaders.requestID] = requestID
        if let accessLog {
            accessLog.record(AccessLog.Entry(
                app: note.app?.rawValue, release: note.release, instance: note.instance, method: request.method.rawValue,
                path: request.uri.path, status: response.status.code, bytes: response.body.contentLength ?? 0,
                duration: ContinuousClock.now - arrived, requestID: requestID, time: wallClock
            ))
        }
        return response
    }

    /// Why an answer too long to hold whole (an op's: a handler's is relayed as it comes) is refused.
    static let answerTooLarge =
        "The function's answer is larger than \(InstanceConnection.wholeAnswerLimit >> 20) MiB, the most gustd holds whole; "
        + "return less, or serve it from a handler, whose answers are relayed as they come."
    /// For an instance whose bytes were not an answer (`InstanceAnswerDecoder`): the app wrote to its
    /// connection with gustd itself, or its runtime is not one of the protocol's.
    static let answerMalformed =
        "The function's process wrote something that is not an HTTP/1.1 answer gustd reads (docs/runtime-protocol.md); "
        + "it was stopped, and the next request starts a new one. Does the app write to the runtime's socket itself?"

    /// `Host`, as a field: HTTPTypes keeps the first as the authority, and a second among the fields.
    static let hostField = HTTPField.Name("Host")!

    /// The methods a handler may declare, as `Allow` says them where gustd itself refuses one.
    static let methodsFunctionsTake = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

    static func tooLarge(_ limit: Int) -> Response {
        error(413, "The request body is larger than \(ByteCount(limit)), the most gustd accepts.")
    }

    private func route(
        _ request: Request, context: Context, deadline: ContinuousClock.Instant, requestID: String, note: inout Note
    ) async throws -> Response {
        // gustd tunnels nothing: a CONNECT never reaches an instance (Node's server destroys the
        // socket one comes on, which would read as a broken instance and stop every call on it).
        // NIO writes an answer to a CONNECT without a body or a length (RFC 9112, 6.3), so the
        // connection closes after it (`ConnectionPersistence`): the close is where the answer ends.
        if request.method == .connect {
            return Self.error(405, "gustd does not tunnel connections (CONNECT); call a function with its own method.",
                              headers: [.allow: Self.methodsFunctionsTake])
        }
        // A body declared larger than the limit is refused at once, before anything waits for it.
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > configuration.maxBodyBytes {
            return Self.tooLarge(configuration.maxBodyBytes)
        }
        let host = request.head.authority
        // Named twice (HTTPTypes takes the first Host as the authority and leaves the others among
        // the fields), or not as a name and a port: RFC 9112 (3.2) makes either a 400.
        if request.headers[Self.hostField] != nil {
            throw GustError("The request names its host twice (two Host fields).", code: 400)
        }
        if let host, !AppAddress.isWellFormed(host: host) {
            throw GustError("The request's Host is not a host name or address with an optional port.", code: 400)
        }
        if let challenges, ChallengeResponder.claims(request.uri.path) {
            // gustd answers HTTP-01 for every name it serves, and no app does: an app that did could
            // get a certificate of its own for any name routed to it (one it added by `gust domains
            // add` without owning it: the console's, the server's).
            guard let answer = challenges.answer(path: request.uri.path, host: host) else {
                throw GustError.notFound("No ACME challenge of gustd's is waiting at this address.")
            }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        let requested = RequestPath(percentEncoded: request.uri.path)
        let target = address(host: host, path: requested)
        if let redirect, let location = redirect.location(host: host, target: request.uri.description, addressed: target, domain: configuration.domain) {
            return Self.error(301, "Use HTTPS: \(location)", headers: [.location: location])
        }
        guard let target else {
            if configuration.onlyApp != nil {
                throw GustError(
                    "This development server answers only loopback names (localhost, 127.0.0.1, [::1]), not \(host ?? "this host"): "
                        + "a page elsewhere must not reach the app with your .env.", code: 403)
            }
            throw GustError.notFound("No app at this address: use APP.\(configuration.domain) or the path /apps/APP/.")
        }
        let app = target.app
        note.app = app
        // Decided on the path as the instance would read it, however it was spelt.
        guard !target.path.reachesReservedSurface else {
            throw GustError.notFound("No endpoint \(target.path.decoded).")
        }
        let segments = target.path.segments
        // `/_/…` is Gust's own surface: no WebSocket is served there.
        let webSocket = Self.asksForWebSocket(request.headers)
        if webSocket, segments.first == "_" {
            throw GustError.notFound("No WebSocket at \(target.path.decoded): paths under /_/ are Gust's own.")
        }
        // A page anywhere may open a WebSocket to 127.0.0.1 (no CORS, no rebinding needed), and the
        // dev app runs with the developer's `.env`: only the app's own pages (a loopback origin), or
        // a client that is no page (no Origin), may.
        if webSocket, configuration.onlyApp != nil, let origin = request.headers[.origin], !AppAddress.isLoopbackOrigin(origin) {
            throw GustError(
                "This development server takes WebSockets only from pages it serves (a loopback origin), not from \(origin.prefix(100)).",
                code: 403)
        }
        if segments.first == "_", segments.dropFirst().first == "records" {
            return try await recordsRequest(request, app: app, path: Substring(target.path.dropFirst(2).percentEncoded))
        }
        guard let live = supervisor.route(of: app) else {
            if await supervisor.hasApp(app) {
                throw GustError("\(app) has no live release yet: push to deploy it.", code: 503)
            }
            throw GustError.notFound("No app named \(app).")
        }
        note.release = live.version
        let path = target.path.decoded
        if path == "/_/health" {
            return Self.json(200, Self.health(of: app, live))
        }
        if live.isPrivate {
            guard let token = request.headers[Self.authToken], await supervisor.verifyToken(app, token) else {
                throw Self.notAuthorized(app)
            }
        }
        let query = request.uri.query.map { "?\($0)" } ?? ""
        let instanceTarget: String
        let kind: CallKind
        if target.path.isOpCall {
            guard request.method == .post else {
                return Self.error(405, "Call an op with POST.", headers: [.allow: "POST"])
            }
            instanceTarget = target.path.opTarget
            kind = .op
        } else if segments.first == "_" {
            throw GustError.notFound("No endpoint \(path).")
        } else {
            instanceTarget = target.path.percentEncoded + query
            kind = .handler
        }

        let forwarded = forwarding.headers(of: request.headers, peer: context.channel.remoteAddress?.ipAddress, requestID: requestID)
        if webSocket {
            return try await self.webSocket(
                request, app: app, target: instanceTarget, forwarded: forwarded, deadline: deadline, requestID: requestID,
                scope: target.scope, context: context, note: &note)
        }
        let (method, body, maxBodyBytes, channel) = (
            HTTPMethod(rawValue: request.method.rawValue), request.body, configuration.maxBodyBytes, context.channel
        )
        let function: @Sendable () -> String = { [launcher = live.launcher, requested = target.path] in
            kind == .op ? FunctionLabel.op(requested.opName, in: launcher.manifest) : FunctionLabel.handler(path, in: launcher.manifest)
        }
        // The body is read once the call holds an instance: waiting calls hold no body in memory.
        // The console's per-minute history is kept only while there is a console to show it.
        return try await CallMetrics.measure(app, kind: kind, function: function, history: supervisor.consoleHistory) {
            try await forward(
                to: app, deadline: deadline, channel: channel, answersHead: method == .HEAD, scope: target.scope, note: &note
            ) {
                var collected = try await Self.collect(body, upTo: maxBodyBytes, by: deadline, channel: channel)
                return InstanceRequest(
                    method: method, target: instanceTarget, headers: forwarded,
                    body: collected.readSlice(length: collected.readableBytes) ?? ByteBuffer(),
                    streamsAnswer: !instanceTarget.hasPrefix("/_gust/"), relaysLongAnswer: true
                )
            }
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
            throw ContinuousClock.now >= deadline ? CallAbandoned.deadlinePassed : CallAbandoned.clientGone
        }
    }

    /// Records need an app token whether the app is private or not: 401 without one, and nothing happens.
    private func recordsRequest(_ request: Request, app: AppName, path: Substring) async throws -> Response {
        guard await supervisor.hasApp(app) else { throw GustError.notFound("No app named \(app).") }
        guard let token = request.headers[Self.authToken], await supervisor.verifyToken(app, token) else {
            return Self.error(401, "Records of \(app) need a valid app token in X-Auth-Token (`gust tokens create \(app)`).")
        }
        let body = try await RecordsAPI.collect(request.body)
        return await records.respond(app: app, method: request.method, path: path, query: request.uri.query, body: body, caller: nil)
    }

    /// Calls an instance of the app once its pool gives one, with the request
    /// `makeCall` gives then; a call whose client leaves while it waits never runs.
    private func forward(
        to app: AppName, deadline: ContinuousClock.Instant, channel: any Channel, answersHead: Bool, scope: AnswerScope, note: inout Note,
        _ makeCall: @escaping @Sendable () async throws -> InstanceRequest
    ) async throws -> Response {
        let limit = configuration.functionTimeout
        let answer: InstanceResponse
        let instance: String
        do {
            let result = try await supervisor.withInstance(
                app, deadline: deadline, watchClient: { await ClientDisconnectHandler.watch(channel) },
                holdUntil: { $0.0.rest?.done }
            ) { instance in
                let call = try await makeCall()
                guard deadline > .now else { throw CallAbandoned.deadlinePassed }  // its body took its time
                do {
                    return (try await instance.call(call, timeout: deadline - .now), instance.id)
                } catch InstanceCallError.connectionClosed {
                    guard await instance.ranOutOfMemory() else { throw InstanceCallError.connectionClosed }
                    throw GustError(
                        "The function ran \(instance.cgroup?.outOfMemoryText ?? "out of memory") and its process was killed; "
                            + "the next request starts a new one. See `gust limits \(app)`.",
                        code: 502
                    )
                }
            }
            answer = result.0
            instance = result.1
        } catch is CancellationError {
            throw GustError("The client closed the connection before the call ran; it did not run.", code: 499)
        } catch CallAbandoned.deadlinePassed {
            throw GustError("The function did not answer within \(limit.shortText): the call's body did not arrive in time.", code: 504)
        } catch CallAbandoned.clientGone {
            throw GustError("The client closed the connection before the call ran; it did not run.", code: 499)
        } catch InstanceCallError.timedOut {
            throw GustError("The function did not answer within \(limit.shortText).", code: 504)
        } catch InstanceCallError.connectionClosed {
            throw GustError("The function's process died while answering; the next request starts a new one.", code: 502)
        } catch InstanceCallError.tooLarge {
            throw GustError(Self.answerTooLarge, code: 502)
        } catch InstanceCallError.malformedAnswer {
            throw GustError(Self.answerMalformed, code: 502)
        }
        note.instance = instance
        guard let rest = answer.rest else {
            // A HEAD's answer has no body but says the length a GET's would have (RFC 9110, 9.3.2), not 0.
            let fields = Self.clientFields(
                of: answer.headers, keepingLength: answersHead && answer.body.readableBytes == 0, scope: scope)
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: answer.body))
        }
        // A chunked or long answer is relayed chunk by chunk as the instance writes it (a stream, Server-Sent
        // Events, a download), held back while the client is slow; once the client has gone, no longer.
        channel.closeFuture.whenComplete { _ in rest.abandon() }
        let fields = Self.clientFields(of: answer.headers, keepingLength: true, scope: scope)
        return Response(status: .init(code: answer.status), headers: fields, body: ResponseBody(asyncSequence: rest.chunks))
    }

    /// An answer whose values nest (`/v1/status`); a flat one is `FlatJSON`'s, without Foundation's bridge.
    static func json(_ status: Int, _ value: [String: Any], headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json(_ status: Int, _ value: FlatJSON, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: value.buffer))
    }

    static func error(_ status: Int, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(status, errorJSON(code: status, message), headers: headers)
    }
}

extension Gateway {
    /// The app `host` and `path` address, as every way a request comes in reads it.
    func address(host: String?, path: RequestPath) -> AppAddress? {
        // A Host that is not a name and a port addresses nothing: the lanes leave it to `route`, a 400.
        if let host, !AppAddress.isWellFormed(host: host) { return nil }
        return AppAddress(
            host: host, path: path, domain: configuration.domain, custom: domains.app(for:), only: configuration.onlyApp,
            served: { [supervisor] in supervisor.route(of: $0) != nil })
    }
}

/// Which app a request is for: `APP.DOMAIN[:port]` by host, or one of the apps' own
/// domains (`custom`), else `/apps/APP/...` by path.
struct AppAddress: Equatable {
    var app: AppName
    /// The path within the app, its dot segments resolved inside it: `..`
    /// never climbs out of `/apps/APP/` into another app.
    var path: RequestPath

    /// Whether the host named the app (rather than the path).
    var byHost = false
    /// Whether the app is reached at a path address, `/apps/APP/`: every app's path addresses on a
    /// host share one browser origin (`Gateway.clientFields(of:scope:)`).
    var sharesOrigin = false
    /// The host the app was reached at as `APP.DOMAIN` under `--domain`, whose parent every app's
    /// host shares: a cookie the app sets for any other domain is dropped (`AnswerScope`).
    var cookieHost: String?

    /// What the app's answers may set, reached here.
    var scope: AnswerScope { AnswerScope(sharesOrigin: sharesOrigin, cookieHost: cookieHost) }

    /// With `only` (gustd --only-app, what `gust dev` runs), every address with a loopback host (or
    /// none) is that app's, its whole path the app's path.
    /// `served`: whether an app is served here. On an own domain, `/apps/NAME/` of another app that is
    /// served is nobody's (nil, a 404): not the domain's app's, which must not take another app's
    /// calls (the domain may be the host clients reach path addresses at, one outside `--domain`),
    /// and not NAME's, whose pages would run in the domain's origin and read its app's pages and
    /// cookies with its users' (until 2026-12-07 they were served there).
    init?(
        host: String?, path: RequestPath, domain: String, custom: (DomainName) -> AppName? = { _ in nil }, only: AppName? = nil,
        served: (AppName) -> Bool = { _ in false }
    ) {
        if let only {
            // `gust dev` listens on loopback and runs the app with the developer's `.env`: a page
            // the developer visits could rebind its own name to 127.0.0.1, and call the app and read
            // its answers as same-origin. No page is served under a loopback name but the app's own.
            if let host, !Self.isLoopback(host: host) { return nil }
            app = only
            self.path = path.resolvingDotSegments()
            return
        }
        if let host {
            let name = Self.hostName(host)
            if let app = Self.app(named: name, under: domain) {
                self.app = app
                self.path = path.resolvingDotSegments()
                byHost = true
                cookieHost = name
                return
            }
            if let own = DomainName(host: Substring(host)), let app = custom(own) {
                if let other = Self.pathApp(path), other != app, served(other) { return nil }
                self.app = app
                self.path = path.resolvingDotSegments()
                byHost = true
                return
            }
        }
        guard let app = Self.pathApp(path) else { return nil }
        self.app = app
        self.path = path.dropFirst(2).resolvingDotSegments()
        sharesOrigin = true
    }

    /// The app of a path address, `/apps/APP/...`.
    static func pathApp(_ path: RequestPath) -> AppName? {
        let segments = path.segments
        guard segments.count >= 2, segments[0] == "apps" else { return nil }
        return try? AppName(segments[1])
    }

    /// The host before its first `:`, lower-cased: by bytes when it is ASCII (every request's
    /// host is read here; no ASCII character joins a `:` to another), by characters otherwise.
    /// (As `split(separator: ":", maxSplits: 1).first` reads it: the first run of bytes that are no `:`.)
    /// Whether a Host header names this machine's loopback: `localhost` and names under it (RFC
    /// 6761), 127.0.0.0/8, `[::1]`, with or without a port.
    /// Whether an `Origin` (`scheme://host[:port]`) is a page served on a loopback name; `null` is not.
    static func isLoopbackOrigin(_ origin: String) -> Bool {
        guard let separator = origin.range(of: "://") else { return false }
        let scheme = origin[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return false }
        let authority = origin[separator.upperBound...]
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return false }
        return isLoopback(host: String(authority))
    }

    static func isLoopback(host: String) -> Bool {
        let name: String
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            name = String(host[host.index(after: host.startIndex)..<end])
            return name == "::1" || name == "0:0:0:0:0:0:0:1"
        }
        name = hostName(host)
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Whether `host` is what a Host field may be (RFC 9110, 7.2; RFC 3986, 3.2.2): a name or IPv4
    /// address (letters, digits and `-._~!$&'()*+,;=%`) or an `[IPv6]` literal, then `:` and a port
    /// of up to five digits, if any. `hostName` reads only these: one with more after its first
    /// colon (`cats.localhost:80:junk`) was `cats`, where a front checking the whole value saw another.
    static func isWellFormed(host: String) -> Bool {
        var bytes = host.utf8[...]
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            bytes = bytes[bytes.index(after: close)...]
        } else {
            let end = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
            guard end > bytes.startIndex, bytes[..<end].allSatisfy(isNameByte) else { return false }
            bytes = bytes[end...]
        }
        guard let colon = bytes.first else { return true }
        let port = bytes.dropFirst()
        return colon == UInt8(ascii: ":") && port.count <= 5 && port.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
        default: false
        }
    }

    /// A byte of a reg-name (RFC 3986): unreserved, sub-delims, or `%` of an escape.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"),
            UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
            UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "%"):
            true
        default: false
        }
    }

    static func hostName(_ host: String) -> String {
        if host.isASCII {
            let bytes = host.utf8
            let start = bytes.firstIndex { $0 != UInt8(ascii: ":") } ?? bytes.endIndex
            let name = host[start..<(bytes[start...].firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex)]
            // Most hosts are lower case already: then nothing is lowered (a copy of each byte).
            return name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") } ? name.lowercased() : String(name)
        }
        return host.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
    }

    /// The app a host's `name` (lower case) names as `APP.DOMAIN`, `domain` in any case. Compared by
    /// bytes when both are ASCII (as every valid name is): `hasSuffix` compares by characters,
    /// asking Unicode for each, and `domain.lowercased()` made a string per request.
    static func app(named name: String, under domain: String) -> AppName? {
        guard name.isASCII, domain.isASCII else {
            let suffix = "." + domain.lowercased()
            return name.hasSuffix(suffix) ? try? AppName(String(name.dropLast(suffix.count))) : nil
        }
        let bytes = name.utf8, domainBytes = domain.utf8
        guard bytes.count > domainBytes.count + 1 else { return nil }
        let dot = bytes.index(bytes.endIndex, offsetBy: -(domainBytes.count + 1))
        guard bytes[dot] == UInt8(ascii: "."),
            zip(bytes[bytes.index(after: dot)...], domainBytes).allSatisfy({ byte, wanted in
                byte == (wanted >= UInt8(ascii: "A") && wanted <= UInt8(ascii: "Z") ? wanted | 0x20 : wanted)
            })
        else { return nil }
        return try? AppName(String(name[..<dot]))
    }
}
