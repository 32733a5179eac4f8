#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A stack build asked to stop (Ctrl-C, SIGTERM, a dropped SSH session at the `gust` that runs it).
/// mmdebstrap runs in a session of its own, so no terminal signal reaches it: `interrupt` sends it
/// SIGTERM itself, on which it takes down what it mounted in the new root and exits, and the build
/// goes on reading its output until it has, then fails saying so. Not task cancellation: that would
/// stop reading mmdebstrap's output while it cleans up, and `gust` could exit before it had.
public final class StackBuildInterruption: Sendable {
    private struct State {
        var interrupted = false
        /// The running mmdebstrap's process group (it leads a session of its own), if one runs.
        var group: Int32?
    }

    private let state = Mutex(State())

    public init() {}

    public var isInterrupted: Bool { state.withLock { $0.interrupted } }

    /// Marks the build interrupted, and stops mmdebstrap if it runs.
    public func interrupt() {
        let group = state.withLock { state in
            state.interrupted = true
            return state.group
        }
        if let group { kill(-group, SIGTERM) }
    }

    /// mmdebstrap started as `group`; stopped at once if the build was interrupted before.
    func started(_ group: Int32) {
        let interrupted = state.withLock { state in
            state.group = group
            return state.interrupted
        }
        if interrupted { kill(-group, SIGTERM) }
    }

    func ended() {
        state.withLock { $0.group = nil }
    }
}
