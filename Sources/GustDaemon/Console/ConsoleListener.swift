import CGustSystem
import Foundation
import GustConsole
import GustCore
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// gustd's web console (`--console HOST:PORT`), a listener of its own beside
/// the public one: the apps' calls never share its port, connections or
/// timeouts, and an admin can firewall it apart. Off unless asked for. With `--https` it is served
/// over the same TLS as the apps (the same certificates by SNI), and its cookies are `Secure`.
enum ConsoleListener {
    /// Where the address bound is written (for `--console 127.0.0.1:0`).
    static func addressFile(_ home: GustHome) -> URL { home.run.appendingPathComponent("gustd.console") }

    static func services(
        _ configuration: RouterConfiguration, supervisor: Supervisor, records: RecordsAPI, domains: CertificateManager?,
        listeners: Listeners, tls: TLSConfiguration?, logger: Logger
    ) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let address = configuration.console else { return [] }
        let file = addressFile(configuration.home)
        let server = ConsoleServer(
            backend: SupervisorConsoleBackend(supervisor: supervisor, records: records.hub, domains: domains), secure: tls != nil,
            trustedProxies: Set(configuration.trustedProxies)
        )
        let scheme = tls == nil ? "http" : "https"
        let listener = try listeners.serve(
            "console", host: address.host, port: address.port, responder: server, http1: .closingIdle(configuration), tls: tls, logger: logger,
            onServerRunning: { channel in
                _ = gust_cloexec_from(3)  // as gustd's other listeners: nothing started by an exec inherits it
                let port = channel.localAddress?.port ?? address.port
                logger.notice("gustd serving the web console at \(scheme)://\(address.host):\(port)/")
            }
        )
        // Written now, the socket bound: before gustd.http, which scripts and tests wait for.
        try? AtomicFile.write(Data("\(address.host):\(listeners.port(of: "console") ?? address.port)\n".utf8), to: file)
        return [.init(service: listener), .init(service: CallHistorySampler(supervisor: supervisor))]
    }
}
