/// A validated host name a user gives an app (`gust domains add APP example.com`):
/// lower-case letters, digits and hyphens in dot-separated labels, as DNS and
/// certificate authorities accept them.
///
/// The name reaches SQL, the certificate store's paths, TLS (SNI) and ACME, and
/// may come from a scoped SSH key, so it is checked strictly: at least two labels
/// of 1–63 characters, none starting or ending with '-', at most 253 characters,
/// a top-level label that is not all digits (no IP addresses), no wildcard, no
/// trailing dot. Upper case is folded; anything outside ASCII is refused (write
/// an internationalised name in its `xn--` form).
public struct DomainName: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: String

    public static let rule = "a domain is lower-case labels of a-z, 0-9 and '-' (not at either end of a label) joined by dots, like app.example.com"

    public init(_ raw: String) throws(GustError) {
        guard let name = Self(validating: raw) else {
            throw GustError("'\(raw.prefix(80))' is not a domain name: \(Self.rule).")
        }
        self = name
    }

    /// The name, lower-cased, if it is valid: no error is made for one that is not.
    private init?(validating raw: String) {
        let lowered = String(decoding: raw.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
        guard Self.isValid(lowered) else { return nil }
        rawValue = lowered
    }

    /// The name of a request's `Host` (or SNI), port and one trailing dot removed, if it is a valid name.
    public init?(host: Substring) {
        var name = host
        if let colon = name.lastIndex(of: ":"), !name.contains("]") { name = name[..<colon] }
        if name.hasSuffix(".") { name = name.dropLast() }
        // Asked of every request's Host (`127.0.0.1:8080` included): a refusal costs no thrown error.
        guard let valid = DomainName(validating: String(name)) else { return nil }
        self = valid
    }

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
            guard label.allSatisfy({ isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") }) else { return false }
        }
        // 10.0.0.1 or 127.1: an address, not a name.
        return !labels.last!.allSatisfy(isDigit)
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// Whether this is `other` or a name under it (`a.b.example.com` is under `example.com`).
    public func isWithin(_ other: String) -> Bool {
        rawValue == other || rawValue.hasSuffix("." + other)
    }

    public var description: String { rawValue }

    public static func < (lhs: DomainName, rhs: DomainName) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self = try DomainName(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
