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
            guard let address = channel.remoteAddress else { return channel.eventLoop.makeSucceededFuture(true) }
            return channel.eventLoop.makeSucceededFuture(admit(channel, address: address))
        case .uids:
            return PeerCredentials.of(channel).map { [self] peer in peer.map { admit(channel, peer: .uid($0.uid)) } ?? true }
        }
    }

    /// A TCP client's connection: a trusted proxy (`exempt`) by its own address, anyone else counted
    /// against `peer(of:)`'s share.
    func admit(_ channel: any Channel, address: SocketAddress) -> Bool {
        if let exact = address.ipAddress, exempt.contains(.address(exact)) { return true }
        guard let peer = Self.peer(of: address) else { return true }
        return admit(channel, peer: peer)
    }

    /// Whom a client's connection counts against: an IPv4 address (an IPv4-mapped IPv6 one as that
    /// IPv4), or an IPv6 address's /64, the least a host gets, so that one client is one share
    /// whichever of its addresses it connects from (counted by address, a /64 was 2^64 shares).
    static func peer(of address: SocketAddress) -> Peer? {
        switch address {
        case .v4:
            return address.ipAddress.map { .address($0) }
        case .v6:
            var bytes = [UInt8](repeating: 0, count: 16)
            guard let text = address.ipAddress, inet_pton(AF_INET6, text, &bytes) == 1 else { return nil }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                return .address(bytes[12...].map(String.init).joined(separator: "."))
            }
            let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            return .address(groups.joined(separator: ":") + "::/64")
        case .unixDomainSocket:
            return nil
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
                if warn {
                    // Peers warned about more than 10 s ago are warned about again anyway: forgotten,
                    // so that the table holds the peers of the last 10 s, not every one since the start.
                    if state.warned.count >= 1024 { state.warned = state.warned.filter { now - $0.value <= .seconds(10) } }
                    state.warned[peer] = now
                }
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
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0

    /// The credentials of the process at the other end of a Unix-domain `channel` (as it
    /// connected, in gustd's user namespace); nil where the channel cannot say.
    static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        return credentials.map { Optional($0) }.recover { _ in nil }
    }
}
