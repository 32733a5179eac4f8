public import Foundation

/// A cron expression: 5 fields (minute hour day-of-month month day-of-week),
/// 6 with seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
/// `@yearly`. Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`.
public struct CronExpression: Sendable, Equatable {
    public let source: String
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    /// Vixie cron: when both day fields are restricted, either may match.
    let dayFieldsBothRestricted: Bool

    static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    public init(_ text: String) throws(GustError) {
        source = text
        let expanded = Self.macros[text.trimmingCharacters(in: .whitespaces)] ?? text
        var fields = expanded.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw GustError("'\(text)' is not a cron expression: it needs 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly.")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        seconds = try Self.parse(fields[0], 0...59, text)
        minutes = try Self.parse(fields[1], 0...59, text)
        hours = try Self.parse(fields[2], 0...23, text)
        daysOfMonth = try Self.parse(fields[3], 1...31, text)
        months = try Self.parse(fields[4], 1...12, text)
        // 7 is Sunday too.
        daysOfWeek = Set(try Self.parse(fields[5], 0...7, text).map { $0 % 7 })
        dayFieldsBothRestricted = fields[3] != "*" && fields[5] != "*"
    }

    private static func parse(_ field: String, _ range: ClosedRange<Int>, _ text: String) throws(GustError) -> Set<Int> {
        var values = Set<Int>()
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw invalid(field, text) }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw invalid(field, text) }
                step = parsed
            }
            let span: ClosedRange<Int>
            if pieces[0] == "*" {
                span = range
            } else if let dash = pieces[0].firstIndex(of: "-") {
                guard let low = Int(pieces[0][..<dash]), let high = Int(pieces[0][pieces[0].index(after: dash)...]),
                    low <= high, range.contains(low), range.contains(high)
                else { throw invalid(field, text) }
                span = low...high
            } else {
                guard let value = Int(pieces[0]), range.contains(value) else { throw invalid(field, text) }
                span = pieces.count == 2 ? value...range.upperBound : value...value
            }
            values.formUnion(stride(from: span.lowerBound, through: span.upperBound, by: step))
        }
        return values
    }

    private static func invalid(_ field: String, _ text: String) -> GustError {
        GustError("'\(text)' is not a valid cron expression: cannot read the field '\(field)'.")
    }

    /// The first matching second strictly after `date`, searching at most about five years ahead.
    public func next(after date: Date, timeZone: TimeZone = .gmt) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var candidate = calendar.date(byAdding: .second, value: 1, to: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))!
        let limit = date.addingTimeInterval(5 * 366 * 86_400)
        while candidate < limit {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: candidate)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                let second = parts.second, let weekday = parts.weekday
            else { return nil }
            if !months.contains(month) {
                candidate = calendar.nextDate(after: candidate, matching: DateComponents(day: 1, hour: 0, minute: 0, second: 0), matchingPolicy: .nextTime)!
            } else if !dayMatches(day: day, weekday: weekday - 1) {
                candidate = calendar.nextDate(after: candidate, matching: DateComponents(hour: 0, minute: 0, second: 0), matchingPolicy: .nextTime)!
            } else if !hours.contains(hour) {
                candidate = calendar.nextDate(after: candidate, matching: DateComponents(minute: 0, second: 0), matchingPolicy: .nextTime)!
            } else if !minutes.contains(minute) {
                candidate = calendar.nextDate(after: candidate, matching: DateComponents(second: 0), matchingPolicy: .nextTime)!
            } else if !seconds.contains(second) {
                candidate = calendar.date(byAdding: .second, value: 1, to: candidate)!
            } else {
                return candidate
            }
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let byMonth = daysOfMonth.contains(day)
        let byWeek = daysOfWeek.contains(weekday)
        return dayFieldsBothRestricted ? (byMonth || byWeek) : (byMonth && byWeek)
    }
}
