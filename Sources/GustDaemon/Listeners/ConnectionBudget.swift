#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// How many client connections gustd's listeners may hold at once: all but a
/// reserve of its descriptor limit (read again at each accept, so a limit
/// lowered while gustd runs counts). gustd needs descriptors of its own besides
/// its clients' (instances' sockets and pipes, the store, logs), and so does
/// the runtime: libdispatch's thread pool monitor opens /proc/TID/stat once a
/// second while work is queued, and kills the process (SIGILL) if it cannot.
/// Left to NIO, a listener accepts until `accept` fails with EMFILE; a flood of
/// idle clients under load then crashed gustd. One budget is shared by every
/// listener; `AcceptGate` applies it.
final class ConnectionBudget: Sendable {
    /// At least this many descriptors, or a third of the limit if more, are never given to clients.
    /// gustd's own descriptors grow with its apps (each sandboxed app's holder keeps its namespaces
    /// and output pipes open, `SandboxHolders`): a quarter left 15 free at a limit of 256 with one app.
    static let minimumReserve = 64

    private let open = Atomic<Int>(0)
    private let limit: @Sendable () -> Int

    /// `limit` is the descriptor limit in force (the soft `RLIMIT_NOFILE` unless a test says otherwise).
    init(limit: @escaping @Sendable () -> Int = ConnectionBudget.descriptorLimit) {
        self.limit = limit
    }

    /// The client connections open now, across the listeners sharing this budget.
    var connections: Int { open.load(ordering: .relaxed) }

    /// The most client connections the budget allows now.
    var capacity: Int {
        let limit = self.limit()
        return max(0, limit - max(Self.minimumReserve, limit / 3))
    }

    var hasRoom: Bool { connections < capacity }

    /// Counts `channel` until it closes.
    func opened(_ channel: any Channel) {
        open.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
    }

    @Sendable static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }
}

/// On a listening channel, nearest the socket: passes a `read` (which accepts
/// connections) only while the `ConnectionBudget` has room, and counts each
/// connection accepted. Out of room, it holds the read and looks again every
/// `retry` until connections have closed; meanwhile new ones wait in the
/// listening socket's backlog (the kernel completes their handshake), and are
/// accepted then, as after a handover.
final class AcceptGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let budget: ConnectionBudget
    private let retry: TimeAmount
    private let logger: Logger
    private let name: String
    private var held: Scheduled<Void>?

    init(budget: ConnectionBudget, name: String, logger: Logger, retry: TimeAmount = .milliseconds(50)) {
        self.budget = budget
        self.name = name
        self.logger = logger
        self.retry = retry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        budget.opened(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard held == nil else { return }  // already waiting for room; that read will go
        if budget.hasRoom {
            context.read()
            return
        }
        logger.warning(
            "gustd's \(name) listener holds \(budget.connections) client connections, all its descriptor limit (\(ConnectionBudget.descriptorLimit())) allows but a reserve: new connections wait until some close"
        )
        hold(context)
    }

    private func hold(_ context: ChannelHandlerContext) {
        held = context.eventLoop.assumeIsolated().scheduleTask(in: retry) { [self] in
            held = nil
            if budget.hasRoom {
                logger.notice("gustd's \(name) listener accepts again (\(budget.connections) client connections)")
                context.read()
            } else {
                hold(context)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held?.cancel()
        held = nil
    }
}
