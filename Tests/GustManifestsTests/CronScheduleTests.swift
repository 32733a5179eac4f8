import GustManifests
import Testing

@Suite struct CronScheduleTests {
    @Test(arguments: [
        ("1m", "* * * * *"), ("5m", "*/5 * * * *"), ("@every 15m", "*/15 * * * *"), ("30m", "*/30 * * * *"),
        ("60m", "0 * * * *"), ("1h", "0 * * * *"), ("6h", "0 */6 * * *"), ("12h", "0 */12 * * *"), ("24h", "0 0 * * *"),
        ("120s", "*/2 * * * *"),
    ])
    func everyIntervalThatDividesTheHourOrDayBecomesACronLine(_ every: String, _ cron: String) {
        #expect(CronSchedule(kind: "every", spec: every) == .translated(cron))
    }

    @Test(arguments: ["30s", "90s", "7m", "45m", "90m", "5h", "48h", "1h30m"])
    func otherIntervalsAreReportedNotApproximated(_ every: String) {
        guard case .untranslatable(let reason) = CronSchedule(kind: "every", spec: every) else {
            Issue.record("\(every) was translated")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test(arguments: [
        ("*/5 * * * *", "*/5 * * * *"), ("0  3 * * 1-5", "0 3 * * 1-5"), ("@daily", "@daily"), ("@hourly", "@hourly"),
        ("0 30 2 * * *", "30 2 * * *"), ("0 0 * * 7", "0 0 * * 0"), ("0 0 * * */7", "0 0 * * */7"),
    ])
    func cronLinesPassWithTheirSecondsDropped(_ spec: String, _ cron: String) {
        #expect(CronSchedule(kind: "cron", spec: spec) == .translated(cron))
    }

    @Test func secondsPastTheMinuteAndSundayAsSevenInARangeAreReported() {
        #expect(CronSchedule(kind: "cron", spec: "30 * * * * *") != .translated("* * * * *"))
        if case .translated = CronSchedule(kind: "cron", spec: "30 * * * * *") { Issue.record("seconds dropped") }
        if case .translated = CronSchedule(kind: "cron", spec: "0 0 * * 5-7") { Issue.record("7 in a range passed") }
        if case .translated = CronSchedule(kind: "cron", spec: "not a cron") { Issue.record("garbage passed") }
        if case .translated = CronSchedule(kind: "sometimes", spec: "5m") { Issue.record("unknown kind passed") }
    }
}
