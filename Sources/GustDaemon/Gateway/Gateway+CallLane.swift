import GustCore
import HTTPTypes
import GustBuild
import NIOCore
import NIOHTTP1

/// The gateway's lane for calls: an ordinary call taken from the channel
/// handler (`GatewayLane`) or from the connection's bytes (`PlainLane`) and
/// forwarded on the event loop that read it, with none of Hummingbird's
/// per-request machinery and no Swift Concurrency task (docs/benchmarks.md,
/// "A lane for calls"). It takes a handler's request or an op's `POST` without an
/// upgrade, and without a body but a small one `PlainLane` has read whole, to an app
/// with a live release whose runtime tags its calls (a private app's after its token is
/// checked on the store's thread, never on the loop): at once when one of its
/// instances is free, else through the pool's queue like any call (a callback
/// waiter: the 503 of a full queue, the 504 of a call whose limit passes while
/// it waits, the 503 of a release that cannot start, a client that leaves while
/// it waits, a switch to a new release while it waits). Everything else (any
/// other body, an op's `GET`, a WebSocket, a redirect, an app no
/// instance of which has started yet) goes to `respond` as before, which reads
/// a body once the call has an instance. A call here keeps what `respond` gives
/// one: its time limit counted from its arrival, `X-Forwarded-*` and
/// `X-Request-Id`, its access-log line and metrics, JSON errors, a streamed
/// answer relayed as it comes, the instance discarded after a failed call.
extension Gateway {
    /// What the lane does with a request.
    enum LaneAnswer {
        /// Answers it at once (`/_/health`).
        case now(ImmediateAnswer)
        /// Starts the call, which answers through the reply it is given.
        case call(@Sendable (LaneReply) -> Void)
    }

    /// The lane's answer to `request` on `channel`, or nil for `respond`.
    func laneAnswer(_ request: HTTPRequest, channel: any Channel) -> LaneAnswer? {
        if let immediate = answerAtOnce(request) { return .now(immediate) }
        return laneCall(request, channel: channel).map(LaneAnswer.call)
    }

    /// What sends `request` if it is an ordinary call: on a free instance at once, or once the
    /// pool gives one; nil (holding nothing) for anything else.
    func laneCall(_ request: HTTPRequest, channel: any Channel) -> (@Sendable (LaneReply) -> Void)? {
        guard let target = request.path, request.method != .head, request.method != .connect else { return nil }
        let fields = request.headerFields
        // A second Host (left among the fields) is `route`'s 400.
        guard fields[.upgrade] == nil, Self.laneTakes(connection: fields[.connection]), fields[.transferEncoding] == nil, fields[.expect] == nil,
            fields[.contentLength] == nil || fields[.contentLength] == "0", fields[Gateway.hostField] == nil
        else { return nil }
        return laneCall(
            method: request.method, target: target, host: request.authority, sentRequestID: fields[ForwardedHeaders.requestID], channel: channel,
            token: { fields[Gateway.authToken] }
        ) { [forwarding] requestID in
            forwarding.headers(of: fields, peer: channel.remoteAddress?.ipAddress, requestID: requestID)
        }
    }

    /// The same for a head read from the connection's bytes, which starts at `bytes`' reader index
    /// with its body after it (`PlainLane`, which has checked its headers: a `GET` or `POST`, a body
    /// of a `Content-Length` whole in `bytes`, no upgrade and no other `Connection` than
    /// `keep-alive` or `close`), from `peer` (the client's IP address).
    func laneCall(_ head: PlainRequestHead, in bytes: ByteBuffer, channel: any Channel, peer: String?) -> (@Sendable (LaneReply) -> Void)? {
        // A body over gustd's limit (`--max-body`) goes on to `respond`, which answers 413.
        guard head.bodyLength <= configuration.maxBodyBytes,
            let body = bytes.getSlice(at: bytes.readerIndex + head.length, length: head.bodyLength)
        else { return nil }
        return laneCall(
            method: head.method == .post ? .post : .get, target: head.target, host: head.host, sentRequestID: head.requestID, body: body,
            channel: channel, token: { head.value(of: Gateway.authToken.rawName, in: bytes) }
        ) { [forwarding] requestID in
            forwarding.headers(ofPlain: head.fields(in: bytes), peer: peer, requestID: requestID)
        }
    }

    /// What both read: `forwarded` gives the headers the instance is sent, and `token` the app token
    /// sent (`X-Auth-Token`), once the call is one for the lane.
    private func laneCall(
        method: HTTPRequest.Method, target: String, host: String?, sentRequestID: String?, body: ByteBuffer = ByteBuffer(), channel: any Channel,
        token: () -> String?, forwarded: (_ requestID: String) -> HTTPHeaders
    ) -> (@Sendable (LaneReply) -> Void)? {
        let (path, query) = RequestPath.splitTarget(target)
        guard query?.isEmpty != true, !target.utf8.contains(UInt8(ascii: "#")) else { return nil }  // by byte: a `#` joined to a mark too
        if challenges != nil, ChallengeResponder.claims(path) { return nil }
        guard
            let address = address(host: host, path: RequestPath(percentEncoded: String(path))),
            redirect?.location(host: host, target: target, addressed: address, domain: configuration.domain) == nil,
            !address.path.reachesReservedSurface,
            let live = supervisor.route(of: address.app), LaneCall.takes(live)
        else { return nil }
        // An op is `POST /_/functions/NAME` (past `reachesReservedSurface`, a NAME is there), sent
        // without its query, its answer whole, as `respond` sends it; any other method there is
        // `respond`'s 405, and the rest of `/_/` is not a call.
        let kind: CallKind
        if address.path.segments.first == "_" {
            guard address.path.isOpCall, method == .post else { return nil }
            kind = .op
        } else {
            kind = .handler
        }
        let requestID = RequestID.of(sent: sentRequestID)
        let arrived = ContinuousClock.now
        let call = LaneCall(
            gateway: self, app: address.app, method: method.rawValue, path: String(path), kind: kind,
            function: kind == .op ? address.path.opName : address.path.decoded,
            requestID: requestID, wallClock: accessLog == nil ? 0 : AccessLog.now(), arrived: arrived,
            // A call's time limit counts from its arrival: waiting for an instance is part of it.
            deadline: arrived + configuration.functionTimeout,
            request: InstanceRequest(
                method: HTTPMethod(rawValue: method.rawValue),
                target: kind == .op ? address.path.opTarget : address.path.percentEncoded + (query.map { "?\($0)" } ?? ""),
                headers: forwarded(requestID),
                body: body,
                streamsAnswer: kind == .handler, relaysLongAnswer: true),
            scope: address.scope, channel: channel)
        if live.isPrivate {
            let token = token()
            return { reply in call.verify(token, on: live, reply) }
        }
        // The common case: an instance free now, with an idle connection on this loop.
        if let lease = live.pool.tryAcquire() {
            if let connection = lease.member.idleConnection(on: channel.eventLoop) {
                return { reply in call.send(on: connection, route: live, lease: lease, reply) }
            }
            return { reply in call.run(on: live, lease: lease, reply) }
        }
        return { reply in call.wait(on: live, tries: 3, reply) }
    }
}

/// One call in the lane, from its arrival to the client's answer: what
/// `Gateway.respond`, `forward` and `Supervisor.withInstance` do for a call.
///
/// A class, made once per call: each step's callback (the pool's waiter, the instance's answer)
/// captures it, and a struct of this size was copied into each of those contexts, a retain of
/// every field each time. It holds what it reads of the gateway, not the gateway (a struct of
/// its own with the router's whole configuration).
private final class LaneCall: Sendable {
    let supervisor: Supervisor
    let accessLog: AccessLog?
    let functionTimeout: Duration
    let app: AppName
    let method: String
    /// As sent, without its query: the access log's.
    let path: String
    /// A handler's or an op's, for its metrics.
    let kind: CallKind
    /// A handler's path as the instance reads it, or an op's name: the metrics' function label.
    let function: String
    let requestID: String
    /// When it arrived, in seconds since 1970 (0 without an access log).
    let wallClock: Double
    let arrived: ContinuousClock.Instant
    let deadline: ContinuousClock.Instant
    let request: InstanceRequest
    /// Where the app was reached, for what its answer may set (`AppAddress.scope`).
    let scope: AnswerScope
    /// The client's connection.
    let channel: any Channel

    init(
        gateway: Gateway, app: AppName, method: String, path: String, kind: CallKind, function: String, requestID: String, wallClock: Double,
        arrived: ContinuousClock.Instant, deadline: ContinuousClock.Instant, request: InstanceRequest, scope: AnswerScope, channel: any Channel
    ) {
        supervisor = gateway.supervisor
        accessLog = gateway.accessLog
        functionTimeout = gateway.configuration.functionTimeout
        self.app = app
        self.method = method
        self.path = path
        self.kind = kind
        self.function = function
        self.requestID = requestID
        self.wallClock = wallClock
        self.arrived = arrived
        self.deadline = deadline
        self.request = request
        self.scope = scope
        self.channel = channel
    }

    /// Whether calls to what serves now can take the lane: a runtime that tags its calls' output,
    /// so that no pause is needed between calls for the last one's output to be read (`Instance.call`).
    static func takes(_ route: Supervisor.Route) -> Bool {
        route.launcher.manifest?.takesCallIDs == true
    }

    /// A private app's call: its token is checked on the store's thread (the loop goes on meanwhile),
    /// then it waits for an instance as any call, which also sees a client that left meanwhile. Without
    /// a valid token it is `respond`'s 403 and never runs; like `respond`'s, that is not a call of the
    /// function in its metrics, only a line in the access log.
    func verify(_ token: String?, on route: Supervisor.Route, _ reply: LaneReply) {
        guard let token else { return refuse(Gateway.notAuthorized(app), route: route, reply, counted: false) }
        supervisor.verifyToken(app, token, on: reply.eventLoop).whenSuccess { [self] valid in
            guard valid else { return refuse(Gateway.notAuthorized(app), route: route, reply, counted: false) }
            wait(on: route, tries: 3, reply)
        }
    }

    /// Waits in `route`'s queue for an instance, then runs on it; a switch to a new release
    /// while it waited moves it to that release's pool (`tries` times at most).
    func wait(on route: Supervisor.Route, tries: Int, _ reply: LaneReply) {
        let pool = route.pool
        let call = pool.newCall()
        // Its client's going takes it out of the queue (`Pool.leave`), until it is told.
        let watch = reply.waits { pool.leave(call) }
        if case .gone = watch { return refuse(Self.clientLeft, route: route, reply) }
        pool.acquire(call, deadline: deadline) { [self] result in
            reply.waited(watch)
            switch result {
            case .success(let lease):
                run(on: route, lease: lease, reply)
            case .failure(let failure as Supervisor.AppPool.Failure):
                guard failure.reason == .stopped, let now = supervisor.route(of: app), now.pool !== route.pool else {
                    return refuse(Supervisor.refusal(failure.reason, app: app, version: route.version), route: route, reply)
                }
                // The release switched while the call waited.
                guard tries > 1, Self.takes(now) else {
                    return refuse(
                        CallRefusal(status: 503, message: "\(app) was deploying; try again.", retryAfter: .seconds(1)), route: now, reply)
                }
                if let lease = now.pool.tryAcquire() { return run(on: now, lease: lease, reply) }
                reply.eventLoop.execute { [self] in wait(on: now, tries: tries - 1, reply) }
            case .failure:
                // Its client left while it waited (a cancellation): it never runs.
                refuse(Self.clientLeft, route: route, reply)
            }
        }
    }

    /// A call whose client left before it had an instance.
    private static let clientLeft = CallRefusal(
        status: 499, message: "The client closed the connection before the call ran; it did not run.")

    /// Runs on the instance of `lease`, on a connection of this loop (made if none is idle).
    func run(on route: Supervisor.Route, lease: Supervisor.AppPool.Lease, _ reply: LaneReply) {
        let loop = reply.eventLoop
        guard deadline > .now else {
            route.pool.giveBack(lease)
            return refuse(Supervisor.refusal(.timedOut, app: app, version: route.version), route: route, reply)
        }
        if let connection = lease.member.idleConnection(on: loop) { return send(on: connection, route: route, lease: lease, reply) }
        lease.member.connection(on: loop).whenComplete { [self] made in
            switch made {
            case .success(let connection): send(on: connection, route: route, lease: lease, reply)
            case .failure: relay(.failed(.connectionClosed), route: route, lease: lease, to: reply)
            }
        }
    }

    /// Sends the call on `connection` of the instance of `lease`; its answer goes to `reply`.
    func send(on connection: InstanceConnection, route: Supervisor.Route, lease: Supervisor.AppPool.Lease, _ reply: LaneReply) {
        lease.member.start(request, on: connection, timeout: deadline - .now) { [self] part in
            relay(part, route: route, lease: lease, to: reply)
        }
    }

    private func relay(_ part: InstanceAnswerPart, route: Supervisor.Route, lease: Supervisor.AppPool.Lease, to reply: LaneReply) {
        let pool = route.pool
        switch part {
        case .whole(let answer):
            if lease.member.isBroken { pool.discard(lease) } else { pool.release(lease) }
            var head = self.head(answer.status, answer.headers)
            // Appended, not set by name: `head` has no length of its own (`clientFields` leaves it out).
            head.headerFields.append(HTTPField(name: .contentLength, value: String(answer.body.readableBytes)))
            record(status: answer.status, bytes: answer.body.readableBytes, route: route, instance: lease.member.id)
            reply.answer(head, body: answer.body)
        case .head(let status, let headers, let flow):
            // A chunked or long answer is relayed chunk by chunk as the instance writes it (with its length,
            // if it gave one), held back while the client is slow; the slot is held until its end.
            record(status: status, bytes: 0, route: route, instance: lease.member.id)
            reply.head(head(status, headers, keepingLength: true), flow: flow)
        case .chunk(let chunk):
            reply.body(chunk)
        case .end:
            pool.release(lease)
            reply.end()
        case .streamFailed(let error):
            if error.discardsInstance { pool.discard(lease) } else { pool.release(lease) }
            reply.abort()
        case .failed(let error):
            pool.discard(lease)
            let limit = functionTimeout
            switch error {
            case .timedOut, .clientTooSlow:
                refuse(CallRefusal(status: 504, message: "The function did not answer within \(limit.shortText)."), route: route, reply)
            case .tooLarge:
                refuse(CallRefusal(status: 502, message: Gateway.answerTooLarge), route: route, reply)
            case .malformedAnswer:
                refuse(CallRefusal(status: 502, message: Gateway.answerMalformed), route: route, reply)
            case .connectionClosed:
                let instance = lease.member
                instance.ranOutOfMemory(checkingOn: reply.eventLoop) { [self] outOfMemory in
                    guard outOfMemory else {
                        return refuse(
                            CallRefusal(
                                status: 502, message: "The function's process died while answering; the next request starts a new one."),
                            route: route, reply)
                    }
                    refuse(
                        CallRefusal(
                            status: 502,
                            message: "The function ran \(instance.cgroup?.outOfMemoryText ?? "out of memory") and its process was killed; "
                                + "the next request starts a new one. See `gust limits \(app)`."),
                        route: route, reply)
                }
            }
        }
    }

    /// The client's head of the instance's answer: its headers less hop-by-hop ones and its own
    /// framing (but its length, when `keepingLength`: `Gateway.clientFields`).
    private func head(_ status: Int, _ headers: HTTPHeaders, keepingLength: Bool = false) -> HTTPResponse {
        let fields = Gateway.clientFields(of: headers, reserving: 4, keepingLength: keepingLength, requestID: requestID, scope: scope)
        return HTTPResponse(status: .init(code: status), headerFields: fields)
    }

    /// Answers without the function's answer: JSON with its status (and `Retry-After` when waiting helps).
    /// `counted`: whether it is a call of the function in its metrics (a refused token's is not).
    private func refuse(_ refusal: CallRefusal, route: Supervisor.Route, _ reply: LaneReply, counted: Bool = true) {
        let body = Gateway.errorJSON(code: refusal.status, refusal.message).buffer
        var head = Gateway.jsonHead(refusal.status, body: body, requestID: requestID)
        head.headerFields.append(contentsOf: refusal.headers)
        record(status: refusal.status, bytes: body.readableBytes, route: route, instance: nil, counted: counted)
        reply.answer(head, body: body)
    }

    /// Its metrics (when `counted`) and its access-log line, once its status is known.
    private func record(status: Int, bytes: Int, route: Supervisor.Route, instance: String?, counted: Bool = true) {
        let duration = ContinuousClock.now - arrived
        if counted { recordMetrics(status: status, duration: duration, route: route) }
        accessLog?.record(AccessLog.Entry(
            app: app.rawValue, release: route.version, instance: instance, method: method, path: path, status: status, bytes: bytes,
            duration: duration, requestID: requestID, time: wallClock))
    }

    private func recordMetrics(status: Int, duration: Duration, route: Supervisor.Route) {
        CallMetrics.record(
            app, kind: kind,
            function: { [launcher = route.launcher, kind, function] in
                kind == .op ? FunctionLabel.op(function, in: launcher.manifest) : FunctionLabel.handler(function, in: launcher.manifest)
            },
            status: status, duration: duration, history: supervisor.consoleHistory)
    }
}
