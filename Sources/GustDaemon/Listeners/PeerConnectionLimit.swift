#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// How many connections one peer may hold on a Unix-domain listener: the
/// records channel, which every sandboxed instance reaches, each app as a host
/// uid of its own. The `ConnectionBudget` keeps gustd's descriptor reserve from
/// all clients together; this keeps one app from taking the whole budget, and
/// so from holding up the other apps' records and gustd's HTTP listeners
/// (which share the budget). The peer is told apart by its uid
/// (`SO_PEERCRED`): a connection past its uid's share is closed as soon as it
/// is accepted. gustd's own uid (instances run unsandboxed, or sandboxed
/// without a subordinate range) has no share of its own: those instances
/// could take gustd's descriptors by other means anyway.
final class PeerConnectionLimit: Sendable {
    private struct State {
        var open: [UInt32: Int] = [:]
        /// When each peer was last said to be at its share, so that a peer at it is logged every so often, not per connection.
        var warned: [UInt32: ContinuousClock.Instant] = [:]
    }

    private let name: String
    private let budget: ConnectionBudget
    private let exempt: UInt32
    private let logger: Logger
    private let state = Mutex(State())

    init(name: String, budget: ConnectionBudget, exempt: UInt32 = getuid(), logger: Logger) {
        self.name = name
        self.budget = budget
        self.exempt = exempt
        self.logger = logger
    }

    /// One peer's share of the budget: a quarter of it, from 8 to 128 connections (each records
    /// call holds one for its length; an app makes as many at once as it has calls in flight).
    static func share(of capacity: Int) -> Int { min(128, max(8, capacity / 4)) }

    var share: Int { Self.share(of: budget.capacity) }

    /// Counts `channel` against its peer's share until it closes; false (nothing counted) when the
    /// peer already holds its share, and the caller closes it.
    func admit(_ channel: any Channel) -> EventLoopFuture<Bool> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(true) }
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        return credentials.map { [self] peer in admit(channel, uid: peer.uid) }.recover { _ in true }
    }

    /// The bookkeeping of `admit`, apart from the socket (unit tests).
    func admit(_ channel: any Channel, uid: UInt32) -> Bool {
        guard uid != exempt else { return true }
        let share = self.share
        let (admitted, held, warn) = state.withLock { state -> (Bool, Int, Bool) in
            let held = state.open[uid, default: 0]
            guard held < share else {
                let now = ContinuousClock.now
                let warn = state.warned[uid].map { now - $0 > .seconds(10) } ?? true
                if warn { state.warned[uid] = now }
                return (false, held, warn)
            }
            state.open[uid] = held + 1
            return (true, held + 1, false)
        }
        if warn {
            logger.warning(
                "gustd's \(name) holds \(held) connections from uid \(uid) (one app's instances), the most one peer may (a quarter of gustd's client connections, 8 to 128): its further connections are closed until some of these close"
            )
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                let left = state.open[uid, default: 1] - 1
                state.open[uid] = left > 0 ? left : nil
            }
        }
        return true
    }

    /// The connections `uid` holds now.
    func connections(of uid: UInt32) -> Int { state.withLock { $0.open[uid, default: 0] } }
}

/// `struct ucred` (SO_PEERCRED), which Glibc's module leaves out (it is `_GNU_SOURCE`'s).
private struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
