import GustCore

/// The hex digits the gateway writes by hand (percent escapes, JSON escapes, request ids, the
/// access log), as bytes to index with a nibble.
enum HexDigits {
    static let upper = Array("0123456789ABCDEF".utf8)
    static let lower = Hex.lowerDigits
}
