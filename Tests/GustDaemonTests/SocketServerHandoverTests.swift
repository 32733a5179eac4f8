#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import GustDaemon
import GustTesting
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A connection the kernel accepted just as a `SocketServer` began to drain (a
/// handover to the next gustd, a restart) is answered: its set-up may finish
/// after the drain began, and before, such a connection was never handed to its
/// handler, so nothing read it; the drain held it for `QuiesceGate`'s
/// `firstRequestGrace` (10 s) and then closed it, its request unread, and the
/// client saw a reset (seen in UpgradeTests under load).
struct SocketServerHandoverTests {
    /// As before, its set-up finished once the listener had closed: NIO no longer registered it.
    @Test(.timeLimit(.minutes(2))) func aConnectionSetUpAfterTheDrainBeganIsAnswered() async throws {
        try await drain(releasing: .afterTheListenerClosed)
    }

    /// As before, its set-up finished as the listener closed, between its inactive event and its
    /// pipeline's teardown: NIO registered it but dropped its `NIOAsyncChannel`, whose writer then
    /// trapped ("Deinited NIOAsyncWriter without calling finish()": a SIGILL) once it became active.
    @Test(.timeLimit(.minutes(2))) func aConnectionSetUpAsTheListenerClosesIsAnswered() async throws {
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)  // the listener's and the connection's
        try await drain(releasing: .asTheListenerCloses, group: loop)
        try await loop.shutdownGracefully()
    }

    /// When, before the fix, the held set-up finished: the two ways NIO lost the connection.
    enum Moment { case afterTheListenerClosed, asTheListenerCloses }

    /// A client connects and sends its request at once; its connection's set-up is held until the drain
    /// began and the listener stopped accepting (before the fix: had closed, at `moment`). The
    /// client must be answered, and the drain end.
    func drain(releasing moment: Moment, group loop: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws {
        let logger = Logger(label: "test")
        let held = HeldSetup(
            HTTP1Channel(
                responder: Listeners.respond(PeerConnectionLimitTests.Answer(), dates: HTTPDate(), serverName: "gustd", logger: logger),
                configuration: .init(additionalChannelHandlers: [QuiesceGate()])))
        let listening = Mutex<(any Channel)?>(nil)
        let server = SocketServer(
            childChannel: held, socket: try ListeningSocket.make("http", host: "127.0.0.1", port: 0, inherited: InheritedSockets([:])),
            group: loop, budget: ConnectionBudget(limit: { 1024 }), logger: logger,
            onServerRunning: { channel in listening.withLock { $0 = channel } })

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            #expect(await PeerConnectionLimitTests.settle { listening.withLock { $0 != nil } })
            guard let listener = listening.withLock({ $0 }), let port = listener.localAddress?.port else { return }
            if moment == .asTheListenerCloses {
                try await listener.pipeline.addHandler(ReleaseOnInactive(held), position: .first)
            }

            let answer = Answer()
            let client = try TCPClient(port: port)
            let thread = Thread { answer.set(client.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }
            thread.start()
            #expect(await PeerConnectionLimitTests.settle { held.isHeld }, "the connection was accepted")

            group.addTask { await server.shutdownGracefully() }
            let stopped = await Self.settle {
                if !listener.isActive { return true }
                return (try? await listener.getOption(ChannelOptions.autoRead)) == false
            }
            #expect(stopped, "the listener stopped accepting")
            if !listener.isActive { try? await listener.closeFuture.get() }
            held.release()

            #expect(await PeerConnectionLimitTests.settle { answer.value != nil })
            let got = answer.value ?? "(none)"
            #expect(got.hasPrefix("HTTP/1.1 200"), "\(got)")
            await server.shutdownGracefully()  // returns once the drain has ended
        }
    }

    /// Polls `condition` until true, for at most 20 s (as `PeerConnectionLimitTests.settle`).
    static func settle(_ condition: () async -> Bool) async -> Bool {
        for _ in 0..<400 {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return await condition()
    }

    /// HummingbirdCore's child channel whose set-up waits until the test releases it.
    final class HeldSetup<Inner: ServerChildChannel>: ServerChildChannel {
        typealias Value = Inner.Value
        private let inner: Inner
        private let gate = Mutex<(promise: EventLoopPromise<Void>?, released: Bool)>((nil, false))

        init(_ inner: Inner) { self.inner = inner }

        var isHeld: Bool { gate.withLock { $0.promise != nil } }

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let released = gate.withLock { gate in
                gate.promise = promise
                return gate.released
            }
            if released { promise.succeed() }
            return promise.futureResult.flatMap { self.inner.setup(channel: channel, logger: logger) }
        }

        func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }

        func release() {
            let promise = gate.withLock { gate in
                gate.released = true
                return gate.promise
            }
            promise?.succeed()
        }
    }

    /// First in a listener's pipeline: releases the held set-up on the listener's event loop right after
    /// its inactive event, before NIO tears its pipeline down.
    final class ReleaseOnInactive<Inner: ServerChildChannel>: ChannelInboundHandler, Sendable {
        typealias InboundIn = Any
        let held: HeldSetup<Inner>
        init(_ held: HeldSetup<Inner>) { self.held = held }
        func channelInactive(context: ChannelHandlerContext) {
            context.eventLoop.execute { [held] in held.release() }
            context.fireChannelInactive()
        }
    }

    /// What the client's thread read, for the test's task.
    final class Answer: Sendable {
        private let text = Mutex<String?>(nil)
        var value: String? { text.withLock { $0 } }
        func set(_ value: String) { text.withLock { $0 = value } }
    }

    /// A blocking loopback TCP client the test drives from a thread of its own.
    final class TCPClient: Sendable {
        let fd: Int32

        init(port: Int) throws {
            fd = try LoopbackPort.connect(port)
        }

        deinit { close(fd) }

        /// Sends `request` and reads the answer, or says why there was none; waits up to 20 s, longer
        /// than `QuiesceGate`'s `firstRequestGrace`, after which an unread connection was reset.
        func exchange(_ request: String) -> String {
            _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var wait = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 1024)
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0 { return String(decoding: buffer[..<got], as: UTF8.self) }
            return got == 0 ? "(closed by gustd)" : "(no answer: \(String(cString: strerror(errno))))"
        }
    }
}
