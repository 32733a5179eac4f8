import HTTPTypes
import NIOCore
import NIOHTTP1

/// What every path of the gateway (`respond`'s forwarding, the lane for calls,
/// a refused WebSocket handshake, `/_/health` at once) makes of an instance's
/// answer and of an error, written once so the paths cannot drift apart: the
/// answer's headers less hop-by-hop ones and its own framing, and errors as
/// JSON `{"code": N, "error": message}`.
extension Gateway {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "date",
    ]

    /// An instance's answer headers as the client gets them: without hop-by-hop headers, a
    /// `Set-Cookie` of the console's cookies (`ForwardedHeaders.setsConsoleCookie`) and, unless
    /// `keepingLength`, its `Content-Length` (the gateway frames a whole answer itself). An answer
    /// whose body gustd relays as it comes (a long one), or does not have (a `HEAD`'s), keeps the
    /// length the instance gave (`keptLength`). With a `requestID`, that is the answer's one
    /// `X-Request-Id`, whatever the instance sent (the same as setting it after, without
    /// `HTTPFields` looking for the field by name to replace it).
    ///
    /// At a path address, `/apps/APP/`, whose origin every app's path addresses on the host share
    /// (`scope.sharesOrigin`), it also loses the headers that act on the whole origin or host:
    /// `Service-Worker-Allowed` (a service worker of one app's that widened its scope to `/` would
    /// read and rewrite every other app's answers), `Clear-Site-Data` (one app would clear every
    /// other's cookies and storage) and `Strict-Transport-Security` (one app would have browsers
    /// refuse the host, and with `includeSubDomains` every app's `APP.DOMAIN`, over plain HTTP).
    /// At `APP.DOMAIN` under `--domain` (`scope.cookieHost`), a `Set-Cookie` for another domain
    /// than the app's own host (`Domain=DOMAIN`, which every app's host would send back) is dropped.
    static func clientFields(
        of headers: HTTPHeaders, reserving extra: Int = 0, keepingLength: Bool = false, requestID: String? = nil,
        scope: AnswerScope = AnswerScope()
    ) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count + extra)
        for (name, value) in headers {
            // The name's canonical form is lowercase already: no second lowered copy per header.
            guard let fieldName = HTTPField.Name(name), !hopByHop.contains(fieldName.canonicalName), fieldName != .contentLength,
                requestID == nil || fieldName != ForwardedHeaders.requestID,
                fieldName != .setCookie || scope.keepsCookie(value),
                !scope.sharesOrigin || !Self.actsOnTheOrigin.contains(fieldName.canonicalName)
            else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        if let requestID { fields.append(HTTPField(name: ForwardedHeaders.requestID, value: requestID)) }
        if keepingLength, let length = keptLength(of: headers) { fields[.contentLength] = length }
        return fields
    }

    /// Answer headers that act on the whole origin (or host), dropped where apps share one.
    static let actsOnTheOrigin: Set<String> = ["service-worker-allowed", "clear-site-data", "strict-transport-security"]

    /// The `Content-Length` an answer keeps: the instance's own, when it framed its answer by length
    /// (no `Transfer-Encoding`). The client then knows how much is coming (a download's progress)
    /// and sees an answer cut short as one; without it a relayed answer would reach the client
    /// chunked. Nil for a chunked answer or a length that is not one plain number (the instance's
    /// decoder would have refused it anyway).
    private static func keptLength(of headers: HTTPHeaders) -> String? {
        guard !headers.contains(name: "transfer-encoding") else { return nil }
        let lengths = headers[canonicalForm: "content-length"]
        guard lengths.count == 1, let length = lengths.first, !length.isEmpty, length.utf8.count <= 18,
            length.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return String(length)
    }

    /// The body of an error: `{"code": N, "error": message}`.
    static func errorJSON(code: Int, _ message: String) -> FlatJSON {
        FlatJSON([("code", .int(code)), ("error", .string(message))])
    }

    /// The head of a JSON answer the gateway writes itself, outside Hummingbird (the lane, health).
    static func jsonHead(_ status: Int, body: ByteBuffer, requestID: String) -> HTTPResponse {
        // Appended one by one: the dictionary literal checks each name against the others.
        var fields = HTTPFields()
        fields.reserveCapacity(6)
        fields.append(HTTPField(name: .contentType, value: "application/json"))
        fields.append(HTTPField(name: .contentLength, value: String(body.readableBytes)))
        fields.append(HTTPField(name: ForwardedHeaders.requestID, value: requestID))
        return HTTPResponse(status: .init(code: status), headerFields: fields)
    }
}
