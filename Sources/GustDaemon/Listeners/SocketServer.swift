#if canImport(Glibc)
import Glibc
#endif
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// HummingbirdCore's `Server`, serving a `ListeningSocket` gustd already holds
/// instead of binding one itself (Hummingbird 2 binds only by address, which
/// no next gustd could take over). The same child channels (`HTTP1Channel`,
/// `TLSChannel`), the same quiescing: on graceful shutdown it stops accepting,
/// lets the requests in progress finish, closes idle keep-alive connections,
/// and returns once every connection has closed.
actor SocketServer<ChildChannel: ServerChildChannel>: Service {
    private enum State {
        case initial
        case running(channel: any Channel)
        case shuttingDown(EventLoopPromise<Void>)
        case shutdown
    }

    private let childChannel: ChildChannel
    private let socket: ListeningSocket
    private let onServerRunning: @Sendable (any Channel) async -> Void
    private let group: any EventLoopGroup
    private let budget: ConnectionBudget
    /// A Unix-domain listener's bound on each peer's connections (`PeerConnectionLimit`); none for TCP.
    private let peerLimit: PeerConnectionLimit?
    private let logger: Logger
    private let connections = Connections()
    private var state = State.initial

    init(
        childChannel: ChildChannel, socket: ListeningSocket, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        budget: ConnectionBudget, peerLimit: PeerConnectionLimit? = nil, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void
    ) {
        self.childChannel = childChannel
        self.socket = socket
        self.group = group
        self.budget = budget
        self.peerLimit = peerLimit
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    func run() async throws {
        guard case .initial = state else { return }
        let (childChannel, logger, connections, budget, name) = (self.childChannel, self.logger, self.connections, self.budget, socket.name)
        let peerLimit = self.peerLimit
        let server = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptGate(budget: budget, name: name, logger: logger))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .bind(socket.descriptor) { channel in
                // Counted once its pipeline is whole: a quiesce fired into a pipeline still being set up
                // passes by the handlers that act on it, and the connection then held the old gustd's
                // shutdown for its whole timeout (seen in UpgradeTests under load). `add` after a quiesce
                // began tells the connection at once.
                let setUp = childChannel.setup(channel: channel, logger: logger).map { value in
                    connections.add(channel)
                    return value
                }
                guard let peerLimit else { return setUp }
                // A peer past its share is closed at once (the connection still goes to `handle`, which
                // finds it closed): a failed initializer would end the listener's stream of connections.
                return setUp.flatMap { value in
                    peerLimit.admit(channel).map { admitted in
                        if !admitted { channel.close(promise: nil) }
                        return value
                    }
                }
            }
        // NIO listens again on a socket it is given, with its default backlog of 128: the queue that
        // holds connections while one gustd hands over to the next is set back to the longest the
        // kernel allows (net.core.somaxconn; systemd's Backlog= in the socket units).
        _ = listen(socket.descriptor, 4096)
        guard case .initial = state else {  // shut down while binding
            try await server.channel.close()
            return
        }
        state = .running(channel: server.channel)
        await withGracefulShutdownHandler {
            await onServerRunning(server.channel)
            await withDiscardingTaskGroup { group in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await childChannel.handle(value: connection, logger: logger) }
                        }
                    }
                } catch {
                    logger.error("The \(socket.name) listener stopped accepting: \(error)")
                }
            }
        } onGracefulShutdown: {
            // As HummingbirdCore's `Server` does: the handler cannot wait; the task ends with the shutdown.
            Task { await self.shutdownGracefully() }
        }
        // Drained before the group's shutdown reached it (`ListenersFirst`): a service that returned
        // now would look to the group like one that failed.
        try? await gracefulShutdown()
    }

    /// Stops accepting, tells every connection to quiesce (`ChannelShouldQuiesceEvent`: HummingbirdCore's
    /// HTTP/1 handler closes it at once if idle, else after the response in progress) and waits until
    /// every connection has closed.
    func shutdownGracefully() async {
        switch state {
        case .initial:
            state = .shutdown
        case .running(let channel):
            let done = channel.eventLoop.makePromise(of: Void.self)
            state = .shuttingDown(done)
            try? await channel.close()
            await connections.quiesce()
            done.succeed()
            state = .shutdown
        case .shuttingDown(let done):
            try? await done.futureResult.get()
        case .shutdown:
            return
        }
    }
}

/// The connections a `SocketServer` has accepted, for its graceful shutdown (what
/// NIOExtras' `ServerQuiescingHelper` does for HummingbirdCore's `Server`). One
/// accepted after the shutdown began is told to quiesce as it is added.
private final class Connections: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    private let state = Mutex(State())

    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        let quiescing = state.withLock { state in
            state.open[key] = channel
            return state.quiescing
        }
        channel.closeFuture.whenComplete { [self] _ in state.withLock { _ = $0.open.removeValue(forKey: key) } }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    func quiesce() async {
        let open = state.withLock { state in
            state.quiescing = true
            return Array(state.open.values)
        }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        for channel in open { try? await channel.closeFuture.get() }
        // Any accepted meanwhile was told on arrival; wait for those too.
        while let channel = state.withLock({ $0.open.values.first }) { try? await channel.closeFuture.get() }
    }
}
