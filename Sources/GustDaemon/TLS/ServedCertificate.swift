import Foundation
import GustCore
import NIOSSL
import SwiftASN1
import X509

/// A certificate chain and its key as the HTTPS listener serves them, with
/// what gustd needs to know of the leaf (when it expires, its serial).
/// Built from PEM, checked once here: the key is the leaf's.
struct ServedCertificate: Sendable {
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey
    let notBefore: Date
    let notAfter: Date
    /// The leaf's serial number in hex, as `openssl x509 -serial` prints it.
    let serial: String
    /// The DNS names the leaf covers (its subject alternative names).
    let names: [String]

    init(chainPEM: String, keyPEM: String) throws {
        let documents = try PEMDocument.parseMultiple(pemString: chainPEM).filter { $0.discriminator == "CERTIFICATE" }
        guard let first = documents.first else { throw GustError("The certificate file holds no PEM certificate.") }
        let leaf = try Certificate(derEncoded: first.derBytes)
        let privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        guard privateKey.publicKey == leaf.publicKey else {
            throw GustError("The private key does not belong to the certificate (their public keys differ).")
        }
        chain = try documents.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
        key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        notBefore = leaf.notValidBefore
        notAfter = leaf.notValidAfter
        serial = leaf.serialNumber.bytes.map { String(format: "%02X", $0) }.joined()
        names = (try? leaf.extensions.subjectAlternativeNames)?.compactMap { name -> String? in
            if case .dnsName(let dns) = name { return dns.lowercased() }
            return nil
        } ?? []
    }

    /// Reads a chain and key from files (`--tls-cert`, `--tls-key`, or the ones gustd keeps).
    init(chainFile: URL, keyFile: URL) throws {
        let chainPEM: String, keyPEM: String
        do {
            chainPEM = try String(contentsOf: chainFile, encoding: .utf8)
            keyPEM = try String(contentsOf: keyFile, encoding: .utf8)
        } catch {
            throw GustError("Cannot read \(chainFile.path) or \(keyFile.path): \(error.localizedDescription)")
        }
        do { try self.init(chainPEM: chainPEM, keyPEM: keyPEM) } catch let error as GustError { throw error } catch {
            throw GustError("\(chainFile.path) and \(keyFile.path) are not a PEM certificate chain and its key: \(error)")
        }
    }

    /// Whether the leaf covers `name`, directly or by a `*.` wildcard one label deep.
    func covers(_ name: String) -> Bool {
        names.contains { pattern in
            if pattern == name { return true }
            guard pattern.hasPrefix("*."), let dot = name.firstIndex(of: ".") else { return false }
            return name[name.index(after: dot)...] == pattern.dropFirst(2)
        }
    }

    /// A fresh self-signed certificate for `gustd.invalid`: what a client that names no domain gustd has a
    /// certificate for gets (and rejects), so that the listener can start before any certificate is issued.
    static func placeholder() throws -> ServedCertificate {
        let key = P256Key()
        let name = try DistinguishedName { CommonName("gustd.invalid") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: now - 60,
            notValidAfter: now + 10 * 365 * 86_400, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("gustd.invalid")]) },
            issuerPrivateKey: key.certificateKey
        )
        return try ServedCertificate(chainPEM: try certificate.serializeAsPEM().pemString, keyPEM: key.pem)
    }
}
