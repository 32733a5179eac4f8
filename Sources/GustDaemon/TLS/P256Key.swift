import Crypto
import Foundation
import X509

/// An ECDSA P-256 key, the kind gustd makes for its ACME account and for each
/// certificate it requests: small, fast to handshake with, accepted by every CA.
/// Unchecked: swift-crypto's key is an immutable value that this version does not yet mark Sendable.
struct P256Key: @unchecked Sendable {
    let signing: P256.Signing.PrivateKey

    init() { signing = P256.Signing.PrivateKey() }

    init(pem: String) throws { signing = try P256.Signing.PrivateKey(pemRepresentation: pem) }

    var pem: String { signing.pemRepresentation }
    var certificateKey: Certificate.PrivateKey { Certificate.PrivateKey(signing) }
    var publicKey: Certificate.PublicKey { certificateKey.publicKey }
}
