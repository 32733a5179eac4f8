import GustCore
import HTTPTypes
import GustBuild
import NIOCore
import NIOHTTP1

/// The gateway's lane for calls: an ordinary call taken from the channel
/// handler (`GatewayLane`) and forwarded on the event loop that read it, with
/// none of Hummingbird's per-request machinery and no Swift Concurrency task
/// (docs/benchmarks.md, "A lane for calls"). Only the common case takes it: a
/// handler's request without a body or an upgrade, to a public app with a live
/// release whose runtime tags its calls, when one of its instances is free now
/// and has an idle connection on this loop. Everything else (a body, a wait in
/// the queue, a start from zero, a private app, an op, a WebSocket, a redirect)
/// goes to `respond` as before. A call here keeps what `respond` gives one: its
/// time limit, `X-Forwarded-*` and `X-Request-Id`, its access-log line and
/// metrics, JSON errors, a streamed answer relayed as it comes, the instance
/// discarded after a failed call.
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

    /// Takes an instance for `request` if it is an ordinary call and one is free now, and
    /// returns what sends it; nil (holding nothing) for anything else.
    func laneCall(_ request: HTTPRequest, channel: any Channel) -> (@Sendable (LaneReply) -> Void)? {
        guard let target = request.path, request.method != .head, request.method != .connect else { return nil }
        let fields = request.headerFields
        guard fields[.upgrade] == nil, fields[.connection] == nil, fields[.transferEncoding] == nil, fields[.expect] == nil,
            fields[.contentLength] == nil || fields[.contentLength] == "0"
        else { return nil }
        let (path, query) = RequestPath.splitTarget(target)
        guard query?.isEmpty != true, !target.contains("#") else { return nil }
        let host = request.authority
        if let challenges, challenges.answer(path: String(path), host: host) != nil { return nil }
        guard
            let address = AppAddress(
                host: host, path: RequestPath(percentEncoded: String(path)), domain: configuration.domain,
                custom: domains.app(for:), only: configuration.onlyApp),
            redirect?.location(host: host, target: target, addressed: address, domain: configuration.domain) == nil,
            !address.path.reachesReservedSurface, address.path.segments.first != "_",
            let live = supervisor.route(of: address.app), !live.isPrivate, live.launcher.manifest?.takesCallIDs == true,
            let lease = live.pool.tryAcquire()
        else { return nil }
        let instance = lease.member
        guard let connection = instance.idleConnection(on: channel.eventLoop) else {
            live.pool.giveBack(lease)
            return nil
        }
        let call = LaneCall(
            gateway: self, app: address.app, release: live.version, pool: live.pool, lease: lease, launcher: live.launcher,
            method: request.method.rawValue, path: String(path), function: address.path.decoded,
            requestID: RequestID.of(sent: fields[ForwardedHeaders.requestID]), wallClock: accessLog == nil ? 0 : AccessLog.now())
        let sent = InstanceRequest(
            method: HTTPMethod(rawValue: request.method.rawValue), target: address.path.percentEncoded + (query.map { "?\($0)" } ?? ""),
            headers: forwarding.headers(of: fields, peer: channel.remoteAddress?.ipAddress, requestID: call.requestID),
            streamsAnswer: true)
        let limit = configuration.functionTimeout
        return { reply in
            instance.start(sent, on: connection, timeout: limit) { part in call.relay(part, to: reply) }
        }
    }
}

/// One call in the lane, from its instance's answer to the client's: what
/// `Gateway.respond` and `forward` do once the instance has answered.
private struct LaneCall: Sendable {
    let gateway: Gateway
    let app: AppName
    let release: Int
    let pool: Supervisor.AppPool
    let lease: Supervisor.AppPool.Lease
    let launcher: DirectLauncher
    let method: String
    /// As sent, without its query: the access log's.
    let path: String
    /// As the instance reads it: the metrics' function label.
    let function: String
    let requestID: String
    /// When it arrived, in seconds since 1970 (0 without an access log).
    let wallClock: Double
    let arrived = ContinuousClock.now

    func relay(_ part: InstanceAnswerPart, to reply: LaneReply) {
        switch part {
        case .whole(let answer):
            if lease.member.isBroken { pool.discard(lease) } else { pool.release(lease) }
            var head = self.head(answer.status, answer.headers)
            head.headerFields[.contentLength] = String(answer.body.readableBytes)
            record(status: answer.status, bytes: answer.body.readableBytes, instance: lease.member.id)
            reply.answer(head, body: answer.body)
        case .head(let status, let headers):
            // A chunked answer is relayed chunk by chunk as the instance writes it; the slot is held until its end.
            record(status: status, bytes: 0, instance: lease.member.id)
            reply.head(head(status, headers))
        case .chunk(let chunk):
            reply.body(chunk)
        case .end:
            pool.release(lease)
            reply.end()
        case .streamFailed:
            pool.discard(lease)
            reply.abort()
        case .failed(let error):
            pool.discard(lease)
            let limit = gateway.configuration.functionTimeout
            switch error {
            case .timedOut:
                refuse(504, "The function did not answer within \(limit.shortText).", reply)
            case .connectionClosed, .tooLarge:
                let instance = lease.member
                instance.ranOutOfMemory(checkingOn: reply.eventLoop) { outOfMemory in
                    guard outOfMemory else {
                        return refuse(502, "The function's process died while answering; the next request starts a new one.", reply)
                    }
                    refuse(
                        502,
                        "The function ran \(instance.cgroup?.outOfMemoryText ?? "out of memory") and its process was killed; "
                            + "the next request starts a new one. See `gust limits \(app)`.",
                        reply)
                }
            }
        }
    }

    /// The client's head of the instance's answer: its headers less hop-by-hop ones and its own framing.
    private func head(_ status: Int, _ headers: HTTPHeaders) -> HTTPResponse {
        var fields = Gateway.clientFields(of: headers, reserving: 4)
        fields[ForwardedHeaders.requestID] = requestID
        return HTTPResponse(status: .init(code: status), headerFields: fields)
    }

    private func refuse(_ status: Int, _ message: String, _ reply: LaneReply) {
        let body = Gateway.errorJSON(code: status, message).buffer
        let head = Gateway.jsonHead(status, body: body, requestID: requestID)
        record(status: status, bytes: body.readableBytes, instance: nil)
        reply.answer(head, body: body)
    }

    /// Its metrics and its access-log line, once its status is known.
    private func record(status: Int, bytes: Int, instance: String?) {
        let duration = ContinuousClock.now - arrived
        CallMetrics.record(
            app, kind: .handler, function: { [launcher, function] in FunctionLabel.handler(function, in: launcher.manifest) },
            status: status, duration: duration, history: gateway.supervisor.consoleHistory)
        gateway.accessLog?.record(AccessLog.Entry(
            app: app.rawValue, release: release, instance: instance, method: method, path: path, status: status, bytes: bytes,
            duration: duration, requestID: requestID, time: wallClock))
    }
}
