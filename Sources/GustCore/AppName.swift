/// A validated app name: `[a-z][a-z0-9-]{0,62}`.
///
/// Nothing a user types ever becomes a path without passing through this type,
/// so every path built from an `AppName` stays inside `GUST_HOME`.
public struct AppName: Hashable, Sendable, CustomStringConvertible, Codable, Comparable {
    public let rawValue: String

    public static let rule = "an app name starts with a lower-case letter and has at most 63 characters of a-z, 0-9 and '-'"

    public init(_ raw: String) throws(GustError) {
        guard Self.isValid(raw) else {
            throw GustError("'\(raw.prefix(80))' is not a valid app name: \(Self.rule).")
        }
        rawValue = raw
    }

    public static func isValid(_ raw: String) -> Bool {
        // By the string's own bytes: every request that names an app by its path is checked here.
        let bytes = raw.utf8
        guard let first = bytes.first, bytes.count <= 63, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            return false
        }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: AppName, rhs: AppName) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = try AppName(raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
