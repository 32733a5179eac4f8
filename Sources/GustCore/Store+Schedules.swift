public import Foundation

/// A schedule of an app's live release, as gustd runs it.
public struct StoredSchedule: Sendable, Codable, Equatable {
    public var app: AppName
    /// The function's name, as the manifest gives it.
    public var name: String
    /// `every` or `cron`.
    public var kind: String
    public var spec: String
    /// The JSON object of params given at registration, if any.
    public var params: String?
    /// When the schedule was first seen with this spec: `every` runs fall on `anchor + k × interval`.
    public var anchor: Date
    /// The IANA zone a cron schedule follows (the app's `TZ`, else UTC).
    public var timeZone: String
    /// The release whose manifest last declared it.
    public var release: Int
    /// When gustd would run it next, as gustd wrote it when it installed the schedule (a deploy,
    /// its start): not at every run, which for an every-second schedule was a write of the shared
    /// store a second. What is shown is `upcoming(at:)`.
    public var nextRun: Date?

    public init(
        app: AppName, name: String, kind: String, spec: String, params: String? = nil, anchor: Date,
        timeZone: String = "UTC", release: Int, nextRun: Date? = nil
    ) {
        self.app = app
        self.name = name
        self.kind = kind
        self.spec = spec
        self.params = params
        self.anchor = anchor
        self.timeZone = timeZone
        self.release = release
        self.nextRun = nextRun
    }

    /// The run to come as of `now`: the one gustd wrote while it is still ahead (a run due a moment
    /// before a redeploy, kept), else the next the spec gives after `now`.
    public func upcoming(at now: Date) -> Date? {
        nextRun.flatMap { $0 > now ? $0 : nil } ?? next(after: now)
    }

    /// The next run strictly after `date`, computed from the spec (nil if the spec or zone no longer parse).
    public func next(after date: Date) -> Date? {
        guard let spec = try? ScheduleSpec(kind: kind, spec: spec), let zone = TimeZone(identifier: timeZone) else { return nil }
        return spec.next(after: date, anchor: anchor, timeZone: zone)
    }
}

/// One run of a schedule: `running` until it ends `ok` or with an `error`;
/// `skipped` when it came due while the previous run was still going.
public struct ScheduleRun: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        case running, ok, error, skipped
    }

    public var id: Int
    public var app: AppName
    public var schedule: String
    public var release: Int
    public var startedAt: Date
    public var seconds: Double?
    public var status: Status
    public var error: String?
}

extension Store {
    /// How many runs are kept per schedule; older ones are dropped as new ones are recorded.
    public static let runsKeptPerSchedule = 50

    public func schedules(_ app: AppName) throws -> [StoredSchedule] {
        try db.query("SELECT * FROM schedules WHERE app = ? ORDER BY name", [.text(app.rawValue)]).map(StoredSchedule.init(row:))
    }

    /// The schedules of every app that has a live release.
    public func liveSchedules() throws -> [StoredSchedule] {
        try db.query(
            "SELECT s.* FROM schedules s JOIN apps a ON a.name = s.app WHERE a.live_version IS NOT NULL ORDER BY s.app, s.name"
        ).map(StoredSchedule.init(row:))
    }

    /// Makes the app's schedules those of `release`: a schedule it no longer
    /// declares is removed; one whose kind and spec are unchanged keeps its
    /// anchor (a redeploy does not restart its count); a new or changed one is
    /// anchored at `now`. Returns the app's schedules afterwards.
    @discardableResult
    public func replaceSchedules(_ app: AppName, release: Int, with declared: [StoredSchedule], now: Date = Date()) throws -> [StoredSchedule] {
        try db.transaction {
            // Keyed by bytes, as SQLite's key is: Swift's String equality makes "é" and "e" + U+0301
            // one key, and a dictionary of both trapped (names come from the app's own code).
            let existing = Dictionary(try schedules(app).map { (Array($0.name.utf8), $0) }, uniquingKeysWith: { first, _ in first })
            let names = Set(declared.map { Array($0.name.utf8) })
            for (name, old) in existing where !names.contains(name) {
                try db.run("DELETE FROM schedules WHERE app = ? AND name = ?", [.text(app.rawValue), .text(old.name)])
            }
            for var schedule in declared {
                schedule.app = app
                schedule.release = release
                if let old = existing[Array(schedule.name.utf8)], old.kind == schedule.kind, old.spec == schedule.spec {
                    schedule.anchor = old.anchor
                    schedule.nextRun = old.timeZone == schedule.timeZone ? old.nextRun : nil
                } else {
                    schedule.anchor = now
                    schedule.nextRun = nil
                }
                try db.run(
                    """
                    INSERT INTO schedules (app, name, kind, spec, params, anchor, time_zone, release, next_run)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (app, name) DO UPDATE SET kind = excluded.kind, spec = excluded.spec, params = excluded.params,
                        anchor = excluded.anchor, time_zone = excluded.time_zone, release = excluded.release, next_run = excluded.next_run
                    """,
                    [
                        .text(app.rawValue), .text(schedule.name), .text(schedule.kind), .text(schedule.spec), SQLValue(schedule.params),
                        .real(schedule.anchor.timeIntervalSince1970), .text(schedule.timeZone), .integer(Int64(release)),
                        SQLValue(schedule.nextRun?.timeIntervalSince1970),
                    ]
                )
            }
            return try schedules(app)
        }
    }

    public func setNextRun(_ app: AppName, schedule: String, _ date: Date?) throws {
        try db.run(
            "UPDATE schedules SET next_run = ? WHERE app = ? AND name = ?",
            [SQLValue(date?.timeIntervalSince1970), .text(app.rawValue), .text(schedule)]
        )
    }

    // MARK: Runs

    /// Records a run as it starts (`running`) or a skip (`skipped`, already over); returns its id.
    public func recordRun(
        _ app: AppName, schedule: String, release: Int, startedAt: Date, status: ScheduleRun.Status = .running, error: String? = nil
    ) throws -> Int {
        try db.transaction {
            try db.run(
                "INSERT INTO schedule_runs (app, schedule, release, started_at, seconds, status, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(app.rawValue), .text(schedule), .integer(Int64(release)), .real(startedAt.timeIntervalSince1970),
                    status == .skipped ? .real(0) : .null, .text(status.rawValue), SQLValue(error),
                ]
            )
            let id = Int(db.lastInsertedRowID)
            try db.run(
                """
                DELETE FROM schedule_runs WHERE app = ? AND schedule = ? AND id <= (
                    SELECT id FROM schedule_runs WHERE app = ? AND schedule = ? ORDER BY id DESC LIMIT 1 OFFSET ?)
                """,
                [.text(app.rawValue), .text(schedule), .text(app.rawValue), .text(schedule), .integer(Int64(Self.runsKeptPerSchedule))]
            )
            return id
        }
    }

    public func finishRun(_ id: Int, seconds: Double, status: ScheduleRun.Status, error: String? = nil) throws {
        try db.run(
            "UPDATE schedule_runs SET seconds = ?, status = ?, error = ? WHERE id = ?",
            [.real(seconds), .text(status.rawValue), SQLValue(error), .integer(Int64(id))]
        )
    }

    /// Runs a previous gustd left `running` (it was killed mid-run) become errors.
    @discardableResult
    public func abandonRunningRuns(because reason: String) throws -> Int {
        try db.run("UPDATE schedule_runs SET status = 'error', error = ? WHERE status = 'running'", [.text(reason)])
        return db.changes
    }

    /// The latest runs of one schedule, newest first.
    public func runs(_ app: AppName, schedule: String, limit: Int = Store.runsKeptPerSchedule) throws -> [ScheduleRun] {
        try db.query(
            "SELECT * FROM schedule_runs WHERE app = ? AND schedule = ? ORDER BY id DESC LIMIT ?",
            [.text(app.rawValue), .text(schedule), .integer(Int64(limit))]
        ).map(ScheduleRun.init(row:))
    }
}

extension StoredSchedule {
    init(row: Row) throws {
        app = try AppName(row.string("app") ?? "")
        name = row.string("name") ?? ""
        kind = row.string("kind") ?? ""
        spec = row.string("spec") ?? ""
        params = row.string("params")
        anchor = Date(timeIntervalSince1970: row.double("anchor") ?? 0)
        timeZone = row.string("time_zone") ?? "UTC"
        release = row.int("release") ?? 0
        nextRun = row.double("next_run").map(Date.init(timeIntervalSince1970:))
    }
}

extension ScheduleRun {
    init(row: Row) throws {
        id = row.int("id") ?? 0
        app = try AppName(row.string("app") ?? "")
        schedule = row.string("schedule") ?? ""
        release = row.int("release") ?? 0
        startedAt = Date(timeIntervalSince1970: row.double("started_at") ?? 0)
        seconds = row.double("seconds")
        status = Status(rawValue: row.string("status") ?? "") ?? .error
        error = row.string("error")
    }
}
