import Foundation

/// A change to an app's limits as `gust limits APP` and the web console ask for
/// it, each value as written (`256M`, `0.5`, `64`, `default`): one path parses
/// them, holds a scoped caller under the admin's ceilings, stores the result and
/// notes it in the activity log. gustd reads an app's limits as it starts each
/// instance, so nothing needs telling: the next instance gets them.
public struct LimitsChange: Sendable, Equatable {
    public var memory: String?
    public var cpu: String?
    public var pids: String?
    public var tmp: String?
    public var disk: String?

    public init(memory: String? = nil, cpu: String? = nil, pids: String? = nil, tmp: String? = nil, disk: String? = nil) {
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
        self.tmp = tmp
        self.disk = disk
    }

    public var isEmpty: Bool { [memory, cpu, pids, tmp, disk].allSatisfy { $0 == nil } }

    /// `limits` with each field replaced by what `value` makes of its text here, its value there and
    /// its parser (`LimitSize`'s): the one place that says which parser reads which limit, for a
    /// change, the admin's ceilings and gustd's own defaults alike.
    public func merged(
        into limits: AppLimits, _ value: (_ text: String?, _ current: Int?, _ parse: (String) throws -> Int?) throws -> Int?
    ) throws -> AppLimits {
        var limits = limits
        limits.memory = try value(memory, limits.memory, LimitSize.parseMemory)
        limits.cpuMillis = try value(cpu, limits.cpuMillis, LimitSize.parseCPU)
        limits.pids = try value(pids, limits.pids, LimitSize.parsePids)
        limits.tmp = try value(tmp, limits.tmp, LimitSize.parseTmp)
        limits.disk = try value(disk, limits.disk, LimitSize.parseDisk)
        return limits
    }

    /// Each limit parsed from its text: nil where there is none or it says `none` (gustd's flags,
    /// `--memory-limit 512M`).
    public func parsed() throws -> AppLimits {
        try merged(into: AppLimits()) { text, _, parse in try text.flatMap(parse) }
    }

    /// The app's own limits with this change made, checked; throws a `GustError` that says what to fix.
    /// A CPU limit above the machine's `cores` (nil: this machine's) is refused: it would limit
    /// nothing, and `--cpu 100` meant 100m or 100 % (Docker's `--cpus` refuses it too).
    /// A scoped caller's `default` hands a limit to gustd's `defaults` (nil: gustd's built-in ones), which
    /// must be within the ceiling as a value of its own must (`none` is over any ceiling).
    public func applied(to current: AppLimits, ceilings: AppLimits?, defaults: AppLimits? = nil, cores: Int? = nil) throws -> AppLimits {
        let limits = try merged(into: current, Self.value)
        let cores = cores ?? ProcessInfo.processInfo.activeProcessorCount
        if let cpu, let millis = limits.cpuMillis, millis > cores * 1000 {
            throw GustError(
                "--cpu \(cpu) is \(LimitSize.formatCPU(millis)) CPUs, and this machine has \(cores): "
                    + "write 0.5 for half of one, up to \(cores), or 100m for a tenth of one.")
        }
        if let ceilings {
            let texts = ["memory": memory, "cpu": cpu, "pids": pids, "tmp": tmp, "disk": disk]
            let over = limits.exceeding(ceilings) + AppLimits.fields.compactMap { name, field, show in
                guard let text = texts[name] ?? nil, Self.isDefault(text), let ceiling = ceilings[keyPath: field] else { return nil }
                let value = (defaults ?? .standard)[keyPath: field]
                if let value, value <= ceiling { return nil }
                return "--\(name) default (gustd's \(value.map(show) ?? "none"), ceiling \(show(ceiling)))"
            }
            guard over.isEmpty else {
                throw GustError("Over the ceilings an admin set for scoped keys: \(over.joined(separator: ", ")). Ask an admin.")
            }
        }
        return limits
    }

    private static func isDefault(_ text: String) -> Bool { text.trimmingCharacters(in: .whitespaces).lowercased() == "default" }

    /// `default` clears the app's own value; anything else must parse to a limit.
    private static func value(_ text: String?, current: Int?, _ parse: (String) throws -> Int?) throws -> Int? {
        guard let text else { return current }
        if isDefault(text) { return nil }
        guard let parsed = try parse(text) else {
            throw GustError("An app always has a limit: give a value, or `default` for gustd's.")
        }
        return parsed
    }
}

extension Store {
    /// Checks, stores and notes a change of an app's own limits; `underCeilings` for a caller scoped to some apps.
    @discardableResult
    public func changeLimits(_ app: AppName, _ change: LimitsChange, underCeilings: Bool, actor: String, source: String) throws -> AppLimits {
        _ = try requireApp(app)
        let limits = try change.applied(
            to: try limits(app), ceilings: underCeilings ? try limitCeilings().limits : nil, defaults: try limitDefaults())
        try setLimits(app, limits)
        try? recordActivity(app: app, actor: actor, source: source, action: "limits", detail: limits.summary)
        return limits
    }
}
