import NIOCore
import NIOHTTP1

/// Answers bytes that NIO's parser refuses (an unknown method, a bad chunk size, headers past the
/// limit) as every other gustd error is answered: JSON `{"code": N, "error": …}` with its status and
/// `Connection: close`, then closes the connection. HummingbirdCore would answer an empty 400.
///
/// It sits right after the request decoder, so it sees the parser's error first. It still passes
/// the error on: a request whose body was cut short by it must fail in the handler that reads it,
/// not end early as if complete. Hummingbird's own 400 then finds the connection closed. Like
/// NIO's `HTTPServerProtocolErrorHandler`, it writes nothing once an answer has started: a second
/// head in the middle of a body would be garbage to the client.
final class MalformedRequestAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A head has been written and its end not yet.
    private var answering = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        if !answering, context.channel.isActive {
            let (status, message) = Self.answer(to: parserError)
            let body = Gateway.errorJSON(code: Int(status.code), message).buffer
            let headers = HTTPHeaders([
                ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)), ("Connection", "close"),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            answering = true  // nothing more is written on this connection
        }
        context.close(promise: nil)
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: answering = true
        case .end: answering = false
        default: break
        }
        context.write(data, promise: promise)
    }

    /// The status and the sentence for what the parser refused.
    static func answer(to error: HTTPParserError) -> (HTTPResponseStatus, String) {
        let what: String
        switch error {
        case .headerOverflow:
            return (.requestHeaderFieldsTooLarge, "The request's headers are larger than gustd reads.")
        case .invalidVersion: what = "its HTTP version is not one gustd reads (HTTP/1.0 and HTTP/1.1)"
        case .invalidMethod: what = "its method is not an HTTP method"
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            what = "its target is not a valid URL path"
        case .invalidHeaderToken, .invalidCharactersUsed: what = "a header's name or value has characters HTTP does not allow"
        case .invalidContentLength, .unexpectedContentLength: what = "its Content-Length is not valid or not allowed here"
        case .invalidChunkSize: what = "a chunk's size is not valid"
        default: what = "it is not valid HTTP/1.1 (\(error))"
        }
        return (.badRequest, "The request is malformed: \(what).")
    }
}
