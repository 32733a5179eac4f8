import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What an instance answered a request to switch protocols.
enum UpgradeAnswer: Sendable {
    /// `101 Switching Protocols`: `channel` (on the event loop asked for) is the
    /// instance's end of the upgraded connection, its HTTP handlers still in place
    /// until `WebSocketRelay` takes it over, which then hands on the bytes the
    /// instance sent after its answer.
    case switched(HTTPResponseHead, NIOLoopBound<any Channel>)
    /// Any other answer, whole (the application refused the socket).
    case refused(InstanceResponse)
}

extension Instance {
    /// Sends an upgrade request (a WebSocket handshake) on a connection of its
    /// own, made on `loop`, and waits at most `timeout` for the answer's head.
    /// The connection is never reused: on 101 it belongs to the socket, else it
    /// is closed once the answer is read. What the instance prints until the
    /// connection closes is credited to the handler.
    func upgrade(_ request: InstanceRequest, on loop: any EventLoop, timeout: Duration) async throws -> UpgradeAnswer {
        guard !isStopping else { throw InstanceCallError.connectionClosed }
        var request = request
        let function = request.function
        let call = manifest.takesCallIDs ? CallTag.next() : nil
        if let call { request.headers.replaceOrAdd(name: CallTag.header, value: call) }
        let channel: any Channel
        let answer: EventLoopFuture<UpgradeAnswer>
        do {
            let socket = try NoFollowPath.socket(socketPath, below: records.directory.path)
            defer { socket.close() }
            (channel, answer) = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes, enableOutboundHeaderValidation: false)
                    }
                }
                .connect(unixDomainSocketPath: socket.address)
                .flatMap { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let promise = channel.eventLoop.makePromise(of: UpgradeAnswer.self)
                        try channel.pipeline.syncOperations.addHandler(UpgradeAnswerReader(promise: promise))
                        return (channel, promise.futureResult)
                    }
                }
                .get()
        } catch {
            markBroken()  // its socket is gone: the process is
            throw InstanceCallError.connectionClosed
        }
        output.begin(function, call: call, request: request.headers.first(name: "X-Request-Id"))
        let output = self.output
        channel.closeFuture.whenComplete { _ in output.end(function, call: call) }
        let timedOut = TimedOut()
        let limit = loop.scheduleTask(in: TimeAmount(timeout)) {
            timedOut.flag.withLock { $0 = true }
            channel.close(promise: nil)
        }
        defer { limit.cancel() }
        var headers = request.headers
        headers.remove(name: InternalSecret.header)
        headers.replaceOrAdd(name: "Content-Length", value: "0")
        if !headers.contains(name: "Host") { headers.add(name: "Host", value: "instance") }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            let result = try await answer.get()
            if case .refused = result { channel.close(promise: nil) }
            return result
        } catch {
            channel.close(promise: nil)
            // As for any call: an instance that did not answer in time, or hung up, takes no more.
            markBroken()
            throw timedOut.flag.withLock { $0 } ? InstanceCallError.timedOut : InstanceCallError.connectionClosed
        }
    }
}

/// Reads the instance's answer to an upgrade request: hands over the head of a
/// 101 at once, collects any other answer whole (at most 1 MiB), and fails if the
/// connection closes first.
final class UpgradeAnswerReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var promise: EventLoopPromise<UpgradeAnswer>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<UpgradeAnswer>) { self.promise = promise }

    /// Whether a 101's headers say it switches to WebSocket (`Upgrade: websocket`, any case).
    static func switchesToWebSocket(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            if head.status == .switchingProtocols {
                // Only to the protocol asked for: a 101 that is no WebSocket's would have gustd splice
                // frames into a connection the instance reads as something else (its HTTP, say).
                guard Self.switchesToWebSocket(head.headers) else {
                    promise?.fail(InstanceCallError.malformedAnswer)
                    promise = nil
                    context.close(promise: nil)
                    return
                }
                promise?.succeed(.switched(head, NIOLoopBound(context.channel, eventLoop: context.eventLoop)))
                promise = nil
            }
        case .body(var chunk):
            guard promise != nil else { return }
            if body.readableBytes + chunk.readableBytes > 1 << 20 {
                promise?.fail(InstanceCallError.tooLarge)
                promise = nil
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let head, let promise else { return }
            self.promise = nil
            promise.succeed(.refused(InstanceResponse(status: Int(head.status.code), headers: head.headers, body: body)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.fail(InstanceCallError.connectionClosed)
        promise = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise?.fail(InstanceCallError.connectionClosed)
        promise = nil
        context.close(promise: nil)
    }
}

/// Whether the upgrade's time limit closed its connection.
private final class TimedOut: Sendable {
    let flag = Mutex(false)
}
