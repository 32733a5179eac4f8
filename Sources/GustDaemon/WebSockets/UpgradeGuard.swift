import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Watches a connection for a request asking to switch protocols (`Upgrade:`).
/// SwiftNIO's HTTP decoder stops reading after such a request, so whatever the
/// answer, the connection cannot carry another HTTP request: an upgrade gustd
/// refused (any answer but 101) closes the connection once answered, and one
/// that became a WebSocket (`WebSocketSplice`) takes the socket over, this
/// guard swallowing the answer Hummingbird writes when the call ends.
///
/// One per connection, after the HTTP codec; an ordinary request costs it a
/// header lookup on the head.
final class UpgradeGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var upgradeRequested = false
    private var spliced = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data), request.headerFields[.upgrade] != nil {
            upgradeRequested = true
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard upgradeRequested else {
            context.write(data, promise: promise)
            return
        }
        if spliced {
            promise?.succeed()
            return
        }
        if case .end = unwrapOutboundIn(data) {
            context.writeAndFlush(data).assumeIsolated().whenComplete { result in
                promise?.completeWith(result)
                context.close(promise: nil)
            }
            return
        }
        context.write(data, promise: promise)
    }

    /// The connection is a WebSocket now: nothing HTTP is written on it again.
    static func markSpliced(_ pipeline: ChannelPipeline.SynchronousOperations) {
        (try? pipeline.handler(type: UpgradeGuard.self))?.spliced = true
    }
}
