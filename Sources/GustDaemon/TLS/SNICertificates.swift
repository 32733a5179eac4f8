import GustCore
import NIOCore
import NIOSSL
import Synchronization

/// The certificates the HTTPS listener chooses from by the name a client asks
/// for (SNI), swapped in as they are issued and renewed: a handshake reads the
/// table once, so a connection already open keeps the certificate it began
/// with while new ones get the new one, and no request fails over a renewal.
///
/// Choice: the certificate issued for exactly that name; else the operator's own
/// (`--tls-cert`, typically `*.DOMAIN`); else a self-signed placeholder, which no
/// client trusts (a name gustd has no certificate for is refused, not mis-served).
final class SNICertificates: Sendable {
    private let issued = Mutex<[DomainName: ServedCertificate]>([:])
    /// `--tls-cert`/`--tls-key`, or the placeholder: what the listener's base configuration holds.
    let fallback: ServedCertificate

    init(own: ServedCertificate?) throws {
        fallback = try own ?? ServedCertificate.placeholder()
    }

    func install(_ certificate: ServedCertificate, for name: DomainName) {
        issued.withLock { $0[name] = certificate }
    }

    func remove(_ name: DomainName) { _ = issued.withLock { $0.removeValue(forKey: name) } }

    func certificate(for name: DomainName) -> ServedCertificate? { issued.withLock { $0[name] } }

    /// What a handshake asking for `serverName` is given; nil: the fallback.
    func choose(_ serverName: String?) -> ServedCertificate? {
        guard let serverName, let name = DomainName(host: Substring(serverName)) else { return nil }
        return issued.withLock { $0[name] }
    }

    /// The listener's TLS: 1.2 and 1.3 only, HTTP/1.1, the certificate chosen per handshake.
    func serverConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: fallback.chain.map { .certificate($0) }, privateKey: .privateKey(fallback.key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        configuration.sslContextCallback = { [self] values, promise in
            guard let chosen = choose(values.serverHostname) else { return promise.succeed(.noChanges) }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chosen.chain.map { .certificate($0) }
            override.privateKey = .privateKey(chosen.key)
            promise.succeed(override)
        }
        return configuration
    }
}
