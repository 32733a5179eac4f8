public import Foundation

/// A token that signs a person in to the web console: admin (every app) or
/// scoped to some apps, like an SSH key. Only its hash is stored.
public struct ConsoleToken: Sendable, Codable, Equatable {
    public var id: Int
    public var description: String
    public var isAdmin: Bool
    /// The apps a scoped token may see and change (empty for an admin token).
    public var apps: [AppName]
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public func mayUse(_ app: AppName) -> Bool { isAdmin || apps.contains(app) }

    public func isValid(at now: Date = Date()) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }

    /// "admin", or the apps it may use.
    public var scope: String { isAdmin ? "admin" : apps.map(\.rawValue).joined(separator: ", ") }

    /// How the activity log names whoever holds it.
    public var actor: String { "console token \(id)" + (description.isEmpty ? "" : " (\(description))") }
}

extension Store {
    /// Creates a console token, admin when `apps` is nil, and returns its secret, shown once.
    public func createConsoleToken(apps: [AppName]?, description: String, expiresAt: Date?) throws -> (token: ConsoleToken, secret: String) {
        for app in apps ?? [] { _ = try requireApp(app) }
        let secret = "gustc_" + Self.randomURLSafe(bytes: 32)
        let now = Date()
        return try db.transaction {
            try db.run(
                "INSERT INTO console_tokens (hash, description, admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                [.text(Self.tokenHash(secret)), .text(description), .integer(apps == nil ? 1 : 0), .real(now.timeIntervalSince1970),
                 SQLValue(expiresAt?.timeIntervalSince1970)]
            )
            let id = Int(db.lastInsertedRowID)
            for app in Set(apps ?? []) {
                try db.run("INSERT INTO console_token_apps (token, app) VALUES (?, ?)", [.integer(Int64(id)), .text(app.rawValue)])
            }
            let token = ConsoleToken(
                id: id, description: description, isAdmin: apps == nil, apps: (apps ?? []).sorted { $0.rawValue < $1.rawValue },
                createdAt: now, expiresAt: expiresAt
            )
            return (token, secret)
        }
    }

    public func consoleTokens() throws -> [ConsoleToken] {
        try db.query("SELECT * FROM console_tokens ORDER BY id").map(consoleToken(row:))
    }

    public func consoleToken(id: Int) throws -> ConsoleToken? {
        try db.query("SELECT * FROM console_tokens WHERE id = ?", [.integer(Int64(id))]).first.map(consoleToken(row:))
    }

    /// The valid token whose secret this is, recording its use; nil for anything else.
    public func verifyConsoleToken(secret: String, now: Date = Date()) throws -> ConsoleToken? {
        let hash = Self.tokenHash(secret)
        guard let row = try db.query("SELECT * FROM console_tokens WHERE hash = ?", [.text(hash)]).first,
            Self.constantTimeEqual(row.string("hash") ?? "", hash)
        else { return nil }
        let token = try consoleToken(row: row)
        guard token.isValid(at: now) else { return nil }
        if Self.isUseWorthWriting(now, last: token.lastUsedAt) {
            try? db.run("UPDATE console_tokens SET last_used_at = ? WHERE id = ?", [.real(now.timeIntervalSince1970), .integer(Int64(token.id))])
        }
        return token
    }

    /// Revokes a console token and ends its sessions.
    public func revokeConsoleToken(id: Int) throws {
        try db.transaction {
            try db.run(
                "UPDATE console_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [.real(Date().timeIntervalSince1970), .integer(Int64(id))]
            )
            guard db.changes > 0 else {
                throw GustError.notFound("There is no active console token \(id).", hint: "See `gust tokens list --console`.")
            }
            try closeConsoleSessions(tokenID: id)
        }
    }

    private func consoleToken(row: Row) throws -> ConsoleToken {
        let id = row.int("id") ?? 0
        let apps = try db.query("SELECT app FROM console_token_apps WHERE token = ? ORDER BY app", [.integer(Int64(id))])
            .compactMap { $0.string("app").flatMap { try? AppName($0) } }
        return ConsoleToken(
            id: id, description: row.string("description") ?? "", isAdmin: row.bool("admin"), apps: apps,
            createdAt: Date(timeIntervalSince1970: row.double("created_at") ?? 0),
            expiresAt: row.double("expires_at").map(Date.init(timeIntervalSince1970:)),
            lastUsedAt: row.double("last_used_at").map(Date.init(timeIntervalSince1970:)),
            revokedAt: row.double("revoked_at").map(Date.init(timeIntervalSince1970:))
        )
    }

    /// `bytes` random bytes as unpadded base64url.
    public static func randomURLSafe(bytes count: Int) -> String {
        Data(RandomToken.bytes(count)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
