@testable import GustDaemon
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// A listener accepts (passes `read` on to its socket) only while the client
/// connections leave gustd a reserve of descriptors besides its own (`AcceptGate`,
/// `ConnectionBudget`); out of room it waits until some have closed.
struct AcceptGateTests {
    /// Counts the reads that reach the listening socket, which sits before the gate.
    final class Reads: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var count = 0
        func read(context: ChannelHandlerContext) { count += 1 }
    }

    final class Limit: Sendable {
        let value: Atomic<Int>
        init(_ value: Int) { self.value = Atomic(value) }
    }

    /// gustd's process as the budget sees it: the descriptors open besides client connections,
    /// how often they were counted, and a clock the test moves.
    final class Process: Sendable {
        let own: Atomic<Int>
        let counts = Atomic<Int>(0)
        private let clock = Mutex(ContinuousClock.now)
        init(own: Int) { self.own = Atomic(own) }

        func budget(limit: @escaping @Sendable () -> Int) -> ConnectionBudget {
            let box = Box()
            let budget = ConnectionBudget(
                limit: limit,
                openDescriptors: { [self] in
                    counts.add(1, ordering: .relaxed)
                    return own.load(ordering: .relaxed) + (box.budget?.connections ?? 0)
                },
                now: { [self] in clock.withLock { $0 } })
            box.budget = budget
            return budget
        }

        func advance(_ duration: Duration) { clock.withLock { $0 += duration } }
    }

    /// The fake counter sees the budget's own connections among the process's descriptors.
    final class Box: @unchecked Sendable {
        weak var budget: ConnectionBudget?
    }

    @Test func capacityIsTheLimitLessGustdsOwnDescriptorsAndAReserve() {
        #expect(Process(own: 0).budget(limit: { 256 }).capacity == 192)
        #expect(Process(own: 150).budget(limit: { 256 }).capacity == 42)
        #expect(Process(own: 40).budget(limit: { 100 }).capacity == 0)
        #expect(Process(own: 300).budget(limit: { 1_048_576 }).capacity == 1_048_212)
    }

    /// Out of descriptors, /proc/self/fd cannot be opened to count them: that is no room, not
    /// "gustd holds none" (which admitted clients at the very moment none could be served).
    @Test func anUncountableDescriptorTableMeansNoRoom() {
        let budget = ConnectionBudget(limit: { 256 }, openDescriptors: { nil })
        let clients = (0..<3).map { _ in EmbeddedChannel() }
        for client in clients { budget.opened(client) }
        #expect(!budget.hasRoom)
        #expect(budget.capacity <= 3)
    }

    @Test func gustdsOwnDescriptorsAreCountedAgainAsTheyGrowNotPerAccept() throws {
        let process = Process(own: 100)
        let budget = process.budget(limit: { 1_000 })
        #expect(budget.capacity == 836)
        #expect(process.counts.load(ordering: .relaxed) == 1)

        // Far from the limit: looks within a second use the last count.
        let clients = (0..<10).map { _ in EmbeddedChannel() }
        for client in clients { budget.opened(client) }
        for _ in 0..<100 { #expect(budget.hasRoom) }
        #expect(process.counts.load(ordering: .relaxed) == 1)

        // gustd's own descriptors grow (apps start): the next count, a second on, sees them, and
        // the connections (counted by the budget) are not taken for gustd's.
        process.own.store(700, ordering: .relaxed)
        #expect(budget.hasRoom, "still the last count")
        process.advance(.seconds(1))
        #expect(budget.hasRoom, "10 connections of 236")
        #expect(process.counts.load(ordering: .relaxed) == 2)
        #expect(budget.ownDescriptors == 700)
        #expect(budget.capacity == 236)

        // Near the limit (free descriptors within an eighth of it), the count is redone every 50 ms.
        process.own.store(850, ordering: .relaxed)
        process.advance(.seconds(1))
        #expect(budget.hasRoom, "10 connections of 86")
        #expect(process.counts.load(ordering: .relaxed) == 3)
        process.own.store(950, ordering: .relaxed)
        process.advance(.milliseconds(50))
        #expect(!budget.hasRoom, "950 of gustd's own and 10 connections leave less than the reserve")
        #expect(process.counts.load(ordering: .relaxed) == 4)
        process.own.store(800, ordering: .relaxed)
        #expect(!budget.hasRoom, "within 50 ms: the last count")
        process.advance(.milliseconds(50))
        #expect(budget.hasRoom, "gustd let go of 150 descriptors")
        #expect(process.counts.load(ordering: .relaxed) == 5)
        for client in clients { _ = try client.finish() }
    }

    @Test func readsStopAtTheBudgetAndGoOnOnceConnectionsClose() throws {
        let limit = Limit(76)  // room for 2: 76 - 10 of gustd's own - 64
        let budget = Process(own: 10).budget(limit: { limit.value.load(ordering: .relaxed) })
        let reads = Reads()
        let listener = EmbeddedChannel()
        try listener.pipeline.syncOperations.addHandlers([
            reads, AcceptGate(budget: budget, name: "http", logger: Logger(label: "test"), retry: .milliseconds(50)),
        ])

        listener.read()
        #expect(reads.count == 1, "room: the read reaches the socket")
        let clients = [EmbeddedChannel(), EmbeddedChannel()]
        for client in clients { try listener.writeInbound(client as any Channel) }
        #expect(budget.connections == 2)

        listener.read()
        listener.read()
        #expect(reads.count == 1, "no room: held")
        listener.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(reads.count == 1, "still no room: still held")

        _ = try clients[0].finish()
        #expect(budget.connections == 1)
        listener.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        #expect(reads.count == 2, "a connection closed: the held read goes, once")

        // A limit raised while gustd runs counts at the next read.
        try listener.writeInbound(EmbeddedChannel() as any Channel)
        listener.read()
        #expect(reads.count == 2)
        limit.value.store(1_000, ordering: .relaxed)
        listener.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        #expect(reads.count == 3)
        _ = try listener.finish()
    }
}
