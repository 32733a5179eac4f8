import Foundation
import GustCore

/// A Gust schedule as a CronJob's `schedule`, or why it cannot be one.
///
/// Why a translation: Kubernetes' cron has five fields and no seconds, and no
/// `every`. An `every` interval becomes a cron line when it divides the hour or
/// the day evenly (`every 5m` → `*/5 * * * *`, `every 6h` → `0 */6 * * *`);
/// its runs then fall on the clock's marks rather than on Gust's anchor (the
/// time the schedule was first deployed), which is the one difference. Other
/// intervals (`every 45m`, `every 30s`, `every 2d`) have no exact cron form and
/// are reported, not approximated: a schedule that runs at other times than
/// the app's author wrote is worse than one the user must place by hand.
public enum CronSchedule: Sendable, Equatable {
    case translated(String)
    case untranslatable(reason: String)

    public init(kind: String, spec: String) {
        let parsed: ScheduleSpec
        do throws(GustError) {
            parsed = try ScheduleSpec(kind: kind, spec: spec)
        } catch {
            self = .untranslatable(reason: error.message)
            return
        }
        switch parsed {
        case .every(let interval): self = Self.cron(every: Int(interval.components.seconds))
        case .cron: self = Self.cron(expression: spec)
        }
    }

    /// `*/m * * * *` for whole minutes dividing the hour, `0 */h * * *` for whole hours dividing the day.
    static func cron(every seconds: Int) -> CronSchedule {
        if seconds % 60 != 0 {
            return .untranslatable(reason: "every \(seconds)s is not a whole number of minutes, and Kubernetes' cron counts minutes")
        }
        let minutes = seconds / 60
        if minutes < 60, 60 % minutes == 0 { return .translated(minutes == 1 ? "* * * * *" : "*/\(minutes) * * * *") }
        if minutes % 60 == 0 {
            let hours = minutes / 60
            if hours == 24 { return .translated("0 0 * * *") }
            if hours < 24, 24 % hours == 0 { return .translated(hours == 1 ? "0 * * * *" : "0 */\(hours) * * *") }
        }
        return .untranslatable(
            reason: "every \(minutes)m does not divide an hour or a day evenly, so no cron line runs it at that interval"
        )
    }

    /// Five fields and the `@` macros pass as they are; six fields only when the
    /// seconds field is `0`. Gust reads a weekday 7 as Sunday, Kubernetes only 0:
    /// a lone `7` becomes `0`, a 7 inside a range or list is reported.
    static func cron(expression: String) -> CronSchedule {
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("@") { return .translated(trimmed) }
        var fields = trimmed.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if fields.count == 6 {
            guard fields[0] == "0" || fields[0] == "00" else {
                return .untranslatable(reason: "it runs at a second past the minute ('\(fields[0])'), and Kubernetes' cron has no seconds field")
            }
            fields.removeFirst()
        }
        guard fields.count == 5 else { return .untranslatable(reason: "'\(expression)' is not a cron line of 5 fields") }
        if fields[4] == "7" {
            fields[4] = "0"
        } else if fields[4].split(separator: ",").contains(where: { $0.prefix { $0 != "/" }.split(separator: "-").contains("7") }) {
            return .untranslatable(reason: "its weekday field '\(fields[4])' uses 7 for Sunday, which Kubernetes' cron does not take (write 0)")
        }
        return .translated(fields.joined(separator: " "))
    }
}
