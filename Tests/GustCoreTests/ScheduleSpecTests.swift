import Foundation
import GustCore
import Testing

@Suite struct ScheduleSpecTests {
    let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test(arguments: [("2m", 120), ("30s", 30), ("1h", 3600), ("@every 2m", 120), ("1h30m", 5400)])
    func everyIntervals(_ text: String, _ seconds: Int) throws {
        #expect(try ScheduleSpec.every(text) == .every(.seconds(seconds)))
    }

    @Test(arguments: ["", "2", "2x", "m", "0s", "-1m", "every 2m"])
    func badIntervalsAreRefused(_ text: String) {
        #expect(throws: GustError.self) { try ScheduleSpec.every(text) }
    }

    /// A manifest comes from the app's own code: an amount that overflows when multiplied or summed
    /// must be refused, not trap (gustd parses it). Longer than 366 days is refused too.
    @Test(arguments: ["999999999999999999h", "4000000000000000000s4000000000000000000s4000000000000000000s", "8785h", "367h8760h"])
    func intervalsTooLongAreRefusedWithoutOverflow(_ text: String) {
        #expect(throws: GustError.self) { try ScheduleSpec.every(text) }
    }

    @Test func theLongestIntervalIsAYearAndADay() throws {
        #expect(try ScheduleSpec.every("8784h") == .every(.seconds(366 * 86_400)))
        do {
            _ = try ScheduleSpec.every("9000h")
            Issue.record("9000h was taken")
        } catch {
            #expect(error.message.contains("at most 366 days"), "\(error.message)")
        }
    }

    @Test func everyKeepsItsRhythmFromTheAnchor() throws {
        let spec = try ScheduleSpec.every("2m")
        let anchor = date("2026-01-01T00:00:00Z")
        // A redeploy at 00:03:10 does not restart the count: the next run is 00:04:00.
        #expect(spec.next(after: date("2026-01-01T00:03:10Z"), anchor: anchor) == date("2026-01-01T00:04:00Z"))
        #expect(spec.next(after: date("2026-01-01T00:04:00Z"), anchor: anchor) == date("2026-01-01T00:06:00Z"))
    }

    @Test(arguments: [
        ("0 8 * * *", "2026-03-10T09:00:00Z", "2026-03-11T08:00:00Z"),
        ("*/15 * * * *", "2026-03-10T09:07:30Z", "2026-03-10T09:15:00Z"),
        ("30 * * * * *", "2026-03-10T09:07:30Z", "2026-03-10T09:08:30Z"),
        ("@hourly", "2026-03-10T09:07:30Z", "2026-03-10T10:00:00Z"),
        ("@daily", "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"),
        ("@weekly", "2026-03-10T09:00:00Z", "2026-03-15T00:00:00Z"),
        ("@monthly", "2026-02-10T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 12 * * 1-5", "2026-03-14T13:00:00Z", "2026-03-16T12:00:00Z"),
    ])
    func cronNextRun(_ spec: String, _ after: String, _ expected: String) throws {
        let schedule = try ScheduleSpec.cron(spec)
        #expect(schedule.next(after: date(after), anchor: date(after), timeZone: utc) == date(expected))
    }

    @Test func cronFollowsTheAppsTimeZone() throws {
        let schedule = try ScheduleSpec.cron("0 8 * * *")
        let paris = TimeZone(identifier: "Europe/Paris")!
        #expect(schedule.next(after: date("2026-01-10T00:00:00Z"), anchor: .distantPast, timeZone: paris) == date("2026-01-10T07:00:00Z"))
    }

    @Test(arguments: ["", "* * * *", "61 * * * *", "* * * * * * *", "a * * * *", "5-1 * * * *", "*/0 * * * *", "@often"])
    func badCronIsRefused(_ spec: String) {
        #expect(throws: GustError.self) { try ScheduleSpec.cron(spec) }
    }

    @Test func aManifestsSpecIsCheckedWithTheFunctionAndSpecInTheMessage() throws {
        #expect(try ScheduleSpec.validated(function: "meow", kind: "every", spec: "@every 2s") == .every(.seconds(2)))
        #expect(try ScheduleSpec(kind: "cron", spec: "@hourly").kind == "cron")
        #expect(throws: GustError.self) { try ScheduleSpec(kind: "weekly", spec: "1h") }
        do {
            _ = try ScheduleSpec.validated(function: "nightly", kind: "cron", spec: "61 * * * *")
            Issue.record("61 is not a minute")
        } catch {
            #expect(error.message.hasPrefix("schedule nightly: '61 * * * *' is not a valid cron expression"))
            #expect(error.hint?.contains("cron '61 * * * *'") == true)
        }
    }

    @Test func theAppsTimeZoneIsAnIANANameOrUTC() throws {
        #expect(try ScheduleSpec.timeZone(named: nil) == .gmt)
        #expect(try ScheduleSpec.timeZone(named: "") == .gmt)
        #expect(try ScheduleSpec.timeZone(named: "Asia/Tokyo").identifier == "Asia/Tokyo")
        #expect(throws: GustError.self) { try ScheduleSpec.timeZone(named: "Mars/Olympus") }
    }

    @Test func sixFieldsWithSecondsAndATimeZoneAcrossADay() throws {
        // Every 20 s during 09:00 in Tokyo (UTC+9, no DST): from 23:59:50 UTC the next is 00:00:00 UTC.
        let schedule = try ScheduleSpec.cron("*/20 * 9 * * *")
        let tokyo = TimeZone(identifier: "Asia/Tokyo")!
        #expect(schedule.next(after: date("2026-05-01T23:59:50Z"), anchor: .distantPast, timeZone: tokyo) == date("2026-05-02T00:00:00Z"))
        #expect(schedule.next(after: date("2026-05-02T00:59:40Z"), anchor: .distantPast, timeZone: tokyo) == date("2026-05-02T23:59:59Z").addingTimeInterval(1))
    }
}
