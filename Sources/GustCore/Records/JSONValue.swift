public import Foundation

/// Any JSON value, for records whose shape the app decides.
///
/// An integer that fits 64 bits is kept as one (`integer`), so that
/// 12345678901234567 comes back as written rather than rounded to the nearest
/// double; NaN and infinities are refused, since JSON cannot carry them.
/// Numbers compare by value: `.integer(4) == .number(4)`.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let bool = try? container.decode(Bool.self) { self = .bool(bool) }
        else if let integer = try? container.decode(Int64.self) { self = .integer(integer) }
        else if let number = try? container.decode(Double.self) {
            guard number.isFinite else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(number) is not a JSON number")
            }
            self = .number(number)
        }
        else if let string = try? container.decode(String.self) { self = .string(string) }
        else if let array = try? container.decode([JSONValue].self) { self = .array(array) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.integer(let a), .number(let b)), (.number(let b), .integer(let a)): Double(exactly: a) == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    /// The value if it is a whole number that fits an `Int`.
    public var intValue: Int? {
        switch self {
        case .integer(let integer): Int(exactly: integer)
        case .number(let number): Int(exactly: number)
        default: nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let bool): try container.encode(bool)
        case .integer(let integer): try container.encode(integer)
        case .number(let number):
            // Whole numbers print as integers, as the functions that wrote them expect.
            if number.rounded() == number, abs(number) < 1e15 { try container.encode(Int64(number)) } else { try container.encode(number) }
        case .string(let string): try container.encode(string)
        case .array(let array): try container.encode(array)
        case .object(let object): try container.encode(object)
        }
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// JSON text as `JSONDecoder` reads it, in one pass (`JSONText`).
    public static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { raw in try JSONText.parse(raw) }
    }

    /// The value as `JSONEncoder` writes it with `.sortedKeys` and `.withoutEscapingSlashes` (`JSONText`).
    public func encoded() -> Data {
        var out: [UInt8] = []
        JSONText.write(self, to: &out)
        return Data(out)
    }

    /// The value as SQLite compares it against `json_extract`.
    var sqlValue: SQLValue {
        switch self {
        case .null: .null
        case .bool(let bool): .integer(bool ? 1 : 0)
        case .integer(let integer): .integer(integer)
        case .number(let number): number.rounded() == number && abs(number) < 9e15 ? .integer(Int64(number)) : .real(number)
        case .string(let string): .text(string)
        case .array, .object: .text(String(decoding: encoded(), as: UTF8.self))
        }
    }
}
