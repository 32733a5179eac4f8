import Foundation
import GustCore
@testable import GustDaemon
import Testing

/// The console's per-minute call history: counts per minute, errors are 5xx, old minutes go.
@Suite struct CallHistoryTests {
    @Test func callsAndErrorsArePerMinuteOldestFirst() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        let start = Date(timeIntervalSince1970: 1_800_000_000)  // a minute's start
        history.record(cats, status: 200, at: start)
        history.record(cats, status: 503, at: start.addingTimeInterval(10))
        history.record(cats, status: 404, at: start.addingTimeInterval(70))
        let minutes = history.minutes(cats, count: 3, at: start.addingTimeInterval(70))
        #expect(minutes.map(\.calls) == [0, 2, 1])
        #expect(minutes.map(\.errors) == [0, 1, 0])
        #expect(history.minutes(try AppName("dogs"), count: 2, at: start).map(\.calls) == [0, 0])
    }

    @Test func itKeepsAnHourAtMost() throws {
        let history = CallHistory()
        let cats = try AppName("cats")
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for minute in 0..<(CallHistory.minutesKept + 30) {
            history.record(cats, status: 200, at: start.addingTimeInterval(Double(minute) * 60))
        }
        let now = start.addingTimeInterval(Double(CallHistory.minutesKept + 29) * 60)
        let all = history.minutes(cats, count: CallHistory.minutesKept + 30, at: now)
        #expect(all.prefix(30).allSatisfy { $0.calls == 0 })
        #expect(all.suffix(CallHistory.minutesKept).allSatisfy { $0.calls == 1 })
    }
}
