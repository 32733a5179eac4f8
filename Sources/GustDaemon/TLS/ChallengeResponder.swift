import GustCore
import Synchronization

/// The HTTP-01 answers gustd is waiting to give: `GET /.well-known/acme-challenge/TOKEN`
/// on its HTTP port, for the domain the token was issued for, answers the key
/// authorization, and nothing else does. Only tokens an order of gustd's own put
/// here are answered; a token is gone once its authorization is settled.
final class ChallengeResponder: Sendable {
    static let prefix = "/.well-known/acme-challenge/"

    private let pending = Mutex<[String: Pending]>([:])

    private struct Pending {
        var domain: DomainName
        var keyAuthorization: String
    }

    func expect(token: String, for domain: DomainName, keyAuthorization: String) {
        guard Self.isToken(token) else { return }
        pending.withLock { $0[token] = Pending(domain: domain, keyAuthorization: keyAuthorization) }
    }

    func forget(token: String) { _ = pending.withLock { $0.removeValue(forKey: token) } }

    /// Whether `path` is ACME's (`/.well-known/acme-challenge/…`): gustd's alone to answer, found or not,
    /// where it issues certificates.
    static func claims(_ path: some StringProtocol) -> Bool { path.hasPrefix(prefix) }

    /// The body to answer for a request to `path` with `host`, or nil (none of gustd's is waiting there).
    func answer(path: String, host: String?) -> String? {
        guard path.hasPrefix(Self.prefix) else { return nil }
        let token = String(path.dropFirst(Self.prefix.count))
        guard Self.isToken(token), let host, let domain = DomainName(host: Substring(host)) else { return nil }
        return pending.withLock { table in
            guard let entry = table[token], entry.domain == domain else { return nil }
            return entry.keyAuthorization
        }
    }

    /// RFC 8555 §8.3: a token is base64url, no padding; 16 to 256 characters is what any CA sends.
    static func isToken(_ token: String) -> Bool {
        (16...256).contains(token.utf8.count) && token.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}
