import Foundation

/// When an app's live release may be started again after it failed to start.
///
/// Without it a release that cannot start (an exception at import, a bad
/// artifact) is started again by every request: a process per request, and
/// callers waiting for a start that cannot succeed. After each failed start
/// the next one waits twice as long (1 s, 2 s, 4 s … at most 60 s); a
/// successful start, or another release going live, starts the count again.
struct StartBackoff: Sendable {
    static let first: Duration = .seconds(1)
    static let limit: Duration = .seconds(60)

    /// Failed starts in a row.
    private(set) var failures = 0
    /// Why the last start failed.
    private(set) var lastError: String?
    private var retryAt: ContinuousClock.Instant?

    var isCrashing: Bool { failures > 0 }

    /// Records a failed start; returns how long the next one waits.
    mutating func failed(_ error: String, at now: ContinuousClock.Instant = .now) -> Duration {
        failures += 1
        lastError = error
        let delay = Self.delay(afterFailures: failures)
        retryAt = now + delay
        return delay
    }

    mutating func succeeded() { self = StartBackoff() }

    /// How long until a start may be tried, or nil if it may be now.
    func remaining(at now: ContinuousClock.Instant = .now) -> Duration? {
        guard let retryAt, retryAt > now else { return nil }
        return retryAt - now
    }

    static func delay(afterFailures failures: Int) -> Duration {
        let doublings = min(max(failures - 1, 0), 6)  // 2^6 s is past the limit already
        return min(first * (1 << doublings), limit)
    }
}

/// A start refused or failed while an app is crashing: the gateway answers
/// 503 with `Retry-After`, so callers (and proxies) wait instead of hammering.
struct AppCrashing: Error, Sendable, CustomStringConvertible {
    var message: String
    /// Whole seconds, at least 1.
    var retryAfter: Int

    init(app: String, version: Int, backoff: StartBackoff, wait: Duration) {
        retryAfter = max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
        message = "\(app) v\(version) is crashing: it could not start (\(backoff.lastError ?? "unknown error")); "
            + "the next start is in \(retryAfter) s. See `gust logs \(app)`."
    }

    var description: String { message }
}
