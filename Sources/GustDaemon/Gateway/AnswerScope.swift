import Foundation

/// Where an app was reached, and so what its answers may set in a browser. At a path address,
/// `/apps/APP/`, every app on the host shares one origin; at `APP.DOMAIN` under `--domain`, every
/// app's host shares the parent `DOMAIN`, and a cookie set for it would reach them all (an app
/// could fix another's session cookie, or flood its cookie jar): browsers know nothing of Gust's
/// tenants, as they know herokuapp.com's from the Public Suffix List.
struct AnswerScope: Sendable, Equatable {
    var sharesOrigin = false
    /// The app's own host (`APP.DOMAIN`, lower case), when it was reached at one under `--domain`.
    var cookieHost: String?

    /// Whether the client gets this `Set-Cookie` value: never one that sets the console's cookies
    /// (`ForwardedHeaders.setsConsoleCookie`); at `cookieHost`, only one for no domain (the host
    /// alone) or for that very host; at a path address, only one for no domain: its host is
    /// everyone's (often `DOMAIN` itself, whose cookies every `APP.DOMAIN` is sent).
    func keepsCookie(_ value: String) -> Bool {
        if ForwardedHeaders.setsConsoleCookie(value) { return false }
        guard let domain = Self.domainAttribute(of: value) else { return true }
        if sharesOrigin { return false }
        guard let cookieHost else { return true }
        return domain == cookieHost
    }

    /// A `Set-Cookie` value's `Domain` attribute as a browser takes it (RFC 6265, 5.2.3): the last
    /// one that is not empty, without a leading dot, in lower case; nil without one.
    static func domainAttribute(of value: String) -> String? {
        guard value.utf8.count >= 7, value.range(of: "domain", options: .caseInsensitive) != nil else { return nil }  // the common case
        var found: String?
        for attribute in value.split(separator: ";", omittingEmptySubsequences: false).dropFirst() {
            let parts = attribute.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "domain", parts.count > 1 else { continue }
            var domain = parts[1].trimmingCharacters(in: .whitespaces).lowercased()
            if domain.hasPrefix(".") { domain.removeFirst() }
            if !domain.isEmpty { found = domain }
        }
        return found
    }
}
