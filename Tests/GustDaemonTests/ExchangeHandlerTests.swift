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
            case .whole(let response):
                text = "whole \(response.status)" + (response.body.readableBytes == 0 ? "" : " " + String(buffer: response.body))
            case .failed(let error): text = "failed \(error)"
            default: text = "\(part)"
            }
            parts.withLock { $0.append(text) }
        }
        var all: [String] { parts.withLock { $0 } }
    }

    func connection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ExchangeHandler(internalToken: "secret"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(on channel: EmbeddedChannel, timeout: Duration, to told: Told, method: HTTPMethod = .GET) throws {
        let exchange = Exchange(
            request: InstanceRequest(method: method, target: "/hello"), deliver: { told($0) }, timeout: timeout, maxBodyBytes: 1 << 20)
        channel.writeAndFlush(exchange, promise: nil)
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}  // the request, as the instance would read it
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
        #expect(first.all == ["whole 200 ok"])

        // From 5 s, with its limit at 15 s: past the first's 10 s, it still runs.
        loop.advanceTime(by: .seconds(4))
        let second = Told()
        try send(on: channel, timeout: .seconds(10), to: second)
        loop.advanceTime(by: .seconds(9))
        #expect(second.all.isEmpty && channel.isActive, "at 14 s: \(second.all)")
        try answer(on: channel)
        #expect(second.all == ["whole 200 ok"])

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
        #expect(long.all == ["whole 200 ok"])

        let short = Told()
        try send(on: channel, timeout: .seconds(2), to: short)
        loop.advanceTime(by: .seconds(2))
        #expect(short.all == ["failed timedOut"], "at its own 2 s, not at the 100 s the connection's timer was set for")
    }

    // MARK: - The connection's own framing (InstanceAnswerDecoder)

    @Test func anAnswerInPiecesIsWholeAndTheConnectionIsKept() throws {
        let channel = try connection()
        let told = Told()
        try send(on: channel, timeout: .seconds(10), to: told)
        for piece in ["HTTP/1.1 200 OK\r\nContent-", "Length: 5\r\n\r\nhel", "lo"] {
            try channel.writeInbound(ByteBuffer(string: piece))
        }
        #expect(told.all == ["whole 200 hello"])
        let next = Told()
        try send(on: channel, timeout: .seconds(10), to: next, method: .HEAD)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
        #expect(next.all == ["whole 200"], "an answer to HEAD has no body, whatever its length")
        #expect(channel.isActive)
    }

    @Test func anAnswerThatIsNotHTTPFailsItsExchangeAndClosesTheConnection() throws {
        let channel = try connection()
        let told = Told()
        try send(on: channel, timeout: .seconds(10), to: told)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"))
        #expect(told.all == ["failed malformedAnswer"])
        #expect(!channel.isActive)
    }

    @Test func bytesNoExchangeAskedForCloseTheConnection() throws {
        let channel = try connection()
        let told = Told()
        try send(on: channel, timeout: .seconds(10), to: told)
        // An answer, and behind it the head of one nobody asked for (a next call's, written ahead).
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(told.all == ["whole 200"])
        #expect(!channel.isActive, "what comes after it could be taken for the next call's answer")
    }

    /// The lane sends a connection's next call from the answer's delivery, within the same read:
    /// bytes an instance wrote past its answer's end (a length it got wrong, a header a client
    /// split) were then read as that next call's answer, another client's.
    @Test func bytesPastAnAnswerAreNeverTheNextCallsAnswer() throws {
        let channel = try connection()
        let next = Told()
        let first = Told()
        let exchange = Exchange(
            request: InstanceRequest(method: .GET, target: "/hello"),
            deliver: { part in
                first(part)
                let following = Exchange(
                    request: InstanceRequest(method: .GET, target: "/victim"), deliver: { next($0) }, timeout: .seconds(10), maxBodyBytes: 1 << 20)
                channel.writeAndFlush(following, promise: nil)
            },
            timeout: .seconds(10), maxBodyBytes: 1 << 20)
        channel.writeAndFlush(exchange, promise: nil)
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"))
        #expect(first.all == ["whole 200 ok"])
        #expect(next.all == ["failed connectionClosed"], "the next call is not answered with what came after the first's answer")
        #expect(!channel.isActive)
    }

    @Test func anAnswerFramedByTheEndOfTheConnectionIsWholeThen() throws {
        let channel = try connection()
        let told = Told()
        try send(on: channel, timeout: .seconds(10), to: told)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nall of "))
        try channel.writeInbound(ByteBuffer(string: "it"))
        #expect(told.all.isEmpty)
        channel.pipeline.fireChannelInactive()
        #expect(told.all == ["whole 200 all of it"])
    }
}
