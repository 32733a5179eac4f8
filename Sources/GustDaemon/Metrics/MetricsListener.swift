import CGustSystem
import Foundation
import GustCore
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// gustd's metrics listener, a service of its own beside the public HTTP one
/// (`--metrics HOST:PORT`): scrapes never share a port, a connection limit or
/// a timeout with the apps' traffic, and an admin can firewall it apart.
enum MetricsListener {
    /// Where the address bound is written (for `--metrics 127.0.0.1:0`).
    static func addressFile(_ home: GustHome) -> URL { home.run.appendingPathComponent("gustd.metrics") }

    /// The listener, when `--metrics` was given; none otherwise, and nothing is counted.
    static func services(
        _ configuration: RouterConfiguration, supervisor: Supervisor, listeners: Listeners, logger: Logger
    ) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let address = configuration.metrics else { return [] }
        let registry = GustMetrics.bootstrap()
        let file = addressFile(configuration.home)
        let listener = try listeners.serve(
            "metrics", host: address.host, port: address.port,
            responder: MetricsEndpoint(registry: registry, supervisor: supervisor), http1: .closingIdle(configuration), logger: logger,
            onServerRunning: { channel in
                _ = gust_cloexec_from(3)  // as gustd's other listeners: nothing started by an exec inherits it
                let port = channel.localAddress?.port ?? address.port
                logger.notice("gustd serving metrics at http://\(address.host):\(port)/metrics")
            }
        )
        // Written now, the socket bound: before gustd.http, which scripts and tests wait for.
        try? AtomicFile.write(Data("\(address.host):\(listeners.port(of: "metrics") ?? address.port)\n".utf8), to: file)
        return [.init(service: listener)]
    }
}
