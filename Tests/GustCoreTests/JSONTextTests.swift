import Foundation
import GustTesting
import Testing

@testable import GustCore

/// Gust's own JSON reader and writer read and write what Foundation's do: records written before
/// read the same, and answers keep their bytes. Foundation is the reference here, not a mock.
@Suite struct JSONTextTests {
    static func foundation(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func foundationBytes(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    @Test(arguments: [
        "{}", "[]", "null", "true", "false", "0", "-0", "1.0", "1e2", "1.5E-3", "-12.25", "12345678901234567890",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e308", "5e-324", "0.1",
        #""""#, #""a/b\/c""#, #""\"\\\b\f\n\r\t""#, #""\u00e9\u0000\u001F""#, #""\ud83d\ude00""#, #""é😀""#,
        #"{"a":1,"a":2}"#, #"{"b":[1,{"c":null}],"a":"x"}"#, " \n\t[1 , 2 ]\r\n", "\u{FEFF}[1]",
        #"{"é":1,"e\u0301":2}"#, "[1,]", #"{"a":1,}"#,
    ])
    func validTextReadsAsFoundationReadsIt(_ text: String) throws {
        let ours = try JSONValue.parse(Data(text.utf8))
        let theirs = try #require(Self.foundation(text), "Foundation reads \(text)")
        #expect(ours == theirs, "\(text)")
    }

    @Test(arguments: [
        "", " ", "01", "-", "1.", ".5", "1e", "1e+", "+1", "1E400", "-1e400", "[1,2", "[,]", "[1,,]", "{,}", "{\"a\"}", "{\"a\":1,,}",
        "{a:1}", "'a'", "tru", "nul", "[1] 2", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"a\u{1}b\"", "\"a\nb\"", "NaN", "Infinity", "[1 2]",
        String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
    ])
    func malformedTextIsRefusedAsFoundationRefusesIt(_ text: String) {
        #expect(throws: (any Error).self, "\(text)") { try JSONValue.parse(Data(text.utf8)) }
        #expect(Self.foundation(text) == nil, "Foundation refuses \(text) too")
    }

    @Test func invalidUTF8AndDeepNestingAtTheBound() throws {
        #expect(throws: (any Error).self) { try JSONValue.parse(Data([0x22, 0xFF, 0x22])) }
        #expect(throws: (any Error).self) { try JSONValue.parse(Data([0x22, 0x5C, 0x6E, 0xC3, 0x22])) }
        let deep = String(repeating: "[", count: JSONText.maxDepth) + String(repeating: "]", count: JSONText.maxDepth)
        #expect(try JSONValue.parse(Data(deep.utf8)) == Self.foundation(deep))
    }

    /// A thousand values of every kind, made by a seeded generator: written as Foundation writes
    /// them, byte for byte, and read back as they were.
    @Test func randomValuesWriteAsFoundationWritesThemAndReadBack() throws {
        var random = SplitMix(seed: 20261207)
        for _ in 0..<1000 {
            let value = Self.randomValue(depth: 0, using: &random)
            let ours = String(decoding: value.encoded(), as: UTF8.self)
            #expect(ours == Self.foundationBytes(value))
            #expect(try JSONValue.parse(Data(ours.utf8)) == value, "\(ours)")
        }
    }

    static let keys = ["", "a", "A", "b", "B", "a10", "a2", "1", "10", "2", "_", "~", "É", "é", "e\u{301}", "ａ", "😀", "k\"q", "tab\t", "nul\u{0}", "/"]

    static func randomValue(depth: Int, using random: inout SplitMix) -> JSONValue {
        switch Int.random(in: 0..<(depth < 4 ? 8 : 6), using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .integer(Int64.random(in: Int64.min...Int64.max, using: &random) >> Int64.random(in: 0..<63, using: &random))
        case 3:
            let choices: [Double] = [0.1, -2.5, 1e15, 1e16, 1e-7, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 123456789.125, -0.0, 3.0, 1e21]
            return Bool.random(using: &random) ? .number(choices.randomElement(using: &random)!)
                : .number(Double.random(in: -1e6...1e6, using: &random))
        case 4, 5:
            let scalars = (0..<Int.random(in: 0..<12, using: &random)).map { _ -> Character in
                let pool: [UInt32] = [0x00, 0x01, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1F, 0x20, 0x22, 0x2F, 0x5C, 0x41, 0x7F, 0xE9, 0x2028, 0x1F600]
                return Character(Unicode.Scalar(pool.randomElement(using: &random)!)!)
            }
            return .string(String(scalars))
        case 6: return .array((0..<Int.random(in: 0..<5, using: &random)).map { _ in randomValue(depth: depth + 1, using: &random) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0..<6, using: &random) {
                members[keys.randomElement(using: &random)!] = randomValue(depth: depth + 1, using: &random)
            }
            return .object(members)
        }
    }
}
