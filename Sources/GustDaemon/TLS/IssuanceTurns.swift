import GustCore

/// Which domain the one issuing loop asks the CA for next, fairly between apps and within what
/// the ACME account every app shares can spend: each app may start `ordersPerHour` orders an
/// hour, apps take turns (the one that waited longest first, not the first name in order), and a
/// name removed and added again comes back with its backoff rather than a clean slate.
///
/// Without it, an app's scoped key could loop `domains add` and `domains remove` on names that
/// fail at once: every add was a new name, due at once, and the CA's order limit for the account
/// (Let's Encrypt: 300 new orders in 3 hours) ran out for every app's new names and renewals; names
/// sorting first held the loop ahead of everyone else's.
struct IssuanceTurns {
    static let ordersPerHour = 12
    /// How long a removed name's backoff is kept for when it comes back.
    static let rememberRemoved: Duration = .seconds(24 * 3600)
    /// Removed names remembered at most (the oldest forgotten first).
    static let maxRemembered = 5_000

    /// The backoff of a name as it was when it was removed.
    struct Backoff {
        var failures: Int
        var retryAt: ContinuousClock.Instant?
        var lastRequested: ContinuousClock.Instant?
        var removedAt: ContinuousClock.Instant
    }

    private var starts: [AppName: [ContinuousClock.Instant]] = [:]
    private var lastTurn: [AppName: ContinuousClock.Instant] = [:]
    private var removed: [DomainName: Backoff] = [:]

    /// Of `due` (names and their apps, each due now), the one to ask for: of the apps under their
    /// budget, the one whose last turn was longest ago (never first), its first name.
    mutating func next(of due: [(name: DomainName, app: AppName)], now: ContinuousClock.Instant) -> DomainName? {
        let hourAgo = now - .seconds(3600)
        for app in Set(due.map(\.app)) { starts[app]?.removeAll { $0 <= hourAgo } }
        let open = due.filter { (starts[$0.app]?.count ?? 0) < Self.ordersPerHour }
        let chosen = open.min { a, b in
            switch (lastTurn[a.app], lastTurn[b.app]) {
            case (nil, nil): return a.name.rawValue < b.name.rawValue
            case (nil, _): return true
            case (_, nil): return false
            case let (x?, y?): return x != y ? x < y : a.name.rawValue < b.name.rawValue
            }
        }
        guard let chosen else { return nil }
        starts[chosen.app, default: []].append(now)
        lastTurn[chosen.app] = now
        return chosen.name
    }

    /// Keeps a removed name's backoff, for `restore` should it be added again.
    mutating func remember(_ name: DomainName, _ backoff: Backoff) {
        removed[name] = backoff
        if removed.count > Self.maxRemembered, let oldest = removed.min(by: { $0.value.removedAt < $1.value.removedAt })?.key {
            removed[oldest] = nil
        }
    }

    /// The backoff `name` had when it was removed, if within `rememberRemoved`; forgotten then.
    mutating func restore(_ name: DomainName, now: ContinuousClock.Instant) -> Backoff? {
        guard let backoff = removed.removeValue(forKey: name), now - backoff.removedAt < Self.rememberRemoved else { return nil }
        return backoff
    }
}
