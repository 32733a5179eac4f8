import NIOCore

/// One upgraded connection relayed between a client and an instance: every byte
/// each side sends reaches the other as it comes, until either side closes, the
/// socket is idle for `idleTimeout`, or gustd makes it go (a deploy, gustd
/// stopping): then each side gets a close frame (1001, going away) between two of
/// the other's frames, and both connections close a moment later whatever
/// happens. A client frame declaring more than `maxFrameBytes` ends it with 1009.
///
/// Both channels live on one event loop (the instance connection is made on the
/// client's), so the two halves hand bytes to each other synchronously, as
/// SwiftNIO's own proxy examples do. Everything here runs on that loop.
final class WebSocketSplice {
    let loop: any EventLoop
    let client: WebSocketSpliceHandler
    let instance: WebSocketSpliceHandler
    private let idleTimeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var goingAway = false
    /// Completes once both connections are closed.
    let closed: EventLoopFuture<Void>

    /// How long the close frames get to leave before both connections close.
    static let closeGrace = TimeAmount.seconds(2)

    init(loop: any EventLoop, clientChannel: any Channel, instanceChannel: any Channel, maxFrameBytes: Int, idleTimeout: TimeAmount) {
        self.loop = loop
        self.idleTimeout = idleTimeout
        client = WebSocketSpliceHandler(side: .client, frames: WebSocketFrames(maxPayload: maxFrameBytes))
        instance = WebSocketSpliceHandler(side: .instance, frames: WebSocketFrames(maxPayload: .max))
        closed = clientChannel.closeFuture.and(instanceChannel.closeFuture).map { _ in }
        client.splice = self
        instance.splice = self
        client.partner = instance
        instance.partner = client
        clientChannel.closeFuture.whenComplete { _ in instanceChannel.close(promise: nil) }
        instanceChannel.closeFuture.whenComplete { _ in clientChannel.close(promise: nil) }
        closed.assumeIsolated().whenComplete { [self] _ in
            idleTimer?.cancel()
            client.partner = nil
            instance.partner = nil
            client.splice = nil
            instance.splice = nil
        }
        armIdleTimer(in: idleTimeout)
    }

    func touch() { lastActivity = .now() }

    private func armIdleTimer(in delay: TimeAmount) {
        idleTimer = loop.assumeIsolated().scheduleTask(in: delay) { [self] in
            let idle = NIODeadline.now() - lastActivity
            if idle >= idleTimeout { goAway(code: 1001) } else { armIdleTimer(in: idleTimeout - idle) }
        }
    }

    /// Sends each side a close frame with `code` as soon as the bytes flowing to it
    /// are between two frames, stops relaying, and closes both connections after
    /// `closeGrace`. Call on the loop.
    func goAway(code: UInt16) {
        guard !goingAway else { return }
        goingAway = true
        // What the instance sends is cut where its frames allow, then the client hears the close; and the other way.
        instance.cut(sending: WebSocketFrames.close(code: code))
        client.cut(sending: WebSocketFrames.close(code: code, mask: (
            UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255)
        )))
        let (clientContext, instanceContext) = (client.context, instance.context)
        loop.assumeIsolated().scheduleTask(in: Self.closeGrace) {
            clientContext?.close(promise: nil)
            instanceContext?.close(promise: nil)
        }
    }

    /// From any thread: `goAway(code:)` on the loop.
    static func goAway(_ splice: NIOLoopBound<WebSocketSplice>, code: UInt16) {
        splice.eventLoop.execute { splice.value.goAway(code: code) }
    }
}

/// One side of a `WebSocketSplice`, in its connection's pipeline: what arrives is
/// written to the other side's connection, and reading stops while that one
/// cannot take more (a slow reader holds back a fast writer rather than fill gustd's memory).
final class WebSocketSpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = ByteBuffer

    enum Side { case client, instance }

    let side: Side
    private var frames: WebSocketFrames
    fileprivate(set) var context: ChannelHandlerContext?
    fileprivate var partner: WebSocketSpliceHandler?
    fileprivate var splice: WebSocketSplice?
    private var pendingRead = false
    /// A close frame to send the partner once what this side sends is between frames.
    private var closeToSend: ByteBuffer?
    /// Nothing more this side sends is relayed.
    private var isCut = false

    init(side: Side, frames: WebSocketFrames) {
        self.side = side
        self.frames = frames
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isCut, let partner else { return }
        splice?.touch()
        var buffer = unwrapInboundIn(data)
        do {
            if let close = closeToSend {
                let length = try frames.read(buffer, stopAtBoundary: true)
                if length > 0, let whole = buffer.readSlice(length: length) { partner.send(whole, flush: false) }
                if frames.atBoundary { sendCut(close, to: partner) }
                return
            }
            _ = try frames.read(buffer)
            partner.send(buffer, flush: false)
        } catch {
            // A frame larger than gustd takes: nothing of it is relayed, and the socket ends with 1009.
            isCut = true
            splice?.instance.cut(sending: WebSocketFrames.close(code: 1009))
            let contexts = (context, partner.context)
            context.eventLoop.assumeIsolated().scheduleTask(in: WebSocketSplice.closeGrace) {
                contexts.0.close(promise: nil)
                contexts.1?.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
        if partner?.isWritable ?? false { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? true { context.read() } else { pendingRead = true }
    }

    /// Whatever else is written on this pipeline (Hummingbird's answer to the
    /// upgrade request, which the guard already swallows) never reaches the socket.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()
    }

    /// The 101 that opens the socket, written before anything the instance sends.
    func sendHead(_ head: ByteBuffer) { send(head, flush: true) }

    // MARK: For the partner and the splice

    fileprivate var isWritable: Bool { context?.channel.isWritable ?? false }

    fileprivate func send(_ buffer: ByteBuffer, flush: Bool) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    fileprivate func flush() { context?.flush() }

    private func partnerBecameWritable() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    /// Stops relaying what this side sends once it is between frames, then sends
    /// `close` to the partner (a close frame of gustd's own).
    fileprivate func cut(sending close: ByteBuffer) {
        guard !isCut, closeToSend == nil else { return }
        if frames.atBoundary, let partner {
            sendCut(close, to: partner)
        } else {
            closeToSend = close
        }
    }

    private func sendCut(_ close: ByteBuffer, to partner: WebSocketSpliceHandler) {
        isCut = true
        closeToSend = nil
        partner.send(close, flush: true)
    }
}
