/// The scale rules of an app's pool (`gust scale APP`), kept in the store
/// across deploys and restarts.
struct PoolSettings: Equatable, Sendable {
    /// Instances kept running however quiet the app is; 0 is scale to zero.
    var min: Int
    /// Instances at most.
    var max: Int
    /// Calls one instance takes at once: 1 for Python (one thread of user code),
    /// more for Node, whose event loop interleaves calls that wait on I/O.
    var concurrency: Int
    /// How long an instance may stay idle before it is stopped (down to `min`).
    var idle: Duration
    /// Calls that may wait for an instance; past it, 503 with Retry-After.
    var queueLimit: Int
}
