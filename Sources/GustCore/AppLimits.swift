import Foundation

/// What one app may use (`gust limits`): memory, CPU, processes and `/tmp` per
/// instance, disk for the app's records and build cache. A nil field is not
/// set: gustd's default applies (`gustd --memory-limit` …), and a default that
/// is nil too means unlimited.
public struct AppLimits: Sendable, Codable, Equatable {
    /// Bytes of memory per instance (RAM, and swap where the machine accounts it).
    public var memory: Int?
    /// Thousandths of a CPU per instance: 500 is half a core.
    public var cpuMillis: Int?
    /// Processes and threads per instance.
    public var pids: Int?
    /// Bytes of the instance's private `/tmp` (a tmpfs `size=` in the sandbox).
    public var tmp: Int?
    /// Bytes of the app's records store and, separately, of its build cache.
    public var disk: Int?

    public init(memory: Int? = nil, cpuMillis: Int? = nil, pids: Int? = nil, tmp: Int? = nil, disk: Int? = nil) {
        self.memory = memory
        self.cpuMillis = cpuMillis
        self.pids = pids
        self.tmp = tmp
        self.disk = disk
    }

    /// gustd's built-in defaults, where neither the app nor gustd's flags say otherwise.
    public static let standard = AppLimits(memory: 512 << 20, cpuMillis: 1000, pids: 256, tmp: 64 << 20, disk: 1 << 30)

    /// Each field from `self`, else from `fallback`.
    public func over(_ fallback: AppLimits) -> AppLimits {
        AppLimits(
            memory: memory ?? fallback.memory, cpuMillis: cpuMillis ?? fallback.cpuMillis, pids: pids ?? fallback.pids,
            tmp: tmp ?? fallback.tmp, disk: disk ?? fallback.disk
        )
    }

    /// Each limit: its option's name, its field, and how a value of it is written.
    static var fields: [(name: String, field: KeyPath<AppLimits, Int?>, show: (Int) -> String)] {
        [("memory", \.memory, LimitSize.format), ("cpu", \.cpuMillis, LimitSize.formatCPU), ("pids", \.pids, String.init),
         ("tmp", \.tmp, LimitSize.format), ("disk", \.disk, LimitSize.format)]
    }

    /// The fields of `self` above the same field of `ceilings`, as `--memory 1G (ceiling 512M)`.
    public func exceeding(_ ceilings: AppLimits) -> [String] {
        Self.fields.compactMap { name, field, show in
            guard let value = self[keyPath: field], let ceiling = ceilings[keyPath: field], value > ceiling else { return nil }
            return "--\(name) \(show(value)) (ceiling \(show(ceiling)))"
        }
    }

    /// `memory 256M, cpu 0.5, pids 64, tmp 64M, disk 1G` (unset fields as `-`, unlimited as `none`).
    public var summary: String {
        func show(_ value: Int?, _ format: (Int) -> String) -> String { value.map(format) ?? "none" }
        return "memory \(show(memory, LimitSize.format)), cpu \(show(cpuMillis, LimitSize.formatCPU)), "
            + "pids \(show(pids, String.init)), tmp \(show(tmp, LimitSize.format)), disk \(show(disk, LimitSize.format))"
    }
}

/// Sizes and CPU shares as people write them on a command line.
public enum LimitSize {
    /// `256M`, `1G`, `64m`, `512K`, `1048576`, `1.5G` (binary units: 1M = 1024 × 1024 bytes).
    /// `none` or `0` is nil: no limit.
    public static func parseBytes(_ text: String) throws -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
        if trimmed == "NONE" || trimmed == "0" { return nil }
        var digits = Substring(trimmed)
        if digits.hasSuffix("IB") {
            digits = digits.dropLast(2)
        } else if digits.hasSuffix("B") {
            digits = digits.dropLast()
        }
        var multiplier = 1
        if let unit = digits.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][String(unit)] {
            multiplier = 1 << shift
            digits = digits.dropLast()
        }
        guard let number = digits.plainDecimal, number > 0,
            number * Double(multiplier) < Double(Int64.max / 2)
        else {
            throw GustError("'\(text)' is not a size: write 64M, 256M, 1G (or none).")
        }
        let bytes = Int((number * Double(multiplier)).rounded())
        guard bytes >= 1 else { throw GustError("'\(text)' is too small a size.") }
        return bytes
    }

    /// An instance's memory: as `parseBytes`, and at least 16M (a Python interpreter alone takes
    /// about 8 MB). Written without a unit, `--memory 256` is 256 bytes, as Docker and Kubernetes
    /// read it, where someone used to Lambda means megabytes: refused, with the unit to write.
    public static func parseMemory(_ text: String) throws -> Int? {
        try parseBytes(text, atLeast: 16 << 20, of: "memory for an instance")
    }

    /// An instance's `/tmp`: as `parseBytes`, and at least 1M.
    public static func parseTmp(_ text: String) throws -> Int? {
        try parseBytes(text, atLeast: 1 << 20, of: "/tmp for an instance")
    }

    /// An app's disk (its records store, its build cache): as `parseBytes`, and at least 1M.
    public static func parseDisk(_ text: String) throws -> Int? {
        try parseBytes(text, atLeast: 1 << 20, of: "disk for an app")
    }

    private static func parseBytes(_ text: String, atLeast floor: Int, of what: String) throws -> Int? {
        guard let bytes = try parseBytes(text) else { return nil }
        guard bytes >= floor else {
            let written = bytes < 1 << 10 ? "\(bytes) bytes" : spoken(bytes)
            throw GustError("'\(text)' is \(written), too little \(what) (at least \(format(floor))): write the unit, as in 256M or 1G.")
        }
        return bytes
    }

    /// `0.5`, `2`, `250m` (thousandths, as Kubernetes writes them) → thousandths of a CPU; `none` or `0` is nil.
    public static func parseCPU(_ text: String) throws -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "none" || trimmed == "0" { return nil }
        let millis: Int?
        if trimmed.hasSuffix("m"), let value = Int(trimmed.dropLast()) {
            millis = value
        } else if let value = trimmed.plainDecimal, value <= 1024 {
            // Bounded before the conversion: Int() of a Double past Int's range traps.
            millis = Int((value * 1000).rounded())
        } else {
            millis = nil
        }
        guard let millis, millis >= 10, millis <= 1_024_000 else {
            throw GustError("'\(text)' is not a CPU share: write 0.5 for half a core, 2 for two (at least 0.01), or none.")
        }
        return millis
    }

    /// A whole number of processes, at least 8 (a runtime needs a few threads); `none` or `0` is nil.
    public static func parsePids(_ text: String) throws -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "none" || trimmed == "0" { return nil }
        guard let value = Int(trimmed), value >= 8, value <= 4_194_304 else {
            throw GustError("'\(text)' is not a process count: write a whole number of 8 or more, or none.")
        }
        return value
    }

    /// `64M`, `1G`, `1.5G`, `300K`, `12345B`: the shortest exact form, else one decimal.
    public static func format(_ bytes: Int) -> String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes >= 1 << shift {
            let value = Double(bytes) / Double(1 << shift)
            if bytes % (1 << shift) == 0 { return "\(bytes >> shift)\(unit)" }
            if value >= 1 { return String(format: "%.1f%@", value, unit) }
        }
        return "\(bytes)B"
    }

    /// `0.5`, `2`, `0.25`.
    public static func formatCPU(_ millis: Int) -> String {
        millis % 1000 == 0 ? "\(millis / 1000)" : String(format: "%g", Double(millis) / 1000)
    }

    /// `64 MB` for messages about a limit that was hit.
    public static func spoken(_ bytes: Int) -> String {
        let text = format(bytes)
        return text.hasSuffix("B") ? text.dropLast() + " bytes" : text.dropLast() + " " + text.suffix(1) + "B"
    }
}
