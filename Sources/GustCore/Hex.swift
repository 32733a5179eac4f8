/// Bytes as lowercase hex: digests (tokens' hashes, artifacts', image layers'), ids. One place,
/// without `String(format:)` per byte, which a token's check on every private call paid for.
public enum Hex {
    /// The digits, as bytes to index with a nibble.
    public static let lowerDigits = Array("0123456789abcdef".utf8)

    public static func lower<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var hex: [UInt8] = []
        hex.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            hex.append(lowerDigits[Int(byte >> 4)])
            hex.append(lowerDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
