public import Hummingbird
import NIOCore

/// Hummingbird's basic request context plus the peer's address: a trusted
/// proxy's `X-Forwarded-Proto: https` makes the console's cookies `Secure`.
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address, if known.
    let peer: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress
    }
}
