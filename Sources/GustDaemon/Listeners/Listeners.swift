import Logging
import ServiceLifecycle
import Synchronization

/// Something that stops accepting and waits for its connections to close: a `SocketServer`.
protocol DrainableServer: Sendable {
    func shutdownGracefully() async
}

extension SocketServer: DrainableServer {}

/// gustd's TCP listeners, made at start (each socket inherited or bound), for
/// the services that outlive them: the handover gives their sockets to the
/// next gustd, and `ListenersFirst` closes them before the supervisor drains
/// when the sockets outlive this process.
final class Listeners: Sendable {
    private struct State {
        var servers: [(socket: ListeningSocket, server: any DrainableServer)] = []
        /// Whether the sockets stay open after this gustd exits: systemd's socket unit holds them,
        /// or a next gustd has them. Then this one stops accepting before it drains, and new
        /// connections wait in the socket for the next gustd instead of getting 503.
        var outliveThisGustd = false
    }

    private let state: Mutex<State>
    let inherited: InheritedSockets
    /// The client connections every listener together may hold (`ConnectionBudget`).
    let connectionBudget: ConnectionBudget
    /// What one client address may hold of them, on every TCP listener together; a trusted proxy
    /// (`--trusted-proxy`), whose connections carry everyone's calls, is not bounded.
    let addressLimit: PeerConnectionLimit

    init(
        inherited: InheritedSockets, fromSystemd: Bool, trustedProxies: [String] = [], budget: ConnectionBudget = ConnectionBudget(),
        logger: Logger
    ) {
        self.inherited = inherited
        state = Mutex(State(outliveThisGustd: fromSystemd))
        connectionBudget = budget
        addressLimit = PeerConnectionLimit(
            name: "TCP listeners", budget: budget, kind: .addresses, exempt: Set(trustedProxies.map { .address($0) }), logger: logger)
    }

    /// The socket called `name`: inherited, else bound to `host:port`.
    func socket(_ name: String, host: String, port: Int) throws -> ListeningSocket {
        try ListeningSocket.make(name, host: host, port: port, inherited: inherited)
    }

    func add(_ socket: ListeningSocket, served server: any DrainableServer) {
        state.withLock { $0.servers.append((socket, server)) }
    }

    var sockets: [ListeningSocket] { state.withLock { $0.servers.map(\.socket) } }

    /// The port the socket called `name` is bound to: known before its server runs, since gustd holds the socket.
    func port(of name: String) -> Int? {
        sockets.first { $0.name == name }?.port
    }

    var outliveThisGustd: Bool {
        get { state.withLock { $0.outliveThisGustd } }
        set { state.withLock { $0.outliveThisGustd = newValue } }
    }

    /// Every listener stops accepting; returns once their connections (requests in progress
    /// answered, idle keep-alive ones closed) have all closed.
    func drain() async {
        let servers = state.withLock { $0.servers.map(\.server) }
        await withDiscardingTaskGroup { group in
            for server in servers { group.addTask { await server.shutdownGracefully() } }
        }
    }
}

/// Placed after the supervisor's service, so that the group (which shuts down in
/// reverse) tells it first: when the listening sockets outlive this gustd, the
/// listeners stop accepting and finish their requests before the supervisor
/// drains, so no call gets the supervisor's 503; otherwise it does nothing and
/// a stop is as before (waiting calls get 503, calls in flight finish).
struct ListenersFirst: Service {
    let listeners: Listeners
    /// Before the listeners drain: what holds a connection for as long as its client likes (an open
    /// WebSocket, closed 1001) lets go, or the drain would wait for it up to the shutdown bound.
    let beforeDraining: @Sendable () async -> Void
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        guard listeners.outliveThisGustd else { return }
        logger.notice("gustd stops accepting (its listening sockets stay open for the next gustd) and finishes the requests in progress")
        await beforeDraining()
        await listeners.drain()
    }
}
