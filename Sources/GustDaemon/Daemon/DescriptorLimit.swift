#if canImport(Glibc)
import Glibc
#endif

/// gustd holds a descriptor for every client connection and several per
/// instance (its socket and two pipes), and systemd starts services with a
/// soft limit of 1,024, far below the hard limit. gustd raises its soft
/// limit to the hard one at start, so it runs out later, and says what it got.
enum DescriptorLimit {
    /// Linux refuses more than this (`fs.nr_open`'s default) even when the hard limit is unlimited.
    private static let ceiling: rlim_t = 1 << 20

    /// Raises the soft limit as far as the hard one allows; returns the soft limit now in force.
    static func raiseToHardLimit() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let wanted = min(limit.rlim_max, ceiling)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return UInt64(limit.rlim_cur)
    }
}
