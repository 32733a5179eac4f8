import Foundation

extension Store {
    /// How many drains one app may have: each is an outbound connection gustd keeps.
    public static let maximumDrains = 5

    public func drains(_ app: AppName? = nil) throws -> [Drain] {
        let rows = try app.map { try db.query("SELECT * FROM drains WHERE app = ? ORDER BY created_at", [.text($0.rawValue)]) }
            ?? db.query("SELECT * FROM drains ORDER BY app, created_at")
        return rows.compactMap { row in
            guard let id = row.string("id"), let app = row.string("app").flatMap({ try? AppName($0) }),
                let url = row.string("url"), let target = try? DrainTarget(url)
            else { return nil }
            return Drain(
                id: id, app: app, target: target, allowPrivate: row.int("allow_private") == 1,
                createdAt: Date(timeIntervalSince1970: row.double("created_at") ?? 0))
        }
    }

    /// Adds a drain; the same URL twice for one app, or more than `maximumDrains`, is refused.
    public func addDrain(_ app: AppName, _ target: DrainTarget, allowPrivate: Bool) throws -> Drain {
        _ = try requireApp(app)
        let existing = try drains(app)
        if existing.contains(where: { $0.target.url == target.url }) {
            throw GustError("\(app) already drains to \(target).", code: 409)
        }
        guard existing.count < Self.maximumDrains else {
            throw GustError("\(app) has \(existing.count) drains, the most an app may have.", code: 409, hint: "Remove one first: gust drains remove \(app) ID")
        }
        let drain = Drain(
            id: "d" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(8), app: app, target: target,
            allowPrivate: allowPrivate, createdAt: Date())
        try db.run(
            "INSERT INTO drains (id, app, url, allow_private, created_at) VALUES (?, ?, ?, ?, ?)",
            [.text(drain.id), .text(app.rawValue), .text(target.url), .integer(allowPrivate ? 1 : 0), .real(drain.createdAt.timeIntervalSince1970)]
        )
        return drain
    }

    /// Removes the app's drain named by its id or its URL; the removed drain, or a 404.
    @discardableResult
    public func removeDrain(_ app: AppName, _ idOrURL: String) throws -> Drain {
        guard let drain = try drains(app).first(where: { $0.id == idOrURL || $0.target.url == idOrURL }) else {
            throw GustError.notFound("\(app) has no drain '\(idOrURL.prefix(80))'.", hint: "gust drains list \(app) shows its drains.")
        }
        try db.run("DELETE FROM drains WHERE id = ?", [.text(drain.id)])
        return drain
    }
}
