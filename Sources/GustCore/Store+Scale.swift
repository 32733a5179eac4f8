import Foundation

/// An app's scale rules (`gust scale`): how many instances of its live release
/// gustd runs, and how many calls each takes at once. Kept in the store, so
/// they hold across deploys and gustd restarts.
public struct ScaleSettings: Sendable, Codable, Equatable {
    /// Instances kept running however quiet the app is; 0 scales to zero.
    public var min: Int
    /// Instances at most.
    public var max: Int
    /// Calls one Node instance takes at once (a Python instance always takes one).
    public var concurrency: Int
    /// Seconds an instance may stay idle before it is stopped, down to `min`.
    public var idleSeconds: Int

    /// Suits a small server: one instance warm, up to four under load, idle ones stopped after 5 minutes.
    public static let standard = ScaleSettings(min: 1, max: 4, concurrency: 10, idleSeconds: 300)
    /// The most instances one app may ask for (a server has few cores; the sandbox's ceilings refine this).
    public static let maxInstances = 32

    public init(min: Int, max: Int, concurrency: Int, idleSeconds: Int) {
        self.min = min
        self.max = max
        self.concurrency = concurrency
        self.idleSeconds = idleSeconds
    }

    /// `min 1, max 4, concurrency 10, idle 5m`: how the activity log and the console say them.
    public var activityText: String { "min \(min), max \(max), concurrency \(concurrency), idle \(idleText)" }

    /// `idleSeconds` as `gust scale --idle` takes it: `45s`, `5m`, `1h30m` (not `300 s` for a `5m`).
    public var idleText: String {
        let (hours, minutes, seconds) = (idleSeconds / 3600, idleSeconds % 3600 / 60, idleSeconds % 60)
        let text = (hours > 0 ? "\(hours)h" : "") + (minutes > 0 ? "\(minutes)m" : "")
        return seconds > 0 || text.isEmpty ? text + "\(seconds)s" : text
    }

    /// Why these settings cannot be used, or nil.
    public var problem: String? {
        if min < 0 { return "--min must be 0 or more." }
        if max < 1 || max > Self.maxInstances { return "--max must be between 1 and \(Self.maxInstances)." }
        if min > max { return "--min (\(min)) must not be above --max (\(max))." }
        if concurrency < 1 || concurrency > 1000 { return "--concurrency must be between 1 and 1000." }
        if idleSeconds < 1 || idleSeconds > 86_400 { return "--idle must be between 1s and 24h." }
        return nil
    }
}

extension Store {
    /// The app's scale rules: the standard ones until `gust scale` changes them.
    public func scale(_ app: AppName) throws -> ScaleSettings {
        guard let row = try db.query("SELECT * FROM app_scale WHERE app = ?", [.text(app.rawValue)]).first else {
            return .standard
        }
        return ScaleSettings(
            min: row.int("min") ?? ScaleSettings.standard.min, max: row.int("max") ?? ScaleSettings.standard.max,
            concurrency: row.int("concurrency") ?? ScaleSettings.standard.concurrency,
            idleSeconds: row.int("idle_seconds") ?? ScaleSettings.standard.idleSeconds
        )
    }

    public func setScale(_ app: AppName, _ settings: ScaleSettings) throws {
        if let problem = settings.problem { throw GustError(problem) }
        _ = try requireApp(app)
        try db.run(
            """
            INSERT INTO app_scale (app, min, max, concurrency, idle_seconds) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (app) DO UPDATE SET min = excluded.min, max = excluded.max,
                concurrency = excluded.concurrency, idle_seconds = excluded.idle_seconds
            """,
            [.text(app.rawValue), .integer(Int64(settings.min)), .integer(Int64(settings.max)),
             .integer(Int64(settings.concurrency)), .integer(Int64(settings.idleSeconds))]
        )
    }
}
