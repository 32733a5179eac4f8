#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// How many client connections gustd's listeners may hold at once: as many as
/// leave a fixed reserve of its descriptor limit free besides the descriptors
/// gustd holds for itself. gustd needs descriptors of its own besides its
/// clients' (instances' sockets and pipes, each sandboxed app's holder's
/// namespaces, the store, logs), and they grow with its apps;
/// so does the runtime: libdispatch's thread pool monitor opens
/// /proc/TID/stat once a second while work is queued, and kills the process
/// (SIGILL) if it cannot. Left to NIO, a listener accepts until `accept` fails
/// with EMFILE; a flood of idle clients under load then crashed gustd. One
/// budget is shared by every listener; `AcceptGate` applies it.
///
/// gustd's own descriptors are those open in the process less the client
/// connections: counted (a read of /proc/self/fd) at most once a second, and at
/// most every 50 ms while the connections are near the limit, never per accept
/// in between. The limit is read again at each look, so a limit lowered while
/// gustd runs counts.
final class ConnectionBudget: Sendable {
    /// Descriptors never given to clients, besides those gustd holds already: room for a burst of
    /// instance starts (pipes, sockets) and the runtime's own, and for gustd's descriptors that
    /// open between two counts.
    static let reserve = 64

    private struct Count {
        /// gustd's own descriptors at the last count (0 before the first).
        var own = 0
        var at: ContinuousClock.Instant?
        /// A count under way on another thread: the others use the last one meanwhile.
        var counting = false
    }

    private let open = Atomic<Int>(0)
    private let count = Mutex(Count())
    private let limit: @Sendable () -> Int
    private let openDescriptors: @Sendable () -> Int?
    private let now: @Sendable () -> ContinuousClock.Instant

    /// `limit` is the descriptor limit in force (the soft `RLIMIT_NOFILE` unless a test says otherwise);
    /// `openDescriptors` counts the descriptors open in the process, client connections included
    /// (nil: they could not be counted).
    init(
        limit: @escaping @Sendable () -> Int = ConnectionBudget.descriptorLimit,
        openDescriptors: @escaping @Sendable () -> Int? = ConnectionBudget.openDescriptors,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.limit = limit
        self.openDescriptors = openDescriptors
        self.now = now
    }

    /// The client connections open now, across the listeners sharing this budget.
    var connections: Int { open.load(ordering: .relaxed) }

    /// gustd's own descriptors (all but client connections) at the last count.
    var ownDescriptors: Int { count.withLock { $0.own } }

    /// The most client connections the budget allows now: the limit less gustd's own descriptors
    /// and the reserve.
    var capacity: Int {
        let limit = self.limit()
        let own = counted(limit: limit, connections: connections)
        return max(0, limit - own - Self.reserve)
    }

    var hasRoom: Bool { connections < capacity }

    /// Counts `channel` until it closes.
    func opened(_ channel: any Channel) {
        open.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
    }

    /// gustd's own descriptors, counted again if the last count is older than a second, or than
    /// 50 ms while the connections are within a margin (an eighth of the limit, at least the
    /// reserve) of the capacity that count left.
    private func counted(limit: Int, connections: Int) -> Int {
        let now = self.now()
        let due = count.withLock { count -> Bool in
            guard !count.counting else { return false }
            if let at = count.at {
                let margin = max(Self.reserve, limit / 8)
                let near = limit - count.own - Self.reserve - connections <= margin
                guard now - at >= (near ? .milliseconds(50) : .seconds(1)) else { return false }
            }
            count.counting = true
            return true
        }
        guard due else { return count.withLock { $0.own } }
        // Connections opened or closed during the count may be off by a few; the reserve covers them.
        // No count (no descriptor was free to open /proc/self/fd) means no room until the next one.
        let own = openDescriptors().map { max(0, $0 - self.connections) } ?? max(0, limit - Self.reserve - self.connections)
        count.withLock { count in
            count = Count(own: own, at: now, counting: false)
        }
        return own
    }

    @Sendable static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// The descriptors open in this process: the entries of /proc/self/fd, less the one reading it;
    /// nil if it cannot be read (out of descriptors, the case that matters most).
    @Sendable static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var entries = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != CChar(0x2E) { entries += 1 }  // not "." or ".."
        }
        return max(0, entries - 1)
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
            "gustd's \(name) listener holds \(budget.connections) client connections, all its descriptor limit (\(ConnectionBudget.descriptorLimit())) allows besides gustd's own \(budget.ownDescriptors) descriptors and a reserve of \(ConnectionBudget.reserve): new connections wait until some close"
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
