import Crypto
import Foundation

/// RFC 7515 JSON Web Signatures as ACME wants them (RFC 8555 §6.2): ES256 over
/// `protected.payload`, flattened JSON, the account key's JWK until the account
/// is known and its URL (`kid`) after.
struct JWS {
    let key: P256Key

    /// The account key as a JWK, members in the order RFC 7638 hashes them.
    var jwk: String {
        let point = key.signing.publicKey.x963Representation  // 0x04 || X || Y
        let x = Base64URL.encode(point.dropFirst().prefix(32))
        let y = Base64URL.encode(point.dropFirst(33))
        return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
    }

    /// RFC 7638 thumbprint: the second half of every key authorization.
    var thumbprint: String { Base64URL.encode(SHA256.hash(data: Data(jwk.utf8))) }

    /// The request body for `url`: `payload` nil is POST-as-GET (an empty payload).
    func sign(url: String, nonce: String, kid: String?, payload: Data?) throws -> Data {
        let identity = kid.map { #""kid":\#(JSONString.quote($0))"# } ?? #""jwk":\#(jwk)"#
        let protected = #"{"alg":"ES256",\#(identity),"nonce":\#(JSONString.quote(nonce)),"url":\#(JSONString.quote(url))}"#
        let protected64 = Base64URL.encode(Data(protected.utf8))
        let payload64 = payload.map { Base64URL.encode($0) } ?? ""
        let signature = try key.signing.signature(for: Data("\(protected64).\(payload64)".utf8))
        let body = #"{"protected":"\#(protected64)","payload":"\#(payload64)","signature":"\#(Base64URL.encode(signature.rawRepresentation))"}"#
        return Data(body.utf8)
    }
}

enum Base64URL {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func encode(_ digest: SHA256.Digest) -> String { encode(Array(digest)) }
}

enum JSONString {
    /// `text` as a JSON string literal.
    static func quote(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

extension JWS {
    static func sha256(_ data: Data) -> [UInt8] { Array(SHA256.hash(data: data)) }
}
