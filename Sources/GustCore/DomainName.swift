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
    private init?(validating raw: some StringProtocol) {
        // Checked before anything is made: most hosts asked about (`127.0.0.1:8080`) are no names.
        guard Self.isValid(raw.utf8, foldingCase: true) else { return nil }
        rawValue = String(decoding: raw.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// The name of a request's `Host` (or SNI), port and one trailing dot removed, if it is a valid name.
    public init?(host: Substring) {
        var name = host
        // Asked of every request's Host (`127.0.0.1:8080` included): a refusal costs no thrown error,
        // and an ASCII host (every valid one) is cut by its bytes, without asking Unicode where
        // characters end; no ASCII character joins a `:` or a `.` to another.
        if host.isASCII {
            if let colon = name.utf8.lastIndex(of: UInt8(ascii: ":")), !name.utf8.contains(UInt8(ascii: "]")) { name = name[..<colon] }
            if name.utf8.last == UInt8(ascii: ".") { name = name[..<name.utf8.index(before: name.endIndex)] }
        } else {
            if let colon = name.lastIndex(of: ":"), !name.contains("]") { name = name[..<colon] }
            if name.hasSuffix(".") { name = name.dropLast() }
        }
        guard let valid = DomainName(validating: name) else { return nil }
        self = valid
    }

    public static func isValid(_ name: String) -> Bool {
        isValid(name.utf8, foldingCase: false)
    }

    /// Whether `bytes` are a valid name (upper case read as lower with `foldingCase`), in one pass
    /// that makes nothing.
    private static func isValid(_ bytes: some Collection<UInt8>, foldingCase: Bool) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        var labels = 0, length = 0, allDigits = true, previous: UInt8 = 0
        for raw in bytes {
            let byte = foldingCase && (65...90).contains(raw) ? raw + 32 : raw
            if byte == UInt8(ascii: ".") {
                // A label ends: 1–63 characters, not ending with '-'.
                guard length > 0, previous != UInt8(ascii: "-") else { return false }
                labels += 1
                length = 0
                allDigits = true
            } else {
                guard isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "-") else { return false }
                guard length > 0 || byte != UInt8(ascii: "-") else { return false }
                length += 1
                guard length <= 63 else { return false }
                allDigits = allDigits && isDigit(byte)
            }
            previous = byte
        }
        guard length > 0, previous != UInt8(ascii: "-") else { return false }
        // At least two labels; 10.0.0.1 or 127.1 is an address, not a name.
        return labels + 1 >= 2 && !allDigits
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// Whether this is `other` or a name under it (`a.b.example.com` is under `example.com`).
    public func isWithin(_ other: String) -> Bool {
        rawValue == other || rawValue.hasSuffix("." + other)
    }

    /// The names above this one that are names themselves (two labels or more), nearest first:
    /// `shop.example.com` for `api.shop.example.com`, then `example.com`.
    public var parents: [DomainName] {
        let labels = rawValue.split(separator: ".")
        guard labels.count > 2 else { return [] }
        return (1...(labels.count - 2)).compactMap { try? DomainName(labels[$0...].joined(separator: ".")) }
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
