import Crypto
public import Foundation

/// An app token, as listed: its secret part is never stored, only its hash.
public struct AppToken: Sendable, Codable, Equatable {
    public var id: Int
    public var description: String
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public func isValid(at now: Date = Date()) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }

    /// `token 3 (ci)`, as the activity log names it (never its secret).
    public var activityText: String { "token \(id)" + (description.isEmpty ? "" : " (\(description))") }

    /// The most tokens an app has that are neither revoked nor expired: each is a row in the store
    /// every app shares, listed whole on the app's console page.
    public static let maxActive = 100
    /// The longest description a token has, in characters.
    public static let maxDescription = 200

    /// The longest a token may be made to live: ten years. Without an expiry it never expires.
    public static let longestLifetime: TimeInterval = 3660 * 86_400

    /// `90d`, `12h`, `30m`, `45s`, `2w` in seconds: how long a new token lives.
    public static func lifetime(_ text: String) throws -> TimeInterval {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        guard let unit = text.last.flatMap({ units[$0] }), let amount = text.dropLast().plainDecimal else {
            throw GustError("'\(text)' is not a duration; write it like 90d, 12h or 30m.")
        }
        guard amount > 0 else { throw GustError("'\(text)' is no time at all: a token must live longer than that, like 90d, 12h or 30m.") }
        guard amount * unit <= longestLifetime else {
            throw GustError("'\(text)' is longer than a token may live: at most 3660d (ten years). Without an expiry, a token lives until it is revoked.")
        }
        return amount * unit
    }
}

extension Store {
    /// Creates a token and returns its secret, which is shown once and never again.
    public func createToken(_ app: AppName, description: String, expiresAt: Date?) throws -> (token: AppToken, secret: String) {
        guard description.count <= AppToken.maxDescription else {
            throw GustError("The description is longer than \(AppToken.maxDescription) characters.")
        }
        let active = try db.query(
            "SELECT COUNT(*) AS n FROM tokens WHERE app = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            [.text(app.rawValue), .real(Date().timeIntervalSince1970)]
        ).first?.int("n") ?? 0
        guard active < AppToken.maxActive else {
            throw GustError(
                "\(app) has \(AppToken.maxActive) active tokens, as many as an app may have.", code: 409,
                hint: "Revoke one it no longer needs: `gust tokens list \(app)`, then `gust tokens revoke \(app) ID`."
            )
        }
        let secret = "gust_" + Data(RandomToken.bytes(32)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let now = Date()
        try db.run(
            "INSERT INTO tokens (app, hash, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            [.text(app.rawValue), .text(Self.tokenHash(secret)), .text(description), .real(now.timeIntervalSince1970),
             SQLValue(expiresAt?.timeIntervalSince1970)]
        )
        let token = AppToken(id: Int(db.lastInsertedRowID), description: description, createdAt: now, expiresAt: expiresAt)
        return (token, secret)
    }

    public func tokens(_ app: AppName) throws -> [AppToken] {
        try db.query("SELECT * FROM tokens WHERE app = ? ORDER BY id", [.text(app.rawValue)]).map(AppToken.init(row:))
    }

    /// Removes a token's row: for `gust call`'s token of one call, which no one lists or revokes.
    public func deleteToken(_ app: AppName, id: Int) throws {
        try db.run("DELETE FROM tokens WHERE app = ? AND id = ?", [.text(app.rawValue), .integer(Int64(id))])
    }

    /// The hashes (`tokenHash`) of `app`'s tokens not revoked, expired or not.
    public func unrevokedTokenHashes(_ app: AppName) throws -> Set<String> {
        Set(try db.query("SELECT hash FROM tokens WHERE app = ? AND revoked_at IS NULL", [.text(app.rawValue)]).compactMap { $0.string("hash") })
    }

    public func revokeToken(_ app: AppName, id: Int) throws {
        try db.run(
            "UPDATE tokens SET revoked_at = ? WHERE app = ? AND id = ? AND revoked_at IS NULL",
            [.real(Date().timeIntervalSince1970), .text(app.rawValue), .integer(Int64(id))]
        )
        guard db.changes > 0 else {
            throw GustError.notFound("\(app) has no active token \(id).", hint: "See `gust tokens list \(app)`.")
        }
    }

    /// Whether `secret` is a valid token of `app` now; records its use.
    ///
    /// The lookup is by hash, so the secret itself is never compared; the stored
    /// hash is then compared in constant time as well, which costs nothing.
    public func verifyToken(_ app: AppName, secret: String, now: Date = Date()) throws -> Bool {
        try verifiedToken(app, hash: Self.tokenHash(secret), now: now) != nil
    }

    /// The valid token of `app` whose secret hashes to `hash` (`tokenHash`), or nil; records its use.
    public func verifiedToken(_ app: AppName, hash: String, now: Date = Date()) throws -> AppToken? {
        guard let row = try db.query("SELECT * FROM tokens WHERE app = ? AND hash = ?", [.text(app.rawValue), .text(hash)]).first,
            Self.constantTimeEqual(row.string("hash") ?? "", hash)
        else { return nil }
        let token = AppToken(row: row)
        guard token.isValid(at: now) else { return nil }
        if Self.isUseWorthWriting(now, last: token.lastUsedAt) {
            // Best effort: a valid token stays valid when its last use cannot be written (a full disk).
            try? db.run("UPDATE tokens SET last_used_at = ? WHERE id = ?", [.real(now.timeIntervalSince1970), .integer(Int64(token.id))])
        }
        return token
    }

    /// How finely a token's last use is kept. A private app verifies its token on every call,
    /// and a write on each would queue every call behind SQLite's one writer. (gustd answers a
    /// token the store verified from memory until the store is written, the token expires or
    /// this much time has passed, so a revoked or expired token is still refused at once.)
    public static let lastUseResolution: TimeInterval = 60

    static func isUseWorthWriting(_ now: Date, last: Date?) -> Bool {
        guard let last else { return true }
        return now.timeIntervalSince(last) >= lastUseResolution || now < last  // a clock set back writes again
    }

    public static func tokenHash(_ secret: String) -> String {
        Hex.lower(SHA256.hash(data: Data(secret.utf8)))
    }

    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension AppToken {
    init(row: Row) {
        id = row.int("id") ?? 0
        description = row.string("description") ?? ""
        createdAt = Date(timeIntervalSince1970: row.double("created_at") ?? 0)
        expiresAt = row.double("expires_at").map(Date.init(timeIntervalSince1970:))
        lastUsedAt = row.double("last_used_at").map(Date.init(timeIntervalSince1970:))
        revokedAt = row.double("revoked_at").map(Date.init(timeIntervalSince1970:))
    }
}
