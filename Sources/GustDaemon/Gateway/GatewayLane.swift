import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Answers the requests the gateway can answer at once, from the head alone,
/// on the event loop that read them (`Gateway.answerAtOnce`: an app's
/// `/_/health`): no Swift Concurrency task is woken and none of
/// Hummingbird's per-request machinery runs (its `Request` and `Response`, a
/// logger with request-id metadata in a task local, the async channel's
/// iterator and writer). Every other request goes on to Hummingbird as
/// before, and so does every request while one handed on is unanswered, so
/// answers never overtake each other.
///
/// It sits after HummingbirdCore's connection state handler, which therefore
/// sees these requests and their answers as any other (idle timeout,
/// `Connection: close` on quiesce), and before the async channel.
final class GatewayLane: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What to answer a request with from its head alone, or nil to hand it on.
    typealias Answer = @Sendable (HTTPRequest) -> Gateway.ImmediateAnswer?

    private let answer: Answer
    private let dates: HTTPDate
    private let serverName: String
    /// Requests handed on whose answer's end has not been written yet.
    private var handedOn = 0
    /// A request answered here whose `.end` has not arrived yet: its parts go nowhere.
    private var swallowing = false
    /// Answers written since the last flush.
    private var unflushed = false

    init(answer: @escaping Answer, dates: HTTPDate, serverName: String) {
        self.answer = answer
        self.dates = dates
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if handedOn == 0, let answer = answer(head) {
                swallowing = true
                var response = answer.head
                response.headerFields[.date] = dates.now
                response.headerFields[.server] = serverName
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
                context.write(wrapOutboundOut(.end(nil)), promise: nil)
                unflushed = true  // at the end of this read: answers to pipelined requests leave together
                return
            }
            handedOn += 1
            context.fireChannelRead(data)
        case .body:
            if !swallowing { context.fireChannelRead(data) }
        case .end:
            if swallowing { swallowing = false } else { context.fireChannelRead(data) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only Hummingbird's writes come through here: the lane writes from its own place in the pipeline.
        if case .end = unwrapOutboundIn(data) { handedOn = max(0, handedOn - 1) }
        context.write(data, promise: promise)
    }
}

/// The HTTP/1 channel HummingbirdCore serves, with a `GatewayLane` after its
/// connection state handler.
struct GatewayChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let gateway: Gateway
    let dates: HTTPDate
    let serverName: String

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { [gateway, dates, serverName] value in
            let pipeline = channel.pipeline.syncOperations
            let lane = GatewayLane(answer: gateway.answerAtOnce, dates: dates, serverName: serverName)
            try pipeline.addHandler(lane, position: .after(try pipeline.handler(type: HTTPConnectionStateHandler.self)))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}
