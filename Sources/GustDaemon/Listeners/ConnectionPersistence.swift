import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Keeps an HTTP/1.0 connection only when its request asks for it (RFC 9112, 9.3):
/// an HTTP/1.0 request without `Connection: keep-alive` is answered with
/// `Connection: close` and the connection closes once that answer is written;
/// one with it is answered with `Connection: keep-alive`, which an HTTP/1.0
/// client needs to see before it sends another. `ab` without `-k`, old proxies
/// and health checkers speak HTTP/1.0 and take the close as the answer's end.
///
/// HTTPTypes' request heads carry no version, so neither Hummingbird nor the
/// gateway's lane after them can tell: this sits before the HTTPTypes codec, on
/// NIO's own parts, and leaves HTTP/1.1 as it is. A connection whose first
/// request is HTTP/1.1 keeps HTTP/1.1's rules for its life: the handler leaves
/// the pipeline then, so that such connections (nearly all) pay nothing for it.
/// A CONNECT is closed after its answer too, whatever its version.
final class ConnectionPersistence: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What an answer says about its connection, by the request it answers.
    enum Persistence: Equatable {
        /// HTTP/1.1: whatever the answer says (Hummingbird and the lane read `Connection` themselves).
        case asIs
        /// HTTP/1.0 asking for keep-alive.
        case keepAlive
        /// HTTP/1.0 otherwise: closed after the answer.
        case close
    }

    /// One entry per request read whose answer has not started yet, in order (HTTP/1
    /// answers in the order of the requests).
    private var unanswered = CircularBuffer<Persistence>(initialCapacity: 2)
    /// A request has been read (after an HTTP/1.1 first request the handler is gone, or going).
    private var sawRequest = false
    /// The answer being written closes the connection at its end.
    private var closesAtEnd = false

    static func persistence(of head: HTTPRequestHead) -> Persistence {
        // gustd refuses a CONNECT (`Gateway.route`), and NIO writes that answer with no body nor
        // length (RFC 9112, 6.3): the close is where it ends. (NIO's parser reads nothing after one.)
        if head.method == .CONNECT { return .close }
        guard head.version.major == 1, head.version.minor == 0 else { return .asIs }
        return head.isKeepAlive ? .keepAlive : .close
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let persistence = Self.persistence(of: head)
        if !sawRequest, persistence == .asIs {
            // Passed on first: a removed handler's context passes nothing on. (An answer written
            // meanwhile passes through as it is; a connection closed meanwhile has no pipeline left.)
            sawRequest = true
            context.fireChannelRead(data)
            if context.channel.isActive { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
            return
        }
        sawRequest = true
        unanswered.append(persistence)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200 || head.status == .switchingProtocols:
            // An answer that no request head came before (a 400 for bytes that were not one) is as is.
            switch unanswered.popFirst() ?? .asIs {
            case .asIs:
                break
            case .keepAlive:
                if !head.headers.contains(name: "connection") { head.headers.add(name: "Connection", value: "keep-alive") }
            case .close:
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                closesAtEnd = true
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closesAtEnd:
            closesAtEnd = false
            context.writeThenClose(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}

/// HummingbirdCore's HTTP/1 channel with `MalformedRequestAnswer`, `ConnectionPersistence` and
/// `StoppedDecoderBound`'s watch (in that order) before its HTTPTypes codec, and the bound's meter
/// before NIO's request decoder: every listener of gustd's (the apps', the console's, the
/// metrics', the records channel).
struct PersistentHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let codec = try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(MalformedRequestAnswer(), position: .before(codec))
            try pipeline.addHandler(ConnectionPersistence(), position: .before(codec))
            let bound = StoppedDecoderBound()
            try pipeline.addHandler(bound.watch, position: .before(codec))
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(bound.meter, position: .before(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}
