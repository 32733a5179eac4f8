import Hummingbird
import NIOCore

/// Hummingbird's basic request context plus the request's channel: the
/// gateway asks it whether the client is still there while a call waits for
/// its instance, and closes it when a body does not arrive in time.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
