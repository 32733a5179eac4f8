import GustCore
import HTTPTypes
import Hummingbird
import NIOCore

/// An app's `/_/health`, the one answer of the gateway made from the request's
/// head alone: `respond` gives it on Hummingbird's path, and `GatewayLane`
/// on the event loop that read the request (most of them), so both give the
/// same bytes.
extension Gateway {
    /// What the health of `live` says: its release, the state of its pool, the instances serving,
    /// and the first line of why its starts fail, while they do.
    static func health(of app: AppName, _ live: Supervisor.Route) -> FlatJSON {
        let snapshot = live.pool.snapshot
        // In key order, which `FlatJSON.buffer` writes without sorting.
        var fields: [(String, FlatJSON.Value)] = []
        fields.reserveCapacity(5)
        fields.append(("app", .string(app.rawValue)))
        if let crashing = snapshot.crashing {
            fields.append(("error", .string(crashing.split(separator: "\n").first.map(String.init) ?? crashing)))
        }
        fields.append(("instances", .int(snapshot.serving)))
        fields.append(("release", .string("v\(live.version)")))
        fields.append(("state", .string(snapshot.state)))
        return FlatJSON(fields)
    }

    /// Whether the lane takes a request with this `Connection` header: none, `keep-alive` (what
    /// browsers send) or `close` (the lane then closes the connection after its answer). Any other
    /// value names hop-by-hop headers of its own, which `respond` deals with.
    static func laneTakes(connection: String?) -> Bool {
        guard let connection else { return true }
        return asksToClose(connection: connection) || Self.connection(connection, is: "keep-alive")
    }

    /// Whether a `Connection` header says `close`: the one reading of it the lane and
    /// `laneTakes` share.
    static func asksToClose(connection: String?) -> Bool {
        connection.map { Self.connection($0, is: "close") } ?? false
    }

    /// `value` is the token `lowercase` in any case, compared byte by byte: no string is made
    /// on a path every request with the header takes.
    private static func connection(_ value: String, is lowercase: String) -> Bool {
        value.utf8.count == lowercase.utf8.count
            && zip(value.utf8, lowercase.utf8).allSatisfy { byte, wanted in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == wanted
            }
    }

    /// A finished answer for the lane to write.
    struct ImmediateAnswer {
        var head: HTTPResponse
        var body: ByteBuffer
    }

    /// The answer to `request` if it is a plain `/_/health` of an app with a live release (no body,
    /// no upgrade, no `Connection` but `keep-alive` or `close`, nothing redirected), with its access log line written;
    /// nil for anything else, which `respond` answers. `Date` and `Server` are the lane's to add.
    func answerAtOnce(_ request: HTTPRequest) -> ImmediateAnswer? {
        guard let target = request.path, let path = Self.healthPath(of: target) else { return nil }
        let fields = request.headerFields
        // A second Host (left among the fields) is `route`'s 400.
        guard fields[.upgrade] == nil, Self.laneTakes(connection: fields[.connection]), fields[.transferEncoding] == nil,
            fields[.contentLength] == nil || fields[.contentLength] == "0", fields[Gateway.hostField] == nil
        else { return nil }
        return healthAnswer(
            method: request.method.rawValue, target: target, path: path, host: request.authority,
            sentRequestID: fields[ForwardedHeaders.requestID])
    }

    /// The same for a head `PlainLane` read from the connection's bytes (which has checked its headers).
    func answerAtOnce(_ head: PlainRequestHead) -> ImmediateAnswer? {
        guard let path = Self.healthPath(of: head.target) else { return nil }
        return healthAnswer(method: "GET", target: head.target, path: path, host: head.host, sentRequestID: head.requestID)
    }

    /// `target`'s path, if a first look by bytes says it could be a health check; what decides is the
    /// decoded path (`healthAnswer`). Any other target, and any other spelling of it, is `respond`'s.
    private static func healthPath(of target: String) -> Substring? {
        let path = RequestPath.splitTarget(target).path
        return path.utf8.count >= 9 && path.utf8.suffix(9).elementsEqual("/_/health".utf8) ? path : nil
    }

    /// The health answer of the app `host` and `target` (whose path is `path`) address, if that is what they address.
    private func healthAnswer(method: String, target: String, path: Substring, host: String?, sentRequestID: String?) -> ImmediateAnswer? {
        let arrived = ContinuousClock.now
        guard let address = address(host: host, path: RequestPath(percentEncoded: String(path))),
            address.path.isHealth,
            redirect?.location(host: host, target: target, addressed: address, domain: configuration.domain) == nil,
            let live = supervisor.route(of: address.app)
        else { return nil }
        let requestID = RequestID.of(sent: sentRequestID)
        let body = Self.health(of: address.app, live).buffer
        let head = Self.jsonHead(200, body: body, requestID: requestID)
        accessLog?.record(AccessLog.Entry(
            app: address.app.rawValue, release: live.version, instance: nil, method: method, path: String(path),
            status: 200, bytes: body.readableBytes, duration: ContinuousClock.now - arrived, requestID: requestID, time: AccessLog.now()
        ))
        return ImmediateAnswer(head: head, body: body)
    }
}
