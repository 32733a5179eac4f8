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
/// and returns once every connection has closed. Every connection accepted
/// before it stopped accepting is answered (`Connections`).
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
    /// The bound on each peer's connections (`PeerConnectionLimit`): by uid on a Unix-domain
    /// listener, by client address on a TCP one.
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
                    try channel.pipeline.syncOperations.addHandlers(
                        ListenerDrain(connections: connections), AcceptGate(budget: budget, name: name, logger: logger))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .bind(socket.descriptor) { channel in
                // Quiesced only once its pipeline is whole (`Connections.setUp`).
                let setUp = childChannel.setup(channel: channel, logger: logger).map { value in
                    connections.setUp(channel, value: value)
                    return value
                }
                // NIO drops a connection whose set-up failed without closing it; it would be waited for.
                setUp.whenFailure { _ in channel.close(promise: nil) }
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
                            connections.handling(connection.channel)
                            group.addTask { await childChannel.handle(value: connection, logger: logger) }
                        }
                    }
                } catch {
                    logger.error("The \(socket.name) listener stopped accepting: \(error)")
                }
                // Only if the listener closed otherwise than by the drain (an error): a connection NIO will
                // never hand over now is closed at once, not left to the drain's grace.
                connections.closeUnhandled()
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
            await connections.closeListener(channel)
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

/// The connections a `SocketServer` has accepted, from the accept to the close:
/// for its graceful shutdown (what NIOExtras' `ServerQuiescingHelper` does for
/// HummingbirdCore's `Server`), and for the listener's close. A connection is
/// accepted on the listener's event loop, set up on its own, and only then,
/// through the listener's pipeline, registered (so read) and handed to the
/// server's loop; one whose set-up finished after the listener closed was
/// neither: NIO dropped it, nothing read its request, the drain held it for
/// `QuiesceGate`'s `firstRequestGrace` and its client then saw a reset (seen in
/// UpgradeTests under load). So the drain first stops accepting, closes the
/// listener once no accepted connection waits to be handed over, and only then
/// tells every connection to quiesce (one set up after that is told at once).
/// It also holds each set-up connection's value until the connection is handed
/// over or closed: a NIO writer let go unfinished on a live connection traps.
private final class Connections: Sendable {
    private struct State {
        /// Set up (for the quiesce).
        var open: [ObjectIdentifier: any Channel] = [:]
        /// Accepted, not yet handed to `handle`, with the set-up's value once there is one.
        var waiting: [ObjectIdentifier: (channel: any Channel, value: (any Sendable)?)] = [:]
        var accepting = true
        var quiescing = false
        /// The drain, waiting for `waiting` to empty.
        var emptied: [CheckedContinuation<Void, Never>] = []

        /// The drain's waiters, to resume (outside the lock) once no connection waits.
        mutating func takeEmptied() -> [CheckedContinuation<Void, Never>] {
            guard waiting.isEmpty else { return [] }
            defer { emptied = [] }
            return emptied
        }
    }

    private let state = Mutex(State())

    /// Whether the listener may accept more (read by `ListenerDrain` on the listener's event loop).
    var isAccepting: Bool { state.withLock { $0.accepting } }

    /// On the listener's event loop, as `channel` is accepted.
    func accepted(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { $0.waiting[key] = (channel, nil) }
        channel.closeFuture.whenComplete { [self] _ in
            let emptied = state.withLock { state in
                state.open.removeValue(forKey: key)
                return state.waiting.removeValue(forKey: key) == nil ? [] : state.takeEmptied()
            }
            for waiter in emptied { waiter.resume() }
        }
    }

    /// `channel`'s pipeline is whole: a quiesce fired into a pipeline still being set up passes by the
    /// handlers that act on it, and the connection then held the old gustd's shutdown for its whole
    /// timeout (seen in UpgradeTests under load). One set up after the quiesce began is told at once.
    func setUp(_ channel: any Channel, value: any Sendable) {
        let key = ObjectIdentifier(channel)
        let quiescing = state.withLock { state in
            guard state.waiting[key] != nil else { return false }  // closed meanwhile
            state.waiting[key]?.value = value
            state.open[key] = channel
            return state.quiescing
        }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// `channel` is handed to `handle`.
    func handling(_ channel: any Channel) {
        let emptied = state.withLock { state in
            state.waiting.removeValue(forKey: ObjectIdentifier(channel)) == nil ? [] : state.takeEmptied()
        }
        for waiter in emptied { waiter.resume() }
    }

    /// Stops accepting, and closes `listener` once every connection it accepted has been handed to
    /// `handle` (or closed). The kernel's queue stays with the socket's other holders: the next gustd,
    /// systemd's socket unit.
    func closeListener(_ listener: any Channel) async {
        // On the listener's event loop, where connections are accepted: none is accepted after this.
        _ = try? await listener.eventLoop.submit { [self] in
            state.withLock { $0.accepting = false }
            try listener.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        }.get()
        while true {
            let closed = try? await listener.eventLoop.submit { [self] () -> Bool in
                guard state.withLock({ $0.waiting.isEmpty }) else { return false }
                listener.close(promise: nil)
                return true
            }.get()
            if closed != false { break }  // closed, or its event loop is gone
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    guard !state.waiting.isEmpty else { return true }
                    state.emptied.append(waiter)
                    return false
                }
                if now { waiter.resume() }
            }
        }
        try? await listener.closeFuture.get()
    }

    /// The server's loop ended: no connection still waiting will be handed to `handle` now.
    func closeUnhandled() {
        let orphans = state.withLock { state in state.waiting.values.map(\.channel) }
        for channel in orphans { channel.close(promise: nil) }
    }

    func quiesce() async {
        let open = state.withLock { state in
            state.quiescing = true
            return Array(state.open.values)
        }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        for channel in open { try? await channel.closeFuture.get() }
        // Any set up meanwhile was told on arrival; wait for those too.
        while let channel = state.withLock({ $0.open.values.first }) { try? await channel.closeFuture.get() }
    }
}

/// On a listening channel, nearest the socket: tells `Connections` of each
/// connection accepted, and once the drain began passes no `read` (which would
/// accept more), not even one `AcceptGate` held for room.
private final class ListenerDrain: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let connections: Connections

    init(connections: Connections) { self.connections = connections }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connections.accepted(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard connections.isAccepting else { return }
        context.read()
    }
}
