import Foundation

/// A change to an app's scale rules as `gust scale` (the CLI, over SSH) and the
/// web console ask for it: one path checks it (the rules' own bounds, and for a
/// scoped caller the admin's `--max-instances` ceiling), stores it and notes it
/// in the activity log, so the two cannot drift apart. Telling a running gustd
/// is the caller's part (the CLI asks the admin API to reconcile; the console,
/// inside gustd, reconciles itself).
public struct ScaleChange: Sendable, Equatable {
    public var min: Int?
    public var max: Int?
    public var concurrency: Int?
    /// As written: `30s`, `5m`, `1h30m`.
    public var idle: String?

    public init(min: Int? = nil, max: Int? = nil, concurrency: Int? = nil, idle: String? = nil) {
        self.min = min
        self.max = max
        self.concurrency = concurrency
        self.idle = idle
    }

    public var isEmpty: Bool { min == nil && max == nil && concurrency == nil && idle == nil }

    /// The app's rules with this change made, checked; throws a `GustError` that says what to fix.
    public func applied(to current: ScaleSettings, ceilings: LimitCeilings?) throws -> ScaleSettings {
        var settings = current
        if let min { settings.min = min }
        if let max { settings.max = max }
        if let concurrency { settings.concurrency = concurrency }
        if let idle { settings.idleSeconds = try Self.seconds(idle) }
        if let problem = settings.problem { throw GustError(problem) }
        // Checked for what the change sets: an app an admin scaled past the ceiling keeps it while
        // a scoped key changes something else. A `--min` over it would keep that many running.
        if let ceilings, let ceiling = ceilings.maxInstances {
            for (option, value, changed) in [("--min", settings.min, min != nil), ("--max", settings.max, max != nil)] where changed && value > ceiling {
                throw GustError("\(option) \(value) is over the ceiling of \(ceiling) instances an admin set for scoped keys. Ask an admin.")
            }
        }
        return settings
    }

    /// `30s`, `5m`, `1h30m` in whole seconds.
    public static func seconds(_ text: String) throws -> Int {
        switch ScheduleSpec.interval(Substring(text.trimmingCharacters(in: .whitespaces))) {
        case .seconds(let seconds): return seconds
        case .tooLong: throw GustError("'\(text)' is too long: --idle must be between 1s and 24h.")
        case .malformed: throw GustError("'\(text)' is not a duration: write 30s, 5m, 1h or 1h30m.")
        }
    }
}

extension Store {
    /// Checks, stores and notes a scale change; `underCeilings` for a caller scoped to some apps.
    @discardableResult
    public func changeScale(_ app: AppName, _ change: ScaleChange, underCeilings: Bool, actor: String, source: String) throws -> ScaleSettings {
        _ = try requireApp(app)
        let settings = try change.applied(to: try scale(app), ceilings: underCeilings ? try limitCeilings() : nil)
        try setScale(app, settings)
        try? recordActivity(app: app, actor: actor, source: source, action: "scale", detail: settings.activityText)
        return settings
    }
}
