import Foundation
import GustCore
@testable import GustDaemon
import Testing

/// The console's per-minute history: counts per minute, errors are 5xx, latency
/// percentiles from each minute's histogram, instances sampled by state, and a
/// fixed ring of an hour per app (an old minute's slot is reused, never kept).
@Suite struct CallHistoryTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)  // a minute's start

    @Test func callsAndErrorsArePerMinuteOldestFirst() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        history.record(cats, status: 200, duration: .milliseconds(5), at: start)
        history.record(cats, status: 503, duration: .milliseconds(5), at: start.addingTimeInterval(10))
        history.record(cats, status: 404, duration: .milliseconds(5), at: start.addingTimeInterval(70))
        let minutes = history.minutes(cats, count: 3, at: start.addingTimeInterval(70))
        #expect(minutes.map(\.calls) == [0, 2, 1])
        #expect(minutes.map(\.errors) == [0, 1, 0])
        #expect(history.minutes(try AppName("dogs"), count: 2, at: start).map(\.calls) == [0, 0])
    }

    @Test func itKeepsAnHourInAFixedRing() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        for minute in 0..<(CallHistory.minutesKept + 30) {
            history.record(cats, status: 200, duration: .milliseconds(1), at: start.addingTimeInterval(Double(minute) * 60))
        }
        // Nothing for 30 minutes: the slots of minutes an hour old are not read as now.
        let later = start.addingTimeInterval(Double(CallHistory.minutesKept + 59) * 60)
        let all = history.minutes(cats, count: CallHistory.minutesKept, at: later)
        #expect(all.count == CallHistory.minutesKept)
        #expect(all.prefix(30).allSatisfy { $0.calls == 1 })
        #expect(all.suffix(30).allSatisfy { $0.calls == 0 })
        // Asking for more than an hour gives an hour.
        #expect(history.minutes(cats, count: 500, at: later).count == CallHistory.minutesKept)
    }

    @Test func percentilesComeFromTheMinutesHistogramWithinABucket() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        // 90 calls of 10 ms, 9 of 100 ms, 1 of 2 s.
        for _ in 0..<90 { history.record(cats, status: 200, duration: .milliseconds(10), at: start) }
        for _ in 0..<9 { history.record(cats, status: 200, duration: .milliseconds(100), at: start) }
        history.record(cats, status: 200, duration: .seconds(2), at: start)
        let minute = try #require(history.minutes(cats, count: 2, at: start.addingTimeInterval(1)).last)
        let p50 = try #require(minute.p50), p95 = try #require(minute.p95), p99 = try #require(minute.p99)
        #expect(p50 >= 10 && p50 < 10 * 1.26)
        #expect(p95 >= 100 && p95 < 100 * 1.26)
        #expect(p99 >= 100 && p99 < 100 * 1.26)
        #expect(history.minutes(cats, count: 2, at: start.addingTimeInterval(1)).first?.p50 == nil)  // no calls: no latency
        // The slowest call is the 100th percentile's bucket.
        #expect(CallHistory.percentile(1, of: [0, 1, 0, 2]) == CallHistory.bound(3))
        #expect(CallHistory.bucket(milliseconds: 0.2) == 0)
        #expect(CallHistory.bucket(milliseconds: 1e9) == CallHistory.latencyBuckets - 1)
    }

    @Test func aMinuteKeepsTheMostInstancesItSawByState() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        history.sample(cats, starting: 1, idle: 0, busy: 0, at: start)
        history.sample(cats, starting: 0, idle: 2, busy: 1, at: start.addingTimeInterval(5))
        history.sample(cats, starting: 0, idle: 1, busy: 0, at: start.addingTimeInterval(65))
        let minutes = history.minutes(cats, count: 2, at: start.addingTimeInterval(65))
        #expect(minutes.map(\.starting) == [1, 0])
        #expect(minutes.map(\.idle) == [2, 1])
        #expect(minutes.map(\.busy) == [1, 0])
    }
}
