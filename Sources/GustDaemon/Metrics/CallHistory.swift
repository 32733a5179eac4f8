import Foundation
import GustCore
import Synchronization

/// Each app's last hour, minute by minute, kept in memory for the console's
/// overview and charts: calls, errors (5xx), a latency histogram, and the
/// instances its pool had (sampled by `CallHistorySampler`). Counted whether or
/// not `--metrics` is on; a restart starts it afresh.
///
/// Memory is bounded: a fixed ring of `minutesKept` slots per app (a slot is
/// reused when its minute comes round again), for the apps gustd serves; and
/// the same ring per function of an app (its `function` metric label, so one
/// per declared op, handler, schedule or hook, and `other`), at most
/// `functionsKept` per app: a function beyond that (once none of the kept ones
/// is an hour quiet) is counted as `other` of its kind.
final class CallHistory: Sendable {
    static let minutesKept = 60
    static let functionsKept = 32

    /// A function of an app, as the metrics label it: an op `charge`, a handler `/hook`, a schedule `nightly`, a hook `before_save cat`.
    struct Function: Hashable, Sendable {
        var kind: CallKind
        var name: String
    }

    /// One function's last minutes, oldest first.
    struct FunctionSeries: Sendable, Equatable {
        var function: Function
        var minutes: [Summary]
    }

    /// An app's rings: its own, and one per function.
    private struct AppRings {
        var minutes = [Minute](repeating: Minute(), count: CallHistory.minutesKept)
        var functions: [Function: [Minute]] = [:]
    }

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

    private let rings = Mutex<[AppName: AppRings]>([:])

    /// Counts a call that ended with `status` after `duration` (5xx counts as an error), for the app
    /// (ops and handlers: the calls made to it) and for `function`, if given (every kind).
    func record(_ app: AppName, function: Function? = nil, status: Int, duration: Duration, at now: Date = Date()) {
        let minute = Self.minute(of: now)
        let bucket = Self.bucket(milliseconds: duration.seconds * 1000)
        let count: (inout Minute) -> Void = { slot in
            slot.calls += 1
            if status >= 500 { slot.errors += 1 }
            slot.latency[bucket] &+= 1
        }
        rings.withLock { all in
            if all[app] == nil { all[app] = AppRings() }
            if function.map({ $0.kind == .op || $0.kind == .handler }) ?? true {
                Self.update(&all[app]!.minutes, minute, count)
            }
            guard let function else { return }
            let key = Self.kept(function, in: &all[app]!.functions, at: minute)
            if all[app]!.functions[key] == nil {
                all[app]!.functions[key] = [Minute](repeating: Minute(), count: Self.minutesKept)
            }
            Self.update(&all[app]!.functions[key]!, minute, count)
        }
    }

    /// `function`, or `other` of its kind when the app already keeps `functionsKept` others (after dropping those an hour quiet).
    private static func kept(_ function: Function, in functions: inout [Function: [Minute]], at minute: Int) -> Function {
        guard functions[function] == nil, functions.count >= functionsKept else { return function }
        functions = functions.filter { _, ring in ring.contains { $0.stamp > minute - minutesKept } }
        return functions.count >= functionsKept ? Function(kind: function.kind, name: FunctionLabel.other) : function
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
        let ring = rings.withLock { $0[app]?.minutes }
        return Self.summaries(ring, last: count, to: minute)
    }

    /// Each function of the app with a call in the last `count` minutes (at most `minutesKept`), its minutes oldest
    /// first; the busiest (most calls in those minutes) first, then by kind and name.
    func functions(_ app: AppName, count: Int, at now: Date = Date()) -> [FunctionSeries] {
        let minute = Self.minute(of: now)
        let count = min(count, Self.minutesKept)
        let functions = rings.withLock { $0[app]?.functions } ?? [:]
        let series = functions.map { function, ring in FunctionSeries(function: function, minutes: Self.summaries(ring, last: count, to: minute)) }
            .map { (series: $0, calls: $0.minutes.reduce(0) { $0 + $1.calls }) }
            .filter { $0.calls > 0 }
        return series.sorted { a, b in
            a.calls != b.calls ? a.calls > b.calls
                : (a.series.function.kind.rawValue, a.series.function.name) < (b.series.function.kind.rawValue, b.series.function.name)
        }.map(\.series)
    }

    func forget(_ app: AppName) {
        _ = rings.withLock { $0.removeValue(forKey: app) }
    }

    private func update(_ app: AppName, _ minute: Int, _ change: (inout Minute) -> Void) {
        rings.withLock { all in
            if all[app] == nil { all[app] = AppRings() }
            Self.update(&all[app]!.minutes, minute, change)
        }
    }

    /// In place under the lock: no copy of the ring on the call path.
    private static func update(_ ring: inout [Minute], _ minute: Int, _ change: (inout Minute) -> Void) {
        let index = Self.index(minute)
        if ring[index].stamp != minute { ring[index] = Minute(stamp: minute) }
        change(&ring[index])
    }

    private static func summaries(_ ring: [Minute]?, last count: Int, to minute: Int) -> [Summary] {
        ((minute - count + 1)...minute).map { stamp in
            guard let slot = ring?[Self.index(stamp)], slot.stamp == stamp else { return Summary() }
            return Summary(
                calls: slot.calls, errors: slot.errors,
                p50: Self.percentile(0.50, of: slot.latency), p95: Self.percentile(0.95, of: slot.latency),
                p99: Self.percentile(0.99, of: slot.latency), starting: slot.starting, idle: slot.idle, busy: slot.busy
            )
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
