public import Foundation

/// Where a log drain sends an app's lines: an HTTP(S) endpoint that takes NDJSON batches, or a
/// syslog receiver over TCP (RFC 5424 messages, octet-counted as RFC 6587 says), with or without TLS.
///
/// Parsed strictly: the URL comes from a scoped key and ends up in gustd's outbound connections.
public struct DrainTarget: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case http, https
        case syslog  // syslog://HOST:PORT, plain TCP
        case syslogTLS = "syslog+tls"
    }

    public let kind: Kind
    /// Lowercased; an IPv6 literal without its brackets.
    public let host: String
    public let port: Int
    /// Path and query, for HTTP.
    public let path: String
    /// `user:password` of the URL, sent as HTTP basic auth.
    public let userInfo: String?
    public let url: String

    public static let maximumLength = 2048

    public init(_ text: String) throws(GustError) {
        let rule = "A drain is http(s)://HOST[:PORT]/PATH (NDJSON batches) or syslog://HOST:PORT or syslog+tls://HOST:PORT (RFC 5424 over TCP)."
        guard text.utf8.count <= Self.maximumLength else { throw GustError("The drain URL is longer than \(Self.maximumLength) bytes.") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw GustError("The drain URL holds a space, a control character or a non-ASCII character.", hint: rule)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let kind = Kind(rawValue: scheme)
        else { throw GustError("'\(text.prefix(80))' is not a drain URL.", hint: rule) }
        guard var host = components.percentEncodedHost?.lowercased(), !host.isEmpty else {
            throw GustError("The drain URL names no host.", hint: rule)
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let hostCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.-:")
        guard host.count <= 253, host.allSatisfy(hostCharacters.contains) else {
            throw GustError("The drain's host '\(host.prefix(80))' is not a host name or an IP address.", hint: rule)
        }
        let defaultPort: Int? = switch kind { case .http: 80; case .https: 443; case .syslog, .syslogTLS: nil }
        guard let port = components.port ?? defaultPort, (1...65535).contains(port) else {
            throw GustError("A syslog drain names its port: syslog://HOST:PORT.", hint: rule)
        }
        if kind == .syslog || kind == .syslogTLS {
            guard components.percentEncodedPath.isEmpty || components.percentEncodedPath == "/", components.query == nil else {
                throw GustError("A syslog drain is only HOST:PORT; it takes no path.", hint: rule)
            }
        }
        guard components.fragment == nil else { throw GustError("A drain URL takes no #fragment.", hint: rule) }
        self.kind = kind
        self.host = host
        self.port = port
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        self.path = path
        userInfo = components.percentEncodedUser.map { user in user + (components.percentEncodedPassword.map { ":" + $0 } ?? "") }
        url = text
    }

    public var usesTLS: Bool { kind == .https || kind == .syslogTLS }

    /// The URL with any password replaced, for lists and logs.
    public var description: String {
        guard let password = URLComponents(string: url)?.percentEncodedPassword, !password.isEmpty else { return url }
        return url.replacingOccurrences(of: ":\(password)@", with: ":****@")
    }
}

/// A drain as `gust drains add` stored it.
public struct Drain: Sendable, Equatable {
    public var id: String
    public var app: AppName
    public var target: DrainTarget
    /// Set by an admin: it may send to loopback, link-local, private networks and this machine's own addresses.
    public var allowPrivate: Bool
    public var createdAt: Date
}
