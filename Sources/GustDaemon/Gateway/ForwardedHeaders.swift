import Foundation
import GustConsole
import HTTPTypes
import NIOHTTP1

/// The headers a call carries to its function: the client's, less hop-by-hop
/// ones, every `X-Gust-*` (gustd's protocol with the instance), the console's cookies and, but
/// from a trusted proxy, what proxies say about the client and its URL (`proxyClaims`:
/// `X-Forwarded-Host`, `Forwarded`, `X-Real-IP`, `X-Forwarded-Prefix`…, and any spelling of these
/// with `_`), plus `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Request-Id`.
///
/// gustd is the edge by default: `X-Forwarded-For` is the peer's address,
/// replacing whatever the client sent (a client could otherwise claim any
/// address). When the peer is a trusted proxy (`gustd --trusted-proxy`), the
/// peer is appended to the list that proxy sent, and the proxy's
/// `X-Forwarded-Proto` is kept.
struct ForwardedHeaders {
    /// `http` on the plain listener; the HTTPS listener passes `https`.
    var scheme: String
    /// Peer addresses whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    var trustedProxies: Set<String>

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let requestID = HTTPField.Name("X-Request-Id")!

    /// What the instance is sent for a request from `peer` (its IP address, nil if unknown).
    func headers(of request: HTTPFields, peer: String?, requestID: String) -> HTTPHeaders {
        headers(of: request.lazy.map { ($0.name.rawName, $0.name.canonicalName, $0.value) }, count: request.count, peer: peer, requestID: requestID)
    }

    /// The same for the fields of a head read from the bytes (`PlainRequestHead.fields(in:)`), as sent.
    func headers(ofPlain request: [(name: String, value: String)], peer: String?, requestID: String) -> HTTPHeaders {
        headers(of: request.lazy.map { ($0.name, $0.name.lowercased(), $0.value) }, count: request.count, peer: peer, requestID: requestID)
    }

    /// `fields`: each with its name as sent and in lower case.
    private func headers(
        of fields: some Sequence<(name: String, canonical: String, value: String)>, count: Int, peer: String?, requestID: String
    ) -> HTTPHeaders {
        let trusted = peer.map(trustedProxies.contains) ?? false
        var sentFor: [String] = []
        var sentProto: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(count + 3)
        for field in fields {
            let name = field.canonical
            if Self.dropped.contains(name) || name.hasPrefix("x-gust-") { continue }
            // `X_Forwarded_For` and the like: runtimes (CGI's rules, WSGI's environ) fold `_` into
            // `-`, so a client's spelling would join gustd's own, ahead of it.
            if name.utf8.contains(UInt8(ascii: "_")), Self.foldsOntoOwn(name) { continue }
            switch name {
            case "x-forwarded-for": if trusted { sentFor.append(field.value) }
            case "x-forwarded-proto": if trusted { sentProto = field.value }
            // Who the client is and which URL it asked for, said by a client: believed from a trusted proxy only.
            case _ where Self.proxyClaims.contains(name): if trusted { headers.add(name: field.name, value: field.value) }
            case "x-request-id": continue
            case "cookie": if let kept = Self.withoutConsoleCookies(field.value) { headers.add(name: field.name, value: kept) }
            default: headers.add(name: field.name, value: field.value)
            }
        }
        if sentFor.isEmpty {
            // The edge's case, on every call: the peer alone, without an array to join.
            if let peer { headers.add(name: "X-Forwarded-For", value: peer) }
        } else {
            if let peer { sentFor.append(peer) }
            headers.add(name: "X-Forwarded-For", value: sentFor.joined(separator: ", "))
        }
        let proto = sentProto.map { $0.lowercased() }.flatMap { $0 == "http" || $0 == "https" ? $0 : nil } ?? scheme
        headers.add(name: "X-Forwarded-Proto", value: proto)
        headers.add(name: "X-Request-Id", value: requestID)
        return headers
    }

    /// The console's session and sign-in cookies (`ConsoleServer`): a browser sends a host's cookies
    /// to every port of it, so an admin signed in to the console would hand its session to any
    /// app's function called on the same host. `value` less those pairs; nil when none is left.
    static func withoutConsoleCookies(_ value: String) -> String? {
        guard value.contains("gust_") else { return value }  // the common case: nothing to split
        let kept = value.split(separator: ";").filter { pair in
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first?.trimmingCharacters(in: .whitespaces)
            return !ConsoleServer.cookieNames.contains(name ?? "")
        }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// Whether a `Set-Cookie` value sets one of the console's cookies: an app answering on the
    /// console's host could otherwise sign the admin's browser in to a session of its choosing
    /// (its own scoped token's), or out.
    static func setsConsoleCookie(_ value: String) -> Bool {
        guard value.contains("gust_") else { return false }  // the common case
        let name = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first?
            .split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first?.trimmingCharacters(in: .whitespaces)
        return ConsoleServer.cookieNames.contains(name ?? "")
    }

    /// Whether a name with `_` in it reads, `_` taken as `-`, as a header gustd sets or believes
    /// only from a trusted proxy.
    static func foldsOntoOwn(_ name: String) -> Bool {
        let folded = name.replacingOccurrences(of: "_", with: "-")
        return folded.hasPrefix("x-gust-") || ["x-forwarded-for", "x-forwarded-proto", "x-request-id"].contains(folded)
            || proxyClaims.contains(folded)
    }

    /// What proxies say about the client and the URL it asked for, and frameworks believe behind
    /// one (the host for links, Werkzeug ProxyFix's port and prefix, IIS's and Symfony's original
    /// URL, a CDN's client address): passed from a trusted proxy only.
    static let proxyClaims: Set<String> = [
        "x-forwarded-host", "forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server",
        "x-forwarded-ssl", "x-forwarded-scheme", "x-forwarded", "forwarded-for", "x-original-url", "x-rewrite-url",
        "x-original-host", "true-client-ip", "x-client-ip", "x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip",
    ]

    /// Hop-by-hop headers (RFC 9110, 7.6.1) and those gustd sets itself.
    static let dropped: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "date", "content-length",
    ]
}
