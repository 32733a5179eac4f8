public import Foundation

/// One line of the activity log: who did what to which app, when, and from where
/// (`console`, `cli`, `ssh`, `push`). Written by the server where the action happens.
public struct Activity: Sendable, Codable, Equatable {
    public var id: Int
    public var at: Date
    public var app: AppName?
    /// `key alice`, `console token 3 (ops)`, `root` (the CLI's user).
    public var actor: String
    public var source: String
    /// `push`, `rollback`, `config set`, `config unset`, `scale`, `limits`, `record edit` …
    public var action: String
    public var detail: String
}

extension Store {
    /// Who is acting through the CLI: the SSH key a forced command names, else the local user.
    public static func cliActor(environment: [String: String] = ProcessInfo.processInfo.environment) -> (actor: String, source: String) {
        if let key = environment["GUST_SSH_KEY"], !key.isEmpty { return ("key \(key)", "ssh") }
        return (environment["USER"].map { "user \($0)" } ?? "local user", "cli")
    }

    /// Appends to the activity log. Best effort by design at call sites (`try?`):
    /// an action that happened is never undone because its note could not be written.
    public func recordActivity(app: AppName?, actor: String, source: String, action: String, detail: String = "", at: Date = Date()) throws {
        try db.run(
            "INSERT INTO activity (at, app, actor, source, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [.real(at.timeIntervalSince1970), SQLValue(app?.rawValue), .text(actor), .text(source), .text(action), .text(detail)]
        )
    }

    /// The newest entries first, of one app or (nil) of all, or of the apps in `among`. An app's
    /// entries are those since it was made: a name can be used again once its app is destroyed,
    /// and the next app's tenant is not to read what was done to the last one's (its config
    /// names, tokens, records). Of an app that no longer exists, all of its name's.
    public func activity(app: AppName? = nil, among: [AppName]? = nil, limit: Int = 100) throws -> [Activity] {
        let rows: [Row]
        let sinceMade = "at >= COALESCE((SELECT created_at FROM apps WHERE apps.name = activity.app), 0)"
        if let app {
            rows = try db.query(
                "SELECT * FROM activity WHERE app = ? AND \(sinceMade) ORDER BY id DESC LIMIT ?",
                [.text(app.rawValue), .integer(Int64(limit))]
            )
        } else if let among {
            let marks = among.map { _ in "?" }.joined(separator: ", ")
            rows = try db.query(
                "SELECT * FROM activity WHERE app IN (\(marks.isEmpty ? "NULL" : marks)) AND \(sinceMade) ORDER BY id DESC LIMIT ?",
                among.map { .text($0.rawValue) } + [.integer(Int64(limit))]
            )
        } else {
            rows = try db.query("SELECT * FROM activity ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))])
        }
        return rows.map { row in
            Activity(
                id: row.int("id") ?? 0, at: Date(timeIntervalSince1970: row.double("at") ?? 0),
                app: row.string("app").flatMap { try? AppName($0) }, actor: row.string("actor") ?? "",
                source: row.string("source") ?? "", action: row.string("action") ?? "", detail: row.string("detail") ?? ""
            )
        }
    }
}
