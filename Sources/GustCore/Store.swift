import Foundation

/// The source of truth: apps and releases (and, as later issues add them,
/// keys, config, tokens), in `GUST_HOME/gust.sqlite`.
public final class Store {
    public let home: GustHome
    public let db: Database

    public init(home: GustHome) throws {
        try home.prepare()
        self.home = home
        // As the home's owner when root opens it: a link gustd's user swaps in leads nowhere of root's.
        db = try Database(url: home.database, openedAs: home.ownerWhenRoot)
        // What is deleted or overwritten is zeroed in the file: a replaced secret leaves no bytes behind.
        try db.execute("PRAGMA secure_delete = ON")
        try Schema.migrate(db)
        try sealPlaintextSecrets()
    }
}

extension Store {
    public func createApp(_ name: AppName) throws -> App {
        try db.transaction {
            guard try app(name) == nil else {
                throw GustError("App '\(name)' already exists.", code: 409, hint: "See `gust apps list`.")
            }
            let now = Date()
            // Its number (`appNumber`, the rowid) is one no app had before: SQLite gives a new row
            // the largest rowid plus one, so an app made after the newest one was destroyed got its
            // number, and with it the host uid the sandbox gives that number, whose processes may
            // still be draining.
            let highest = try db.query("SELECT MAX(rowid) AS n FROM apps").first?.int("n") ?? 0
            let given = try db.query("SELECT value FROM daemon_settings WHERE name = 'last_app_number'").first?.string("value").flatMap { Int($0) } ?? 0
            let number = max(highest, given) + 1
            try db.run(
                "INSERT INTO apps (rowid, name, created_at) VALUES (?, ?, ?)",
                [.integer(Int64(number)), .text(name.rawValue), .real(now.timeIntervalSince1970)]
            )
            try db.run(
                "INSERT INTO daemon_settings (name, value) VALUES ('last_app_number', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [.text(String(number))]
            )
            return App(name: name, createdAt: now, liveVersion: nil, isPrivate: false)
        }
    }

    public func app(_ name: AppName) throws -> App? {
        try db.query("SELECT * FROM apps WHERE name = ?", [.text(name.rawValue)]).first.map(App.init(row:))
    }

    /// The app, or an error that tells the reader how to create it.
    public func requireApp(_ name: AppName) throws -> App {
        guard let app = try app(name) else {
            throw GustError.notFound("No app named '\(name)'.", hint: "Create it with `gust apps create \(name)`.")
        }
        return app
    }

    public func apps() throws -> [App] {
        try db.query("SELECT * FROM apps ORDER BY name").map(App.init(row:))
    }

    public func deleteApp(_ name: AppName) throws {
        try db.run("DELETE FROM releases WHERE app = ?", [.text(name.rawValue)])
        try db.run("DELETE FROM apps WHERE name = ?", [.text(name.rawValue)])
    }

    public func setLive(_ name: AppName, version: Int?) throws {
        try db.run("UPDATE apps SET live_version = ? WHERE name = ?", [SQLValue(version), .text(name.rawValue)])
    }

    public func setPrivate(_ name: AppName, _ isPrivate: Bool) throws {
        try db.run("UPDATE apps SET private = ? WHERE name = ?", [SQLValue(isPrivate), .text(name.rawValue)])
    }
}

extension Store {
    /// Records a release under the app's next version number, allocated in the
    /// same transaction that writes it, so concurrent writers never share one.
    @discardableResult
    public func recordRelease(_ app: AppName, _ new: NewRelease) throws -> Release {
        var new = new
        new.log = Self.storedLog(new.log)
        return try db.transaction {
            let next = (try db.query("SELECT MAX(version) AS v FROM releases WHERE app = ?", [.text(app.rawValue)]).first?.int("v") ?? 0) + 1
            let config = String(decoding: try JSONEncoder.sorted.encode(new.config), as: UTF8.self)
            try db.run(
                """
                INSERT INTO releases (app, version, status, commit_id, buildpack, artifact, artifact_size, process,
                    build_seconds, created_at, description, rollback_of, config, secret_names, error, log, stack, passes_listener)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(app.rawValue), .integer(Int64(next)), .text(new.status == .failed ? "failed" : "built"),
                    SQLValue(new.commit), SQLValue(new.buildpack), SQLValue(new.artifact), SQLValue(new.artifactSize),
                    SQLValue(new.process), SQLValue(new.buildSeconds), .real(Date().timeIntervalSince1970),
                    .text(new.description), SQLValue(new.rollbackOf), .text(config),
                    .text(String(decoding: try JSONEncoder.sorted.encode(new.secretNames.sorted()), as: UTF8.self)),
                    SQLValue(new.error), .text(new.log), SQLValue(new.stack), SQLValue(new.passesListener),
                ]
            )
            try db.run(
                """
                UPDATE releases SET log = ? WHERE app = ? AND version <= ? AND log != ?
                    AND version IS NOT (SELECT live_version FROM apps WHERE name = ?)
                """,
                [.text(Self.droppedLog), .text(app.rawValue), .integer(Int64(next - Self.releasesKeepingLogs)),
                 .text(Self.droppedLog), .text(app.rawValue)]
            )
            return try release(app, version: next)!
        }
    }

    public func release(_ app: AppName, version: Int) throws -> Release? {
        let live = try self.app(app)?.liveVersion
        return try db.query("SELECT * FROM releases WHERE app = ? AND version = ?", [.text(app.rawValue), .integer(Int64(version))])
            .first.map { try Release(row: $0, liveVersion: live) }
    }

    /// The release, or an error naming the versions there are.
    public func requireRelease(_ app: AppName, version: Int) throws -> Release {
        guard let release = try release(app, version: version) else {
            let known = try releases(app).map { "v\($0.version)" }
            let hint = known.isEmpty ? "\(app) has no releases yet: push to it first." : "\(app) has \(known.reversed().joined(separator: ", "))."
            throw GustError.notFound("\(app) has no release v\(version).", hint: hint)
        }
        return release
    }

    /// Every release of the app, newest first.
    public func releases(_ app: AppName) throws -> [Release] {
        let live = try self.app(app)?.liveVersion
        return try db.query("SELECT * FROM releases WHERE app = ? ORDER BY version DESC", [.text(app.rawValue)])
            .map { try Release(row: $0, liveVersion: live) }
    }

    /// A release that could not start: it stays in history with why. The live
    /// release is never touched (a deploy that lost its answer may have
    /// switched after all); returns whether the release was marked.
    @discardableResult
    public func markFailed(_ app: AppName, version: Int, error: String, appendingLog log: String) throws -> Bool {
        try db.run(
            """
            UPDATE releases SET status = 'failed', error = ?, log = log || ?
            WHERE app = ? AND version = ?
                AND version IS NOT (SELECT live_version FROM apps WHERE name = ?)
            """,
            [.text(error), .text(log), .text(app.rawValue), .integer(Int64(version)), .text(app.rawValue)]
        )
        return db.changes > 0
    }

    public func appendLog(_ app: AppName, version: Int, _ log: String) throws {
        try db.run(
            "UPDATE releases SET log = log || ? WHERE app = ? AND version = ?",
            [.text(log), .text(app.rawValue), .integer(Int64(version))]
        )
    }

    /// Whether any release of any app other than `app` still points at `digest`.
    public func isArtifactShared(_ digest: String, outside app: AppName) throws -> Bool {
        try !db.query("SELECT 1 FROM releases WHERE artifact = ? AND app != ? LIMIT 1", [.text(digest), .text(app.rawValue)]).isEmpty
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

extension App {
    init(row: Row) throws {
        name = try AppName(row.string("name") ?? "")
        createdAt = Date(timeIntervalSince1970: row.double("created_at") ?? 0)
        liveVersion = row.int("live_version")
        isPrivate = row.bool("private")
    }
}

extension Release {
    init(row: Row, liveVersion: Int?) throws {
        app = try AppName(row.string("app") ?? "")
        version = row.int("version") ?? 0
        let stored = Status(rawValue: row.string("status") ?? "") ?? .failed
        status = (stored == .built && version == liveVersion) ? .live : stored
        commit = row.string("commit_id")
        buildpack = row.string("buildpack")
        artifact = row.string("artifact")
        artifactSize = row.int("artifact_size")
        process = row.string("process")
        buildSeconds = row.double("build_seconds")
        createdAt = Date(timeIntervalSince1970: row.double("created_at") ?? 0)
        description = row.string("description") ?? ""
        rollbackOf = row.int("rollback_of")
        config = (try? JSONDecoder().decode([String: String].self, from: Data((row.string("config") ?? "{}").utf8))) ?? [:]
        secretNames = (try? JSONDecoder().decode([String].self, from: Data((row.string("secret_names") ?? "[]").utf8))) ?? []
        error = row.string("error")
        log = row.string("log") ?? ""
        stack = row.string("stack")
        passesListener = (row.int("passes_listener") ?? 0) != 0
    }
}

extension Store {
    /// The most of a build's output a release keeps: its first `storedLogHead` bytes (what was
    /// detected, what was installed) and its last ones (why it failed). A build may print 8 MB
    /// (`gustd --build-output-limit`), every push records a release, failed ones too, and they
    /// all live in the one store every app shares: kept whole, a tenant pushing over and over grew
    /// it by 8 MB a push.
    public static let storedLogBytes = 512 * 1024
    static let storedLogHead = 64 * 1024

    /// How many of an app's newest releases keep their build logs (and the live one, however old).
    /// `storedLogBytes` bounds one push; this bounds them all: a tenant pushing failing builds over and
    /// over grew the shared store by up to 512 KB a push, for good.
    public static let releasesKeepingLogs = 20
    /// What an older release keeps in place of its log.
    static let droppedLog = "(This release's build log is no longer kept: an app keeps those of its \(releasesKeepingLogs) newest releases and its live one.)\n"

    /// `log` as a release keeps it: whole when within `storedLogBytes`, else its head and tail at line
    /// ends, with a line in between that says how much was left out.
    public static func storedLog(_ log: String) -> String {
        let bytes = Array(log.utf8)
        guard bytes.count > storedLogBytes else { return log }
        // Cut at line ends (a line longer than the part is cut inside it), never inside a character.
        var headEnd = bytes[..<storedLogHead].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? storedLogHead
        while headEnd > 0, headEnd < bytes.count, bytes[headEnd] & 0xC0 == 0x80 { headEnd -= 1 }
        var tailStart = bytes.count - (storedLogBytes - storedLogHead)
        if let newline = bytes[tailStart...].firstIndex(of: UInt8(ascii: "\n")), newline + 1 < bytes.count { tailStart = newline + 1 }
        while tailStart < bytes.count, bytes[tailStart] & 0xC0 == 0x80 { tailStart += 1 }
        let left = tailStart - headEnd
        return String(decoding: bytes[..<headEnd], as: UTF8.self)
            + "… \(left) bytes of the build's output are not kept here (a release keeps \(ByteCount(storedLogBytes)) of it: its start and its end)\n"
            + String(decoding: bytes[tailStart...], as: UTF8.self)
    }

    /// Records a new release that reuses `base`'s artifact with other config
    /// (a rollback, a config change): history only grows, as on Heroku. The
    /// caller holds the app's deploy lock and then asks gustd to make it live.
    public func recordReuse(
        of base: Release, description: String, rollbackOf: Int? = nil, config: [String: String], secretNames: [String]
    ) throws -> Release {
        try recordRelease(base.app, NewRelease(
            status: .built, commit: base.commit, buildpack: base.buildpack, artifact: base.artifact,
            artifactSize: base.artifactSize, process: base.process, buildSeconds: 0, description: description,
            rollbackOf: rollbackOf, config: config, secretNames: secretNames,
            log: "Release v\(base.version)'s artifact, reused: \(description)\n", stack: base.stack,
            // The artifact's runtime is the same: one built to bind its own socket still must.
            passesListener: base.passesListener
        ))
    }
}
