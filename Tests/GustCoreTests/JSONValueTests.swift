import Foundation
import GustCore
import Testing

/// Record values keep integers exact and refuse numbers JSON cannot carry.
struct JSONValueTests {
    @Test(arguments: ["12345678901234567", "9007199254740993", "-9223372036854775808", "9223372036854775807", "0", "-1"])
    func integersRoundTripExactly(_ digits: String) throws {
        let value = try JSONValue.parse(Data(#"{"n": \#(digits)}"#.utf8))
        #expect(String(decoding: value.encoded(), as: UTF8.self) == #"{"n":\#(digits)}"#)
    }

    @Test(arguments: [#"{"n": 1e999999}"#, #"{"n": -1e400}"#, #"{"n": NaN}"#, #"{"n": Infinity}"#])
    func nonFiniteNumbersAreRefused(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue.parse(Data(text.utf8)) }
    }

    @Test func numbersCompareByValue() throws {
        #expect(JSONValue.integer(4) == .number(4))
        #expect(JSONValue.number(4.5) != .integer(4))
        #expect(JSONValue.integer(9_007_199_254_740_993) != .number(9_007_199_254_740_992))
        #expect(try JSONValue.parse(Data("1.5".utf8)) == .number(1.5))
        #expect(try JSONValue.parse(Data("[2.0]".utf8)) == .array([.integer(2)]))
        #expect(JSONValue.integer(123).intValue == 123 && JSONValue.number(1e300).intValue == nil)
    }
}
