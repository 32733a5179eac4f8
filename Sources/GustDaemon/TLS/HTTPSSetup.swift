import AsyncHTTPClient
import Foundation
import GustCore
import Logging
import NIOSSL

/// What `--https` needs made at start: the SNI table (with the operator's own
/// certificate, if given) and, unless ACME is off, the ACME client with its
/// account key (`GUST_HOME/tls/acme/`, one per CA directory, 0600) and the
/// HTTP client it speaks through. Errors here stop gustd before it serves.
struct HTTPSSetup {
    let certificates: SNICertificates?
    let acme: ACMEClient?
    private let client: HTTPClient?

    init(_ configuration: RouterConfiguration, logger: Logger) throws {
        guard configuration.https != nil else {
            (certificates, acme, client) = (nil, nil, nil)
            return
        }
        let own = try configuration.ownCertificate.map { files in
            let served = try ServedCertificate(chainFile: URL(fileURLWithPath: files.chain), keyFile: URL(fileURLWithPath: files.key))
            logger.notice("HTTPS: own certificate for \(served.names.joined(separator: ", ")), expires \(served.notAfter)")
            return served
        }
        certificates = try SNICertificates(own: own)
        guard let settings = configuration.acme else {
            (acme, client) = (nil, nil)
            logger.notice("HTTPS: ACME off; the apps' own domains are served with the own certificate only")
            return
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let bundle = settings.caBundle { tls.trustRoots = .file(bundle) }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        self.client = client
        let key = try Self.accountKey(configuration.home, directory: settings.directory)
        acme = ACMEClient(directoryURL: settings.directory, email: settings.email, accountKey: key, http: client)
        logger.notice("HTTPS: certificates for the apps' own domains from \(settings.directory) (HTTP-01 on the HTTP port)")
    }

    /// The account key for a CA directory: made on first use and kept, so the account is found again.
    static func accountKey(_ home: GustHome, directory: String) throws -> P256Key {
        let folder = home.tls.appendingPathComponent("acme")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let name = Base64URL.encode(Array(JWS.sha256(Data(directory.utf8)).prefix(12)))
        let file = folder.appendingPathComponent("account-\(name).pem")
        if let pem = try? String(contentsOf: file, encoding: .utf8) { return try P256Key(pem: pem) }
        let key = P256Key()
        try AtomicFile.write(Data(key.pem.utf8), to: file, mode: 0o600)
        return key
    }

    func shutdown() async {
        try? await client?.shutdown()
    }
}
