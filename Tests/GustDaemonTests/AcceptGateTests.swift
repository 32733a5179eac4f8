@testable import GustDaemon
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// A listener accepts (passes `read` on to its socket) only while the client
/// connections leave gustd a reserve of descriptors (`AcceptGate`,
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

    @Test func theReserveIsAThirdOfTheLimitAndNeverUnder64() {
        #expect(ConnectionBudget(limit: { 256 }).capacity == 171)
        #expect(ConnectionBudget(limit: { 100 }).capacity == 36)
        #expect(ConnectionBudget(limit: { 40 }).capacity == 0)
        #expect(ConnectionBudget(limit: { 1_048_576 }).capacity == 699_051)
    }

    @Test func readsStopAtTheBudgetAndGoOnOnceConnectionsClose() throws {
        let limit = Limit(66)  // room for 2: 66 - 64
        let budget = ConnectionBudget(limit: { limit.value.load(ordering: .relaxed) })
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
