/// The decisions about one release's zygote, apart from the processes:
/// whether instances are forked or started on their own (bypassed), and
/// when a zygote with no instance left has been idle long enough to stop.
///
/// Pure, so unit tests drive it with instants of their choosing; `ReleaseZygote`
/// applies it to a real zygote.
struct ZygoteLifecycle: Sendable, Equatable {
    /// Forks that failed in a row (the zygote died, or answered no fork) before
    /// the release's instances are started without it: a broken zygote costs a
    /// few slow starts, never a wedged pool.
    static let failuresBeforeBypass = 3

    /// Why instances of this release are started on their own, once they are.
    private(set) var bypassed: String?
    /// Whether a zygote is resident (started and not known to have exited).
    private(set) var isResident = false
    /// Instances forked and not yet exited (of this zygote or an earlier one).
    private(set) var forks = 0
    private(set) var failuresInARow = 0
    /// Since when nothing forked runs while the zygote is resident.
    private var idleSince: ContinuousClock.Instant?

    /// Whether a launch asks a zygote (starting one if none is resident).
    var forksInstances: Bool { bypassed == nil }

    /// A zygote has started and said it can be forked.
    mutating func started(now: ContinuousClock.Instant) {
        isResident = true
        idleSince = forks == 0 ? now : nil
    }

    /// The zygote could not be forked (a thread or socket opened at import):
    /// this release's instances start on their own from now on.
    mutating func unforkable(_ reason: String) {
        bypassed = reason
        isResident = false
        idleSince = nil
    }

    mutating func forked() {
        forks += 1
        failuresInARow = 0
        idleSince = nil
    }

    mutating func forkExited(now: ContinuousClock.Instant) {
        forks = max(forks - 1, 0)
        if forks == 0, isResident { idleSince = now }
    }

    /// A fork was asked for and none came. Returns true when this failure
    /// makes the release bypass its zygote.
    mutating func forkFailed(_ message: String) -> Bool {
        failuresInARow += 1
        guard failuresInARow >= Self.failuresBeforeBypass, bypassed == nil else { return false }
        bypassed = "its zygote failed \(failuresInARow) times in a row (last: \(message))"
        return true
    }

    /// The zygote exited (stopped by gustd, or crashed): the next launch starts another.
    mutating func zygoteExited() {
        isResident = false
        idleSince = nil
    }

    /// When the resident zygote is due to stop: `zygoteIdle` after its last fork exited (or
    /// after it started, if it never forked); nil while a fork runs or no zygote is resident.
    func stopDue(zygoteIdle: Duration) -> ContinuousClock.Instant? {
        guard isResident, forks == 0, let idleSince else { return nil }
        return idleSince + zygoteIdle
    }

    /// A release's zygote-idle, derived from its pool's `idle` (`gust scale --idle`) rather than
    /// set on its own: four times as long (20 minutes for the standard 5). Instances come and go
    /// with the calls; the zygote is what keeps the next start after scale to zero a fork, and
    /// it costs about one instance's memory, so it stays longer.
    static func zygoteIdle(forIdle idle: Duration) -> Duration {
        idle * 4
    }
}
