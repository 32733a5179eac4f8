import Crypto
public import Foundation

/// One OpenSSH public key, as a line of `id_ed25519.pub` holds it:
/// `TYPE BASE64 [comment]`.
///
/// The base64 part is decoded and its wire format checked (RFC 4253 §6.6,
/// RFC 5656, RFC 8709), so what lands in `authorized_keys` is a key sshd can
/// use and the fingerprint is the one `ssh-keygen -l` prints for it.
public struct SSHPublicKey: Sendable, Equatable {
    /// The algorithm name, e.g. `ssh-ed25519`.
    public let type: String
    /// The decoded wire blob.
    public let blob: Data
    public let comment: String
    /// Key size in bits: the RSA modulus, the ECDSA curve, 256 for ed25519.
    public let bits: Int

    public static let supportedTypes = [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
    ]
    public static let minimumRSABits = 2048

    public var base64: String { blob.base64EncodedString() }

    /// `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -lf` prints it.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// The line `type base64`, without the comment.
    public var line: String { "\(type) \(base64)" }

    /// Parses the text of a `.pub` file: one key, blank lines and `#` comments allowed.
    ///
    /// Error messages never repeat the input: what someone pastes by mistake
    /// may be a secret.
    public init(parsing text: String) throws(GustError) {
        if text.contains("PRIVATE KEY-----") || text.hasPrefix("PuTTY-User-Key-File") {
            throw GustError(
                "That is a PRIVATE key, not a public one. Gust never needs it: keep it secret, and do not paste it anywhere.",
                hint: "Give Gust the public half instead: the .pub file next to it, or what `ssh-keygen -y -f KEYFILE` prints."
            )
        }
        if text.contains("BEGIN SSH2 PUBLIC KEY") {
            throw GustError(
                "That is an RFC 4716 (SSH2) public key; Gust reads the OpenSSH one-line format.",
                hint: "Convert it with `ssh-keygen -i -f KEYFILE` and add the output."
            )
        }
        let lines = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else {
            throw GustError("No public key given: the input is empty.", hint: Self.formatHint)
        }
        guard lines.count == 1 else {
            throw GustError("The input holds \(lines.count) lines; give exactly one public key.", hint: "Add each key under its own name.")
        }
        let fields = lines[0].split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])) else {
            throw GustError("That is not an OpenSSH public key.", hint: Self.formatHint)
        }
        let type = String(fields[0])
        guard Self.supportedTypes.contains(type) else {
            throw GustError(
                "That is not a supported OpenSSH public key: the first word must be one of \(Self.supportedTypes.joined(separator: ", ")).",
                hint: type.hasPrefix("sk-") ? "Security-key (FIDO) keys are not supported yet; add an ed25519 key." : Self.formatHint
            )
        }
        self.type = type
        self.blob = blob
        comment = fields.dropFirst(2).joined(separator: " ")
        bits = try Self.validate(blob: blob, type: type)
    }

    static let formatHint = "Expected one line like `ssh-ed25519 AAAAC3Nza… you@laptop`, e.g. the contents of ~/.ssh/id_ed25519.pub."

    /// Checks the blob's structure for `type` and returns the key size in bits.
    private static func validate(blob: Data, type: String) throws(GustError) -> Int {
        var reader = WireReader(blob)
        let broken = GustError("The \(type) key is damaged: its base64 part does not decode to a \(type) key.", hint: formatHint)
        guard let inner = reader.string(), String(decoding: inner, as: UTF8.self) == type else { throw broken }
        let bits: Int
        switch type {
        case "ssh-ed25519":
            guard let point = reader.string(), point.count == 32 else { throw broken }
            bits = 256
        case "ssh-rsa":
            guard let exponent = reader.string(), !exponent.isEmpty, let modulus = reader.string() else { throw broken }
            bits = Self.bitLength(ofMPInt: modulus)
            guard bits >= minimumRSABits else {
                throw GustError(
                    "That RSA key has \(bits) bits; Gust accepts RSA keys of \(minimumRSABits) bits or more.",
                    hint: "Make a stronger key with `ssh-keygen -t ed25519` (or `-t rsa -b 4096`) and add its .pub file."
                )
            }
        default:  // ecdsa-sha2-nistpNNN: curve name, then an uncompressed point 04 || X || Y.
            let curve = String(type.dropFirst("ecdsa-sha2-".count))
            let size = ["nistp256": 32, "nistp384": 48, "nistp521": 66][curve] ?? 0
            guard let name = reader.string(), String(decoding: name, as: UTF8.self) == curve,
                let point = reader.string(), point.count == 1 + 2 * size, point.first == 0x04
            else { throw broken }
            bits = Int(curve.dropFirst("nistp".count)) ?? 0
        }
        guard reader.isAtEnd else { throw broken }
        return bits
    }

    /// Bits in a non-negative SSH `mpint` (big-endian, maybe a leading zero byte).
    static func bitLength(ofMPInt bytes: Data) -> Int {
        guard let index = bytes.firstIndex(where: { $0 != 0 }) else { return 0 }
        let significant = bytes.distance(from: index, to: bytes.endIndex)
        return (significant - 1) * 8 + (8 - bytes[index].leadingZeroBitCount)
    }
}

/// Reads SSH wire-format `string`s: a 4-byte big-endian length, then the bytes.
struct WireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ data: Data) { bytes = Array(data) }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func string() -> Data? {
        guard bytes.count - offset >= 4 else { return nil }
        let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= bytes.count - offset - 4 else { return nil }
        defer { offset += 4 + length }
        return Data(bytes[offset + 4..<offset + 4 + length])
    }
}
