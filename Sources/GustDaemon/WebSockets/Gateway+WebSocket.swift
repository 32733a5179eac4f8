import Foundation
import GustCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// A client's WebSocket handshake (an HTTP/1.1 `Upgrade: websocket` request),
/// forwarded to an instance of the app like any handler call; when the instance
/// answers 101 the two connections are spliced (`WebSocketSplice`) for as long
/// as the socket lives. The socket holds its slot in the app's pool all that
/// time, as Cloud Run counts a WebSocket as a request for its whole life: a
/// Python instance, taking one call at a time, serves one socket. Any other
/// answer goes back to the client as it came, and the connection then closes.
extension Gateway {
    /// Whether `headers` ask to switch to the WebSocket protocol (RFC 6455, 4.1).
    static func asksForWebSocket(_ headers: HTTPFields) -> Bool {
        guard let upgrade = headers[.upgrade] else { return false }
        return upgrade.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "websocket" }
    }

    func webSocket(
        _ request: Request, app: AppName, target: String, forwarded: HTTPHeaders, deadline: ContinuousClock.Instant,
        requestID: String, scope: AnswerScope, context: Context, note: inout Note
    ) async throws -> Response {
        guard request.method == .get else {
            return Self.error(405, "A WebSocket is opened with GET.", headers: [.allow: "GET"])
        }
        var headers = forwarded
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Upgrade", value: "websocket")
        let call = InstanceRequest(method: .GET, target: target, headers: headers)
        let channel = context.channel
        let (limit, maxFrame, idle) = (configuration.functionTimeout, configuration.maxBodyBytes, TimeAmount(configuration.webSocketIdleTimeout))
        let opened: OpenedSocket
        let open: @Sendable (Instance) async throws -> OpenedSocket = { instance in
            switch try await instance.upgrade(call, on: channel.eventLoop, timeout: deadline - .now) {
            case .refused(let answer):
                return OpenedSocket(instance: instance.id, refused: answer)
            case .switched(let head, let instanceChannel):
                let loop = channel.eventLoop
                let (splice, closed) = try await loop.submit { () -> (NIOLoopBound<WebSocketSplice>, EventLoopFuture<Void>) in
                    let splice = try Self.splice(
                        client: channel, instance: instanceChannel.value, head: head, requestID: requestID, scope: scope,
                        maxFrameBytes: maxFrame, idleTimeout: idle
                    )
                    return (NIOLoopBound(splice, eventLoop: loop), splice.closed)
                }.get()
                return OpenedSocket(instance: instance.id, splice: splice, closed: closed)
            }
        }
        let letGo: (OpenedSocket) -> (@Sendable () -> Void)? = { opened in
            guard let splice = opened.splice else { return nil }
            return { WebSocketSplice.goAway(splice, code: 1001) }
        }
        do {
            opened = try await supervisor.withInstance(
                app, deadline: deadline, watchClient: { await ClientDisconnectHandler.watch(channel) },
                holdUntil: { $0.closed }, whenDraining: letGo, open
            )
        } catch is CancellationError {
            throw GustError("The client closed the connection before the call ran; it did not run.", code: 499)
        } catch CallAbandoned.clientGone {
            throw GustError("The client closed the connection before the call ran; it did not run.", code: 499)
        } catch InstanceCallError.timedOut {
            throw GustError("The function did not answer the WebSocket handshake within \(limit.shortText).", code: 504)
        } catch InstanceCallError.connectionClosed, InstanceCallError.tooLarge {
            throw GustError("The function's process closed the connection instead of answering the WebSocket handshake.", code: 502)
        }
        note.instance = opened.instance
        if let answer = opened.refused {
            return Response(status: .init(code: answer.status), headers: Self.clientFields(of: answer.headers, scope: scope), body: .init(byteBuffer: answer.body))
        }
        // The call lasts as long as the socket; what Hummingbird writes when it ends goes nowhere.
        try? await opened.closed?.get()
        return Response(status: .switchingProtocols)
    }

    /// What the handshake came to: a splice and the future of its end, or the answer of a refusal.
    struct OpenedSocket: Sendable {
        var instance: String
        var refused: InstanceResponse?
        var splice: NIOLoopBound<WebSocketSplice>?
        var closed: EventLoopFuture<Void>?
    }

    /// On the client's event loop: sends the client the instance's 101, then puts the
    /// splice's halves first in both pipelines (before any HTTP handler), so that
    /// from now on every byte each side sends goes to the other as it is.
    private static func splice(
        client: any Channel, instance: any Channel, head: HTTPResponseHead, requestID: String, scope: AnswerScope, maxFrameBytes: Int,
        idleTimeout: TimeAmount
    ) throws -> WebSocketSplice {
        let splice = WebSocketSplice(
            loop: client.eventLoop, clientChannel: client, instanceChannel: instance, maxFrameBytes: maxFrameBytes, idleTimeout: idleTimeout)
        let clientPipeline = client.pipeline.syncOperations
        UpgradeGuard.markSpliced(clientPipeline)
        let encoder = try clientPipeline.handler(type: HTTPResponseEncoder.self)
        try clientPipeline.addHandler(splice.client, position: .before(encoder))
        var text = "HTTP/1.1 101 Switching Protocols\r\n"
        for (name, value) in head.headers where !["content-length", "transfer-encoding", "keep-alive", "x-request-id"].contains(name.lowercased()) {
            // As `Gateway.clientFields` for every other answer: an app sets no console cookie, nor one
            // for a domain its address shares with other apps.
            if name.lowercased() == "set-cookie", !scope.keepsCookie(value) { continue }
            // Nor, at a path address, what acts on the whole origin (HSTS, Clear-Site-Data).
            if scope.sharesOrigin, Gateway.actsOnTheOrigin.contains(name.lowercased()) { continue }
            text += "\(name): \(value)\r\n"
        }
        text += "X-Request-Id: \(requestID)\r\n"
        text += "\r\n"
        splice.client.sendHead(ByteBuffer(string: text))
        let instancePipeline = instance.pipeline.syncOperations
        try instancePipeline.addHandler(splice.instance)
        // The instance's HTTP handlers go; its decoder hands on what came after the 101's head.
        for handler in [
            try instancePipeline.handler(type: UpgradeAnswerReader.self) as any RemovableChannelHandler,
            try instancePipeline.handler(type: HTTPRequestEncoder.self),
            try instancePipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self),
        ] {
            instancePipeline.removeHandler(handler, promise: nil)
        }
        return splice
    }
}
