import HTTPTypes
import NIOHTTPTypes
import NIOCore

/// Lets a connection between requests finish gracefully when its listener
/// drains (a handover, a restart): HummingbirdCore closes such a connection
/// at once on `ChannelShouldQuiesceEvent`, and a client that had just sent a
/// request on it, or that connected a moment before the listener stopped
/// accepting, then sees it reset with no answer. Here the event waits for the
/// next request head: that request is answered with `Connection: close`; a
/// connection still quiet after its grace is closed. A connection that has not
/// sent its first request yet gets the longer `firstRequestGrace`: it was
/// accepted in the instant before the listener stopped, its client is sending
/// now, and on a loaded machine its bytes can take more than a keep-alive
/// connection's `grace` to be read (seen: one reset in a restart under load).
/// One in the middle of a request gets the event at once (closed after its
/// response, as before).
///
/// It sits after the HTTP codec, just before HummingbirdCore's connection
/// state handler, and passes every request and response part straight on.
final class QuiesceGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let grace: TimeAmount
    private let firstRequestGrace: TimeAmount
    private var inProgress = 0
    private var sawRequest = false
    private var held: Scheduled<Void>?
    /// Told to quiesce: the responses from now on say `Connection: close`, so that the client
    /// does not send another request on a connection about to close.
    private var quiescing = false

    init(grace: TimeAmount = .seconds(2), firstRequestGrace: TimeAmount = .seconds(10)) {
        self.grace = grace
        self.firstRequestGrace = firstRequestGrace
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let isHead = if case .head = unwrapInboundIn(data) { true } else { false }
        if isHead {
            inProgress += 1
            sawRequest = true
        }
        context.fireChannelRead(data)
        if isHead, let held {
            held.cancel()
            self.held = nil
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where quiescing:
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            inProgress = max(0, inProgress - 1)
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard !quiescing else { return }  // once is what HummingbirdCore expects
        quiescing = true
        guard inProgress == 0 else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        held = context.eventLoop.assumeIsolated().scheduleTask(in: sawRequest ? grace : firstRequestGrace) { [self] in
            held = nil
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// A request was taken before the HTTP codec (`PlainLane`), where this gate does not see it: the
    /// connection, if it drains, is one between requests, with `grace`.
    func requestTakenBeforeCodec() {
        sawRequest = true
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held?.cancel()
        held = nil
    }
}
