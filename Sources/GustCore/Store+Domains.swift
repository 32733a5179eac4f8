public import Foundation

/// One of an app's own domains (`gust domains`), with its certificate as gustd last saw it.
public struct AppDomain: Sendable, Codable, Equatable {
    public var name: DomainName
    public var app: AppName
    /// `pending` (none yet), `issued`, or `failed` (the last attempt; gustd retries).
    public var status: String
    /// Why the last issuance failed, while `status` is `failed`.
    public var error: String?
    /// When the certificate gustd serves for it expires.
    public var expiresAt: Date?
    /// Its serial number, in hex.
    public var serial: String?
    /// `gust domains renew` asked for a new certificate now.
    public var renewRequested: Bool

    /// How many domains one app may have (each costs the CA a validation; a scoped key should not claim a thousand).
    public static let maximumPerApp = 50

    enum CodingKeys: String, CodingKey {
        case name = "domain", app, status, error, expiresAt = "expires_at", serial, renewRequested = "renew_requested"
    }
}

/// What an issuance attempt left, as gustd records it for `gust domains list`.
public enum CertificateOutcome: Sendable, Equatable {
    case issued(expiresAt: Date, serial: String)
    case failed(String)
}

extension Store {
    /// Gives `name` to `app`. Refused: a name another app has, gustd's own
    /// domain, and a name that is (or is under) another app's `APP.DOMAIN`, or
    /// could become one (`NEWAPP.DOMAIN`): those belong to the apps gustd names.
    /// And a public suffix (`suffixes`, the Public Suffix List where it is installed).
    public func addDomain(_ name: DomainName, to app: AppName, suffixes: PublicSuffixes? = .standard) throws {
        if let suffixes, suffixes.isSuffix(name) {
            throw GustError(
                "\(name) is a public suffix (the Public Suffix List): the names under it are their registrants', not one app's.",
                code: 409, hint: "Add the name you registered under it, like shop.\(name).")
        }
        try db.transaction {
            _ = try requireApp(app)
            guard try domains(of: app).count < AppDomain.maximumPerApp else {
                throw GustError("\(app) has \(AppDomain.maximumPerApp) domains, the most an app may have. Remove one first.", code: 409)
            }
            if let owner = try domainOwner(name) {
                if owner == app { throw GustError("\(name) is already a domain of \(app).", code: 409) }
                throw GustError("\(name) is taken by another app.", code: 409, hint: "An admin can remove it there first: gust domains remove APP \(name)")
            }
            if let base = try daemonDomain() {
                if let problem = Self.conflict(name, base: base, app: app) { throw GustError(problem, code: 409) }
            }
            if let reserved = try daemonReservedDomains().first(where: { name.isWithin($0.rawValue) }) {
                throw GustError(
                    "\(name) is reserved for the server itself (gustd --reserve-domain \(reserved)), not an app's.", code: 409)
            }
            // Not under another app's own domain: its owner may point the names under it here (a
            // wildcard record), and they are its to add, not another tenant's to take.
            // (A public suffix an app was given before they were refused holds nothing below it.)
            for parent in name.parents where !(suffixes?.isSuffix(parent) ?? false) {
                if let owner = try domainOwner(parent), owner != app {
                    throw GustError("\(name) is under \(parent), a domain of another app.", code: 409,
                                    hint: "An admin can remove it there first: gust domains remove APP \(parent)")
                }
            }
            try db.run(
                "INSERT INTO domains (name, app, created_at) VALUES (?, ?, ?)",
                [.text(name.rawValue), .text(app.rawValue), .real(Date().timeIntervalSince1970)]
            )
        }
    }

    /// Why `name` cannot be a domain of `app` when gustd names apps `APP.base`, or nil.
    public static func conflict(_ name: DomainName, base: String, app: AppName) -> String? {
        let base = base.lowercased()
        guard name.isWithin(base) else { return nil }
        if name.rawValue == base { return "\(name) is gustd's own domain (--domain), not an app's." }
        // The label just above the base names the app whose address it is (or will be).
        let above = name.rawValue.dropLast(base.count + 1).split(separator: ".").last.map(String.init) ?? ""
        if above == app.rawValue { return nil }
        return "\(name) is under \(above).\(base), the address of the app \(above) (or of one that may be created): pick a name outside \(base)."
    }

    public func removeDomain(_ name: DomainName, from app: AppName) throws {
        guard try domainOwner(name) == app else {
            throw GustError.notFound("\(name) is not a domain of \(app).", hint: "See `gust domains list \(app)`.")
        }
        try db.run("DELETE FROM domains WHERE name = ? AND app = ?", [.text(name.rawValue), .text(app.rawValue)])
    }

    public func domainOwner(_ name: DomainName) throws -> AppName? {
        try db.query("SELECT app FROM domains WHERE name = ?", [.text(name.rawValue)]).first
            .flatMap { $0.string("app") }.flatMap { try? AppName($0) }
    }

    /// The domains of `app`, or of every app.
    public func domains(of app: AppName? = nil) throws -> [AppDomain] {
        let rows = if let app {
            try db.query("SELECT * FROM domains WHERE app = ? ORDER BY name", [.text(app.rawValue)])
        } else {
            try db.query("SELECT * FROM domains ORDER BY name")
        }
        return rows.compactMap { row in
            guard let name = row.string("name").flatMap({ try? DomainName($0) }), let owner = row.string("app").flatMap({ try? AppName($0) }) else {
                return nil
            }
            return AppDomain(
                name: name, app: owner, status: row.string("cert_status") ?? "pending", error: row.string("cert_error"),
                expiresAt: row.double("cert_expires_at").map(Date.init(timeIntervalSince1970:)), serial: row.string("cert_serial"),
                renewRequested: row.bool("renew_requested")
            )
        }
    }

    /// Asks gustd for a new certificate for `name` now (it clears the request once it has tried).
    public func requestRenewal(_ name: DomainName, of app: AppName) throws {
        guard try domainOwner(name) == app else { throw GustError.notFound("\(name) is not a domain of \(app).") }
        try db.run("UPDATE domains SET renew_requested = 1 WHERE name = ?", [.text(name.rawValue)])
    }

    /// The domains `gust domains renew` asked about since the last call, their requests cleared (gustd takes them once).
    public func takeRenewalRequests() throws -> [DomainName] {
        try db.transaction {
            let names = try db.query("SELECT name FROM domains WHERE renew_requested = 1").compactMap { $0.string("name").flatMap { try? DomainName($0) } }
            try db.run("UPDATE domains SET renew_requested = 0 WHERE renew_requested = 1")
            return names
        }
    }

    /// gustd's record of an attempt: an issued certificate, or why it failed (the certificate served, if any, stays).
    public func recordCertificate(_ name: DomainName, _ outcome: CertificateOutcome) throws {
        switch outcome {
        case .issued(let expiresAt, let serial):
            try db.run(
                """
                UPDATE domains SET cert_status = 'issued', cert_error = NULL, cert_expires_at = ?, cert_serial = ?,
                    renew_requested = 0 WHERE name = ?
                """,
                [.real(expiresAt.timeIntervalSince1970), .text(serial), .text(name.rawValue)]
            )
        case .failed(let message):
            try db.run(
                "UPDATE domains SET cert_status = 'failed', cert_error = ?, renew_requested = 0 WHERE name = ?",
                [.text(String(message.prefix(1000))), .text(name.rawValue)]
            )
        }
    }

    /// The domain gustd names apps under (`APP.DOMAIN`), as it last started with it.
    public func daemonDomain() throws -> String? {
        try db.query("SELECT value FROM daemon_settings WHERE name = 'domain'").first?.string("value")
    }

    /// Written by gustd at start, so `gust domains add` can refuse names under its apps' addresses.
    public func setDaemonDomain(_ domain: String) throws {
        try setDaemonSetting("domain", domain.lowercased())
    }

    /// Whether gustd, as it last started, gets certificates by ACME (`--https` without `--no-acme`);
    /// nil before a gustd that records it ran on this home.
    public func daemonIssuesCertificates() throws -> Bool? {
        try db.query("SELECT value FROM daemon_settings WHERE name = 'acme'").first?.string("value").map { $0 == "on" }
    }

    /// Written by gustd at start, so `gust domains renew` can say when nothing would be issued.
    public func setDaemonIssuesCertificates(_ issues: Bool) throws {
        try setDaemonSetting("acme", issues ? "on" : "off")
    }

    /// The names gustd was told are the server's own (`--reserve-domain`), as it last started: no
    /// app may add one, nor a name under one (a key scoped to an app could otherwise have the
    /// console's name routed to its code on gustd's app ports).
    public func daemonReservedDomains() throws -> [DomainName] {
        let value = try db.query("SELECT value FROM daemon_settings WHERE name = 'reserved_domains'").first?.string("value") ?? ""
        return value.split(separator: " ").compactMap { try? DomainName(String($0)) }
    }

    /// Written by gustd at start.
    public func setDaemonReservedDomains(_ names: [DomainName]) throws {
        try setDaemonSetting("reserved_domains", names.map(\.rawValue).sorted().joined(separator: " "))
    }

    private func setDaemonSetting(_ name: String, _ value: String) throws {
        try db.run(
            "INSERT INTO daemon_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [.text(name), .text(value)]
        )
    }
}
