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

/// Per function: each op, handler, schedule and hook gets its own ring; only
/// ops and handlers count as calls to the app; at most `functionsKept`
/// functions per app, the rest folded into `other` of their kind.
@Suite struct FunctionHistoryTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func eachFunctionHasItsOwnMinutesBusiestFirst() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        let charge = CallHistory.Function(kind: .op, name: "charge")
        let hook = CallHistory.Function(kind: .handler, name: "/hook")
        for _ in 0..<3 { history.record(cats, function: charge, status: 200, duration: .milliseconds(10), at: start) }
        history.record(cats, function: charge, status: 500, duration: .milliseconds(100), at: start.addingTimeInterval(60))
        history.record(cats, function: hook, status: 200, duration: .seconds(1), at: start.addingTimeInterval(60))
        let now = start.addingTimeInterval(61)
        let functions = history.functions(cats, count: 3, at: now)
        #expect(functions.map(\.function) == [charge, hook])
        #expect(functions[0].minutes.map(\.calls) == [0, 3, 1])
        #expect(functions[0].minutes.map(\.errors) == [0, 0, 1])
        let p50 = try #require(functions[0].minutes[1].p50), slow = try #require(functions[1].minutes[2].p99)
        #expect(p50 >= 10 && p50 < 10 * 1.26)
        #expect(slow >= 1000 && slow < 1000 * 1.26)
        #expect(functions[0].minutes[0].p50 == nil)
        // The app's own minutes count both (one call each, not twice).
        #expect(history.minutes(cats, count: 3, at: now).map(\.calls) == [0, 3, 2])
        // A function without calls in the window is left out.
        #expect(history.functions(cats, count: 1, at: start.addingTimeInterval(125)).isEmpty)
    }

    @Test func schedulesAndHooksAreFunctionsButNotCallsToTheApp() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        history.record(cats, function: .init(kind: .schedule, name: "nightly"), status: 500, duration: .seconds(2), at: start)
        history.record(cats, function: .init(kind: .hook, name: "before_save cat"), status: 200, duration: .milliseconds(3), at: start)
        #expect(history.minutes(cats, count: 1, at: start).map(\.calls) == [0])
        #expect(Set(history.functions(cats, count: 1, at: start).map(\.function.kind)) == [.schedule, .hook])
    }

    @Test func functionsPerAppAreCappedAndTheRestAreOther() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        for index in 0..<(CallHistory.functionsKept + 5) {
            history.record(cats, function: .init(kind: .op, name: "op\(index)"), status: 200, duration: .milliseconds(1), at: start)
        }
        let functions = history.functions(cats, count: 1, at: start)
        #expect(functions.count == CallHistory.functionsKept + 1)
        let other = try #require(functions.first { $0.function.name == FunctionLabel.other })
        #expect(other.minutes.map(\.calls) == [5])
        #expect(!functions.contains { $0.function.name == "op\(CallHistory.functionsKept)" })
        // An hour later the quiet ones make room: a new function gets its own ring again.
        let later = start.addingTimeInterval(Double(CallHistory.minutesKept) * 60)
        history.record(cats, function: .init(kind: .op, name: "fresh"), status: 200, duration: .milliseconds(1), at: later)
        #expect(history.functions(cats, count: 1, at: later).map(\.function.name) == ["fresh"])
        history.forget(cats)
        #expect(history.functions(cats, count: 1, at: later).isEmpty)
    }
}
