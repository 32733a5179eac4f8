import Foundation
import NIOCore
import NIOHTTP1

/// Bounds what a connection may send after a request NIO's parser stops at.
///
/// llhttp takes a request with `Connection: upgrade` and an `Upgrade` field, and every `CONNECT`,
/// as the last HTTP on its connection: NIO's decoder then parses nothing more, and every later
/// byte waits in its buffer, which has no bound, for as long as the connection lasts (past 4 GiB
/// NIO traps). No timer counts those bytes as use. So any client of the apps' listeners, and any
/// app's code on its records channel, could grow gustd's memory at the speed of its socket.
///
/// Two handlers share the count: `watch`, after the decoder, sees such a request's head; `meter`,
/// before it, counts the bytes that reach the decoder after that, and closes the connection past
/// `limit`. A WebSocket's bytes never reach the decoder once its splice has taken the socket.
final class StoppedDecoderBound {
    /// What may follow such a head before the connection is closed: more than a client waiting for
    /// its answer has any reason to send (a WebSocket client sends nothing before the 101).
    static let limit = 64 * 1024

    let watch: Watch
    let meter: Meter

    init() {
        let bound = Shared()
        watch = Watch(bound)
        meter = Meter(bound)
    }

    /// The state both handlers read and write, on the connection's event loop.
    final class Shared {
        var stopped = false
        var after = 0
    }

    /// After the decoder: marks the connection once a head llhttp stops at has been read.
    final class Watch: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        private let shared: Shared

        init(_ shared: Shared) { self.shared = shared }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if !shared.stopped, case .head(let head) = unwrapInboundIn(data), Self.stopsTheParser(head) {
                shared.stopped = true
            }
            context.fireChannelRead(data)
        }

        /// Whether llhttp takes `head` as the last HTTP of its connection.
        static func stopsTheParser(_ head: HTTPRequestHead) -> Bool {
            if head.method == .CONNECT { return true }
            guard head.headers.contains(name: "upgrade") else { return false }
            return head.headers["connection"].contains { value in
                value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "upgrade" }
            }
        }
    }

    /// Before the decoder: counts what reaches it once the parser has stopped.
    final class Meter: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        private let shared: Shared

        init(_ shared: Shared) { self.shared = shared }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if shared.stopped {
                shared.after += unwrapInboundIn(data).readableBytes
                if shared.after > StoppedDecoderBound.limit {
                    context.close(promise: nil)
                    return
                }
            }
            context.fireChannelRead(data)
        }
    }
}
