#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// How many connections one peer may hold on gustd's listeners. On a Unix-domain
/// listener, the records channel, which every sandboxed instance reaches, each
/// app as a host uid of its own: the peer is told apart by its uid
/// (`SO_PEERCRED`). On the TCP listeners (HTTP, HTTPS, the console, metrics,
/// counted together), by the client's address. The `ConnectionBudget` keeps
/// gustd's descriptor reserve from all clients together; this keeps one app,
/// or one client address, from taking the whole budget, and so from holding up
/// everyone else: a connection past its peer's share is closed as soon as it is
/// accepted. gustd's own uid (instances run unsandboxed, or sandboxed without a
/// subordinate range) has no share of its own: those instances could take
/// gustd's descriptors by other means anyway; nor has a `--trusted-proxy`,
/// whose connections carry everyone's calls.
final class PeerConnectionLimit: Sendable {
    /// Whom a connection is counted against.
    enum Peer: Hashable, Sendable, CustomStringConvertible {
        case uid(UInt32)
        case address(String)

        var description: String {
            switch self {
            case .uid(let uid): "uid \(uid) (one app's instances)"
            case .address(let address): "client address \(address)"
            }
        }
    }

    /// How peers are told apart, and how large a share each has.
    enum Kind: Sendable {
        /// By uid, on a Unix-domain listener: `share(of:)`.
        case uids
        /// By client address, on the TCP listeners: `addressShare(of:)`.
        case addresses
    }

    private struct State {
        var open: [Peer: Int] = [:]
        /// When each peer was last said to be at its share, so that a peer at it is logged every so often, not per connection.
        var warned: [Peer: ContinuousClock.Instant] = [:]
    }

    private let name: String
    private let budget: ConnectionBudget
    private let kind: Kind
    private let exempt: Set<Peer>
    private let logger: Logger
    private let state = Mutex(State())

    init(name: String, budget: ConnectionBudget, kind: Kind, exempt: Set<Peer>, logger: Logger) {
        self.name = name
        self.budget = budget
        self.kind = kind
        self.exempt = exempt
        self.logger = logger
    }

    /// A Unix-domain listener's, with `exempt` (gustd's own uid) unbounded.
    convenience init(name: String, budget: ConnectionBudget, exempt: UInt32 = getuid(), logger: Logger) {
        self.init(name: name, budget: budget, kind: .uids, exempt: [.uid(exempt)], logger: logger)
    }

    /// One uid's share of the budget: a quarter of it, from 8 to 128 connections (each records
    /// call holds one for its length; an app makes as many at once as it has calls in flight).
    static func share(of capacity: Int) -> Int { min(128, max(8, capacity / 4)) }

    /// One client address's share: a quarter of the budget, from 64 to 1,024 connections. Enough
    /// for an office behind one NAT address (a browser opens up to six per server) and for a load
    /// test; far from all of gustd's, so that one address holding connections open (idle, or
    /// trickling a request head until the header timeout) leaves room for everyone else.
    static func addressShare(of capacity: Int) -> Int { min(1024, max(64, capacity / 4)) }

    var share: Int {
        switch kind {
        case .uids: Self.share(of: budget.capacity)
        case .addresses: Self.addressShare(of: budget.capacity)
        }
    }

    /// Counts `channel` against its peer's share until it closes; false (nothing counted) when the
    /// peer already holds its share, and the caller closes it.
    func admit(_ channel: any Channel) -> EventLoopFuture<Bool> {
        switch kind {
        case .addresses:
            guard let address = channel.remoteAddress?.ipAddress else { return channel.eventLoop.makeSucceededFuture(true) }
            return channel.eventLoop.makeSucceededFuture(admit(channel, peer: .address(address)))
        case .uids:
            guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(true) }
            let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
            return credentials.map { [self] peer in admit(channel, peer: .uid(peer.uid)) }.recover { _ in true }
        }
    }

    /// The bookkeeping of `admit`, apart from the socket (unit tests).
    func admit(_ channel: any Channel, uid: UInt32) -> Bool { admit(channel, peer: .uid(uid)) }

    func admit(_ channel: any Channel, peer: Peer) -> Bool {
        guard !exempt.contains(peer) else { return true }
        let share = self.share
        let (admitted, held, warn) = state.withLock { state -> (Bool, Int, Bool) in
            let held = state.open[peer, default: 0]
            guard held < share else {
                let now = ContinuousClock.now
                let warn = state.warned[peer].map { now - $0 > .seconds(10) } ?? true
                if warn { state.warned[peer] = now }
                return (false, held, warn)
            }
            state.open[peer] = held + 1
            return (true, held + 1, false)
        }
        if warn {
            let bound = switch kind {
            case .uids: "a quarter of gustd's client connections, 8 to 128"
            case .addresses: "a quarter of gustd's client connections, 64 to 1,024; a --trusted-proxy has no bound"
            }
            logger.warning(
                "gustd's \(name) holds \(held) connections from \(peer), the most one peer may (\(bound)): its further connections are closed until some of these close"
            )
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                let left = state.open[peer, default: 1] - 1
                state.open[peer] = left > 0 ? left : nil
            }
        }
        return true
    }

    /// The connections `peer` holds now.
    func connections(of peer: Peer) -> Int { state.withLock { $0.open[peer, default: 0] } }
    func connections(of uid: UInt32) -> Int { connections(of: .uid(uid)) }
}

/// `struct ucred` (SO_PEERCRED), which Glibc's module leaves out (it is `_GNU_SOURCE`'s).
private struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
