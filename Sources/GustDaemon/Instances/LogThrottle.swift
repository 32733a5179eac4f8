import Foundation
import GustCore
import Synchronization

/// Bounds how fast one app fills its log: a token bucket of `bytesPerSecond`
/// (one second's worth of burst) shared by every instance of the app. Lines
/// past it are dropped, counted, and noted in the log where they were
/// (`… 1234 lines dropped: over 1 MB/s`) when the next line gets through or
/// the instance ends, so a reader of `gust logs` sees the gap. Logic only, the
/// clock passed in: unit-tested without sleeps.
final class LogThrottle: Sendable {
    /// What a line costs at least: about what its entry takes in the log (the JSON around the text is
    /// some 120 bytes) and what gustd spends on it. Charged its own length alone, an empty line cost
    /// 1 byte, and an app printing newlines had about a million entries a second written under the
    /// default 1 MB/s (116 times the bytes on disk, and seconds of gustd's CPU each second).
    static let leastLineCost = 128

    let bytesPerSecond: Int
    private let state: Mutex<State>

    private struct State {
        var budget: Double
        var last: ContinuousClock.Instant
        var dropped = 0
    }

    init(bytesPerSecond: Int, now: ContinuousClock.Instant = .now) {
        self.bytesPerSecond = bytesPerSecond
        state = Mutex(State(budget: Double(bytesPerSecond), last: now))
    }

    /// The lines that may be written now, preceded by a note of those dropped before them, if any.
    func admit(_ lines: [String], now: ContinuousClock.Instant = .now) -> (kept: [String], droppedBefore: Int) {
        state.withLock { state in
            refill(&state, now: now)
            var kept: [String] = []
            var droppedBefore = 0
            for line in lines {
                let cost = Double(Self.cost(ofLine: line.utf8.count))
                if state.budget >= cost {
                    state.budget -= cost
                    if kept.isEmpty, state.dropped > 0 {
                        droppedBefore = state.dropped
                        state.dropped = 0
                    }
                    kept.append(line)
                } else {
                    state.dropped += 1
                }
            }
            return (kept, droppedBefore)
        }
    }

    /// What a line of `length` bytes (without its newline) costs of the budget.
    static func cost(ofLine length: Int) -> Int { max(length + 1, leastLineCost) }

    /// How many bytes of lines could be written now: an instance's reader makes no line that costs
    /// more than is left (`InstanceProcess.gateOutput`), and only counts it (`drop`).
    func available(now: ContinuousClock.Instant = .now) -> Int {
        state.withLock { state in
            refill(&state, now: now)
            return Int(state.budget)
        }
    }

    /// Counts `count` lines dropped unread (`available`), noted with the others.
    func drop(_ count: Int) {
        state.withLock { $0.dropped += count }
    }

    private func refill(_ state: inout State, now: ContinuousClock.Instant) {
        let elapsed = now - state.last
        state.last = now
        let rate = Double(bytesPerSecond)
        state.budget = min(rate, state.budget + rate * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    }

    /// Lines dropped and not yet noted (the instance ended before another line got through).
    func takeDropped() -> Int {
        state.withLock { state in
            defer { state.dropped = 0 }
            return state.dropped
        }
    }

    /// `… 1234 lines dropped: over 1 MB/s`
    func note(_ count: Int) -> String {
        "… \(count) line\(count == 1 ? "" : "s") dropped: over \(LimitSize.spoken(bytesPerSecond))/s"
    }
}

/// One `LogThrottle` per app, for all of gustd: instances of every release of an app share it.
final class LogThrottles: Sendable {
    private let bytesPerSecond: Int
    private let throttles = Mutex<[AppName: LogThrottle]>([:])

    init(bytesPerSecond: Int) { self.bytesPerSecond = bytesPerSecond }

    func throttle(for app: AppName) -> LogThrottle {
        throttles.withLock { throttles in
            if let throttle = throttles[app] { return throttle }
            let made = LogThrottle(bytesPerSecond: bytesPerSecond)
            throttles[app] = made
            return made
        }
    }
}
