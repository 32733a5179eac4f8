import HummingbirdCore
import NIOCore

extension HTTP1Channel.Configuration {
    /// For gustd's listeners besides the apps' (the console's, the metrics'): a connection whose
    /// request head has not all come within `--header-timeout`, or that stays idle for
    /// `--idle-timeout`, is closed, as on the apps' listener. They share its connection budget,
    /// and any app's code can reach them on loopback: connections held open there for good
    /// would stop gustd accepting on every listener.
    static func closingIdle(_ configuration: RouterConfiguration) -> Self {
        .init(
            additionalChannelHandlers: [RequestHeadDeadline(timeout: TimeAmount(configuration.headerTimeout))],
            idleTimeout: TimeAmount(configuration.idleTimeout)
        )
    }
}
