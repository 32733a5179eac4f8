import Foundation

/// The most a scoped key may give its apps (`gust limits --ceilings`, admins only):
/// each limit, and `gust scale --max`. Nil fields are not capped.
public struct LimitCeilings: Sendable, Codable, Equatable {
    public var limits: AppLimits
    public var maxInstances: Int?

    public init(limits: AppLimits = AppLimits(), maxInstances: Int? = nil) {
        self.limits = limits
        self.maxInstances = maxInstances
    }
}

extension Store {
    /// What `gust limits` set for the app; nil fields follow gustd's defaults. Kept across deploys and restarts.
    public func limits(_ app: AppName) throws -> AppLimits {
        guard let row = try db.query("SELECT * FROM app_limits WHERE app = ?", [.text(app.rawValue)]).first else { return AppLimits() }
        return Self.limits(row)
    }

    public func setLimits(_ app: AppName, _ limits: AppLimits) throws {
        _ = try requireApp(app)
        try db.run(
            """
            INSERT INTO app_limits (app, memory, cpu_millis, pids, tmp, disk) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (app) DO UPDATE SET memory = excluded.memory, cpu_millis = excluded.cpu_millis,
                pids = excluded.pids, tmp = excluded.tmp, disk = excluded.disk
            """,
            [.text(app.rawValue)] + Self.values(limits)
        )
    }

    /// The limits in force for the app's next instance: its own, else gustd's defaults, else the built-in ones.
    public func effectiveLimits(_ app: AppName) throws -> AppLimits {
        try limits(app).over(limitDefaults() ?? .standard)
    }

    /// gustd's defaults as it last started with them; nil before any gustd ran on this home.
    public func limitDefaults() throws -> AppLimits? {
        try db.query("SELECT * FROM limit_profiles WHERE name = 'defaults'").first.map { Self.limits($0) }
    }

    /// Written by gustd at start from its flags, so that `gust limits` shows what gustd applies.
    public func setLimitDefaults(_ limits: AppLimits) throws {
        try setProfile("defaults", limits, maxInstances: nil)
    }

    public func limitCeilings() throws -> LimitCeilings {
        guard let row = try db.query("SELECT * FROM limit_profiles WHERE name = 'ceilings'").first else { return LimitCeilings() }
        return LimitCeilings(limits: Self.limits(row), maxInstances: row.int("max_instances"))
    }

    public func setLimitCeilings(_ ceilings: LimitCeilings) throws {
        try setProfile("ceilings", ceilings.limits, maxInstances: ceilings.maxInstances)
    }

    private func setProfile(_ name: String, _ limits: AppLimits, maxInstances: Int?) throws {
        try db.run(
            """
            INSERT INTO limit_profiles (name, memory, cpu_millis, pids, tmp, disk, max_instances) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET memory = excluded.memory, cpu_millis = excluded.cpu_millis, pids = excluded.pids,
                tmp = excluded.tmp, disk = excluded.disk, max_instances = excluded.max_instances
            """,
            [.text(name)] + Self.values(limits) + [SQLValue(maxInstances)]
        )
    }

    private static func values(_ limits: AppLimits) -> [SQLValue] {
        [SQLValue(limits.memory), SQLValue(limits.cpuMillis), SQLValue(limits.pids), SQLValue(limits.tmp), SQLValue(limits.disk)]
    }

    private static func limits(_ row: Row) -> AppLimits {
        AppLimits(memory: row.int("memory"), cpuMillis: row.int("cpu_millis"), pids: row.int("pids"), tmp: row.int("tmp"), disk: row.int("disk"))
    }
}
