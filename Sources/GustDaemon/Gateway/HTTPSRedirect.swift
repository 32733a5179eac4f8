import GustCore
import Synchronization

/// `gustd --redirect-https`: a request on the HTTP listener whose Host names an
/// app (`APP.DOMAIN` or one of its own domains) gets 301 to the same path over
/// HTTPS. Other hosts are not redirected (the Location is never built from a
/// name gustd does not serve), nor is ACME's challenge path, which must stay on HTTP.
final class HTTPSRedirect: Sendable {
    /// The port HTTPS is served on, as clients reach it (set once the listener is bound).
    private let port = Atomic<Int>(443)

    init(port: Int) { self.port.store(port, ordering: .relaxed) }

    func setPort(_ port: Int) { self.port.store(port, ordering: .relaxed) }

    /// Where to send the request for `target` (its path and query), or nil to serve it here.
    func location(host: String?, target: String, addressed: AppAddress?, domain: String) -> String? {
        guard let addressed, addressed.byHost, let host, let name = DomainName(host: Substring(host))?.rawValue ?? Self.appHost(host, domain: domain) else {
            return nil
        }
        guard !target.hasPrefix(ChallengeResponder.prefix), target.hasPrefix("/") else { return nil }
        let port = port.load(ordering: .relaxed)
        return "https://\(name)\(port == 443 ? "" : ":\(port)")\(target)"
    }

    /// `APP.localhost`-style names are valid domain names too; this only covers a single-label --domain.
    private static func appHost(_ host: String, domain: String) -> String? {
        let name = host.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        guard name.hasSuffix("." + domain.lowercased()), AppName.isValid(String(name.dropLast(domain.count + 1))) else { return nil }
        return name
    }
}
