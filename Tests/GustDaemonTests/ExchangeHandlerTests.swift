@testable import GustDaemon
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

/// An instance connection's handler (`ExchangeHandler`) on an embedded channel whose clock the
/// test moves: every exchange fails at its own time limit, whatever the exchanges before it
/// left of the connection's one timer, and none fails at another's.
@Suite struct ExchangeHandlerTests {
    /// The answer's parts an exchange was given, in order.
    final class Told: Sendable {
        private let parts = Mutex<[String]>([])
        func callAsFunction(_ part: InstanceAnswerPart) {
            let text: String
            switch part {
            case .whole(let response): text = "whole \(response.status)"
            case .failed(let error): text = "failed \(error)"
            default: text = "\(part)"
            }
            parts.withLock { $0.append(text) }
        }
        var all: [String] { parts.withLock { $0 } }
    }

    func connection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        try channel.pipeline.syncOperations.addHandler(ExchangeHandler(internalToken: "secret"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(on channel: EmbeddedChannel, timeout: Duration, to told: Told) throws {
        let exchange = Exchange(
            request: InstanceRequest(method: .GET, target: "/hello"), deliver: { told($0) }, timeout: timeout, maxBodyBytes: 1 << 20)
        channel.writeAndFlush(exchange, promise: nil)
        while try channel.readOutbound(as: IOData.self) != nil {}  // the request, as the instance would read it
    }

    func answer(on channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    }

    @Test func anExchangeOutlivesTheLimitOfTheOneBeforeItAndFailsAtItsOwn() throws {
        let channel = try connection()
        let loop = channel.embeddedEventLoop
        let first = Told()
        try send(on: channel, timeout: .seconds(10), to: first)
        loop.advanceTime(by: .seconds(1))
        try answer(on: channel)
        #expect(first.all == ["whole 200"])

        // From 5 s, with its limit at 15 s: past the first's 10 s, it still runs.
        loop.advanceTime(by: .seconds(4))
        let second = Told()
        try send(on: channel, timeout: .seconds(10), to: second)
        loop.advanceTime(by: .seconds(9))
        #expect(second.all.isEmpty && channel.isActive, "at 14 s: \(second.all)")
        try answer(on: channel)
        #expect(second.all == ["whole 200"])

        // From 14 s, with its limit at 16 s: it fails then, not before, not later.
        let third = Told()
        try send(on: channel, timeout: .seconds(2), to: third)
        loop.advanceTime(by: .seconds(1))
        #expect(third.all.isEmpty && channel.isActive, "at 15 s: \(third.all)")
        loop.advanceTime(by: .seconds(1))
        #expect(third.all == ["failed timedOut"])
        #expect(!channel.isActive, "a connection whose exchange timed out is closed: its state is unknown")
    }

    @Test func aShortLimitAfterALongOneIsKeptToo() throws {
        let channel = try connection()
        let loop = channel.embeddedEventLoop
        let long = Told()
        try send(on: channel, timeout: .seconds(100), to: long)
        try answer(on: channel)
        #expect(long.all == ["whole 200"])

        let short = Told()
        try send(on: channel, timeout: .seconds(2), to: short)
        loop.advanceTime(by: .seconds(2))
        #expect(short.all == ["failed timedOut"], "at its own 2 s, not at the 100 s the connection's timer was set for")
    }
}
