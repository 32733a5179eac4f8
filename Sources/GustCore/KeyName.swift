/// A validated SSH key name: `[a-z0-9][a-z0-9._-]{0,63}`.
///
/// The name ends up inside the forced command of an `authorized_keys` line,
/// so it may hold nothing a shell or sshd's option parser would read specially.
public struct KeyName: Hashable, Sendable, CustomStringConvertible, Codable, Comparable {
    public let rawValue: String

    public static let rule = "a key name starts with a-z or 0-9 and has at most 64 characters of a-z, 0-9, '.', '_' and '-'"

    public init(_ raw: String) throws(GustError) {
        guard Self.isValid(raw) else {
            throw GustError("'\(raw.prefix(80))' is not a valid key name: \(Self.rule).", hint: "For example: alice, alice-laptop, ci.deploy")
        }
        rawValue = raw
    }

    public static func isValid(_ raw: String) -> Bool {
        let bytes = Array(raw.utf8)
        func isLowerOrDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard let first = bytes.first, bytes.count <= 64, isLowerOrDigit(first) else { return false }
        return bytes.allSatisfy { isLowerOrDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    public var description: String { rawValue }

    public static func < (lhs: KeyName, rhs: KeyName) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self = try KeyName(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
