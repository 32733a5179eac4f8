public import Foundation

/// A browser signed in to the web console. Its id is the cookie's value and is
/// stored only hashed (a copy of the database signs nobody in); its CSRF token
/// is derived from the id, so it needs no storing either. It ends at sign-out,
/// at its expiry, or when its console token is revoked or expires; it survives
/// a gustd restart.
public struct ConsoleSession: Sendable, Equatable {
    public var id: String
    public var tokenID: Int
    /// Sent back in every form: a POST without it is refused.
    public var csrf: String
    public var expiresAt: Date

    public init(id: String, tokenID: Int, expiresAt: Date) {
        self.id = id
        self.tokenID = tokenID
        csrf = Self.csrf(for: id)
        self.expiresAt = expiresAt
    }

    /// The session's CSRF token: a hash of its id under a label of its own, so it
    /// reveals nothing of the id (the cookie) though it is written into every page.
    static func csrf(for id: String) -> String {
        String(Store.tokenHash("gust console csrf\n" + id).prefix(48))
    }
}

extension Store {
    /// Sessions at most (the oldest go first): a flood of sign-ins cannot grow the table without bound.
    public static let consoleSessionCapacity = 10_000
    /// Sessions at most of one token (its oldest go first), so that one token's sign-ins, however
    /// many, never end another token's sessions by filling the table.
    public static let consoleSessionsPerToken = 64

    /// Opens a session for a console token; the returned id goes into the cookie and is never stored.
    public func openConsoleSession(tokenID: Int, lifetime: TimeInterval, now: Date = Date()) throws -> ConsoleSession {
        // The expiry as it reads back from the store (a REAL of seconds since 1970), so that the two compare equal.
        let expiry = Date(timeIntervalSince1970: now.addingTimeInterval(lifetime).timeIntervalSince1970)
        let session = ConsoleSession(id: Self.randomURLSafe(bytes: 32), tokenID: tokenID, expiresAt: expiry)
        try db.transaction {
            try db.run("DELETE FROM console_sessions WHERE expires_at <= ?", [.real(now.timeIntervalSince1970)])
            let own = try db.query("SELECT COUNT(*) AS n FROM console_sessions WHERE token = ?", [.integer(Int64(tokenID))]).first?.int("n") ?? 0
            if own >= Self.consoleSessionsPerToken {
                try db.run(
                    "DELETE FROM console_sessions WHERE hash IN (SELECT hash FROM console_sessions WHERE token = ? ORDER BY expires_at LIMIT ?)",
                    [.integer(Int64(tokenID)), .integer(Int64(own - Self.consoleSessionsPerToken + 1))]
                )
            }
            let count = try db.query("SELECT COUNT(*) AS n FROM console_sessions").first?.int("n") ?? 0
            if count >= Self.consoleSessionCapacity {
                try db.run(
                    "DELETE FROM console_sessions WHERE hash IN (SELECT hash FROM console_sessions ORDER BY expires_at LIMIT ?)",
                    [.integer(Int64(count - Self.consoleSessionCapacity + 1))]
                )
            }
            try db.run(
                "INSERT INTO console_sessions (hash, token, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [.text(Self.tokenHash(session.id)), .integer(Int64(tokenID)), .real(now.timeIntervalSince1970),
                 .real(session.expiresAt.timeIntervalSince1970)]
            )
        }
        return session
    }

    /// The session this cookie value names, if it has not expired.
    public func consoleSession(id: String, now: Date = Date()) throws -> ConsoleSession? {
        guard let row = try db.query("SELECT * FROM console_sessions WHERE hash = ?", [.text(Self.tokenHash(id))]).first,
            let token = row.int("token"), let expires = row.double("expires_at")
        else { return nil }
        guard expires > now.timeIntervalSince1970 else {
            try closeConsoleSession(id: id)
            return nil
        }
        return ConsoleSession(id: id, tokenID: token, expiresAt: Date(timeIntervalSince1970: expires))
    }

    public func closeConsoleSession(id: String) throws {
        try db.run("DELETE FROM console_sessions WHERE hash = ?", [.text(Self.tokenHash(id))])
    }

    /// Ends every session of a console token (it was revoked, or found expired).
    public func closeConsoleSessions(tokenID: Int) throws {
        try db.run("DELETE FROM console_sessions WHERE token = ?", [.integer(Int64(tokenID))])
    }
}
