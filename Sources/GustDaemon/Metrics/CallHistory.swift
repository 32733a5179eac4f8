import Foundation
import GustCore
import Synchronization

/// Each app's last hour, minute by minute, kept in memory for the console's
/// overview and charts: calls, errors (5xx), a latency histogram, and the
/// instances its pool had (sampled by `CallHistorySampler`). Counted whether or
/// not `--metrics` is on; a restart starts it afresh.
///
/// Memory is bounded: a fixed ring of `minutesKept` slots per app (a slot is
/// reused when its minute comes round again), for the apps gustd serves.
final class CallHistory: Sendable {
    static let minutesKept = 60

    /// Latency bucket `i` holds calls of at most `bound(i)` ms: 1 ms × 2^(i/3), so each
    /// bucket is 26% wider than the one before (1 ms … about 2 minutes, then the last catches the rest).
    static let latencyBuckets = 52
    static func bound(_ bucket: Int) -> Double { pow(2, Double(bucket) / 3) }

    /// One minute of one app.
    struct Minute: Sendable {
        /// The minute (seconds since 1970 / 60) this slot holds; another means the slot is stale.
        var stamp = Int.min
        var calls = 0
        var errors = 0
        var latency = [UInt32](repeating: 0, count: CallHistory.latencyBuckets)
        /// The most instances seen in the minute, by state.
        var starting = 0
        var idle = 0
        var busy = 0
        var sampled = false
    }

    /// What the console reads of a minute.
    struct Summary: Sendable, Equatable {
        var calls = 0
        var errors = 0
        /// Milliseconds, or nil for a minute without calls.
        var p50: Double?
        var p95: Double?
        var p99: Double?
        var starting = 0
        var idle = 0
        var busy = 0
    }

    private let rings = Mutex<[AppName: [Minute]]>([:])

    /// Counts a call that ended with `status` after `duration` (5xx counts as an error).
    func record(_ app: AppName, status: Int, duration: Duration, at now: Date = Date()) {
        let minute = Self.minute(of: now)
        let bucket = Self.bucket(milliseconds: duration.seconds * 1000)
        update(app, minute) { slot in
            slot.calls += 1
            if status >= 500 { slot.errors += 1 }
            slot.latency[bucket] &+= 1
        }
    }

    /// Notes the pool's instances now; a minute keeps the most it saw of each state.
    func sample(_ app: AppName, starting: Int, idle: Int, busy: Int, at now: Date = Date()) {
        update(app, Self.minute(of: now)) { slot in
            slot.starting = max(slot.starting, starting)
            slot.idle = max(slot.idle, idle)
            slot.busy = max(slot.busy, busy)
            slot.sampled = true
        }
    }

    /// The last `count` minutes (at most `minutesKept`), oldest first, this one last; minutes without data are zeros.
    func minutes(_ app: AppName, count: Int, at now: Date = Date()) -> [Summary] {
        let minute = Self.minute(of: now)
        let count = min(count, Self.minutesKept)
        let ring = rings.withLock { $0[app] }
        return ((minute - count + 1)...minute).map { stamp in
            guard let slot = ring?[Self.index(stamp)], slot.stamp == stamp else { return Summary() }
            return Summary(
                calls: slot.calls, errors: slot.errors,
                p50: Self.percentile(0.50, of: slot.latency), p95: Self.percentile(0.95, of: slot.latency),
                p99: Self.percentile(0.99, of: slot.latency), starting: slot.starting, idle: slot.idle, busy: slot.busy
            )
        }
    }

    func forget(_ app: AppName) {
        _ = rings.withLock { $0.removeValue(forKey: app) }
    }

    /// In place under the lock: no copy of the ring on the call path.
    private func update(_ app: AppName, _ minute: Int, _ change: (inout Minute) -> Void) {
        rings.withLock { all in
            if all[app] == nil { all[app] = [Minute](repeating: Minute(), count: Self.minutesKept) }
            let index = Self.index(minute)
            if all[app]![index].stamp != minute { all[app]![index] = Minute(stamp: minute) }
            change(&all[app]![index])
        }
    }

    static func bucket(milliseconds: Double) -> Int {
        guard milliseconds > 1 else { return 0 }
        return min(Int((3 * log2(milliseconds)).rounded(.up)), latencyBuckets - 1)
    }

    /// The bound of the bucket that holds the `quantile`th call (at most 26% above the true value), or nil without calls.
    static func percentile(_ quantile: Double, of buckets: [UInt32]) -> Double? {
        let total = buckets.reduce(0) { $0 + Int($1) }
        guard total > 0 else { return nil }
        let rank = Int((quantile * Double(total)).rounded(.up))
        var seen = 0
        for (index, count) in buckets.enumerated() {
            seen += Int(count)
            if seen >= max(rank, 1) { return bound(index) }
        }
        return bound(latencyBuckets - 1)
    }

    private static func minute(of date: Date) -> Int { Int((date.timeIntervalSince1970 / 60).rounded(.down)) }
    private static func index(_ minute: Int) -> Int { ((minute % minutesKept) + minutesKept) % minutesKept }
}
