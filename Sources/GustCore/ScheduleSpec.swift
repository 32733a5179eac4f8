public import Foundation

/// When a scheduled function runs: `every` an interval, or a cron expression.
///
/// Parsed by gustd from a release's manifest; a spec that does not parse
/// rejects the deploy with a message naming the function and the spec.
public enum ScheduleSpec: Sendable, Equatable, CustomStringConvertible {
    case every(Duration)
    case cron(CronExpression)

    /// The longest `every` interval: a year and a day. A manifest comes from the app's own code,
    /// so its amounts are bounded before they are multiplied or summed (an overflow would trap gustd).
    public static let longestEvery = 366 * 86_400

    /// `every` takes `2m`, `30s`, `1h`, `1h30m` or `@every 2m`.
    public static func every(_ text: String) throws(GustError) -> ScheduleSpec {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest.hasPrefix("@every") { rest = rest.dropFirst("@every".count).drop { $0 == " " } }
        switch interval(rest) {
        case .seconds(let total) where total > 0: return .every(.seconds(total))
        case .tooLong: throw GustError("'\(text)' is longer than a schedule's interval may be: at most 366 days (8784h).")
        case .seconds, .malformed: throw invalidEvery(text)
        }
    }

    /// What `interval(_:)` read.
    public enum Interval: Equatable, Sendable {
        case seconds(Int)
        /// Well formed, but longer than `longestEvery`.
        case tooLong
        case malformed
    }

    /// `30s`, `2m`, `1h30m` in whole seconds (`0s` is 0), at most `longestEvery`.
    public static func interval(_ text: Substring) -> Interval {
        var total = 0
        var digits = ""
        var tooLong = false
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            let unit: Int? = switch character { case "s": 1; case "m": 60; case "h": 3600; default: nil }
            guard let unit, !digits.isEmpty else { return .malformed }
            // Past Int's range or the longest interval, the rest is still read: a malformed text says so.
            if let amount = Int(digits), amount <= longestEvery / unit, total + amount * unit <= longestEvery {
                total += amount * unit
            } else {
                tooLong = true
            }
            digits = ""
        }
        guard digits.isEmpty, !text.isEmpty else { return .malformed }
        return tooLong ? .tooLong : .seconds(total)
    }

    public static func cron(_ text: String) throws(GustError) -> ScheduleSpec {
        .cron(try CronExpression(text))
    }

    /// A schedule as a manifest states it: `kind` is `every` or `cron`.
    public init(kind: String, spec: String) throws(GustError) {
        switch kind {
        case "every": self = try .every(spec)
        case "cron": self = try .cron(spec)
        default: throw GustError("'\(kind)' is not a kind of schedule: use every or cron.")
        }
    }

    /// Parses a manifest's schedule; the error names the function and its spec,
    /// as the pusher should read it.
    public static func validated(function name: String, kind: String, spec: String) throws(GustError) -> ScheduleSpec {
        do {
            return try ScheduleSpec(kind: kind, spec: spec)
        } catch {
            throw GustError(
                "schedule \(name): \(error.message)",
                hint: "Fix the spec of \(name) (\(kind) '\(spec)') and push again."
            )
        }
    }

    /// The zone cron schedules follow: the app's `TZ` config var (an IANA name
    /// such as `Europe/Paris`), UTC when it is unset.
    public static func timeZone(named name: String?) throws(GustError) -> TimeZone {
        guard let name, !name.isEmpty else { return .gmt }
        guard let zone = TimeZone(identifier: name) else {
            throw GustError(
                "TZ is '\(name)', which is not a time zone: cron schedules need an IANA name such as Europe/Paris or UTC.",
                hint: "Set it with `gust config set APP TZ=Europe/Paris`, or unset it for UTC."
            )
        }
        return zone
    }

    private static func invalidEvery(_ text: String) -> GustError {
        GustError("'\(text)' is not an interval: write a number with s, m or h, like '30s', '2m' or '@every 1h'.")
    }

    /// The first run strictly after `date`. For `every`, runs fall on
    /// `anchor + k × interval`, so a redeploy keeps the rhythm.
    public func next(after date: Date, anchor: Date, timeZone: TimeZone = .gmt) -> Date? {
        switch self {
        case .every(let interval):
            let step = Double(interval.components.seconds)
            guard date >= anchor else { return anchor }
            // `date` exactly on the grid is past: the next point is one step on.
            let elapsed = date.timeIntervalSince(anchor)
            return anchor.addingTimeInterval((floor(elapsed / step) + 1) * step)
        case .cron(let expression):
            return expression.next(after: date, timeZone: timeZone)
        }
    }

    public var description: String {
        switch self {
        case .every(let interval): "every \(interval.components.seconds) s"
        case .cron(let expression): "cron \(expression.source)"
        }
    }

    public var kind: String {
        switch self {
        case .every: "every"
        case .cron: "cron"
        }
    }
}
