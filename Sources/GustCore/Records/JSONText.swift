import Foundation

/// JSON text to `JSONValue` and back, byte by byte, reading and writing what Foundation's
/// `JSONDecoder` and `JSONEncoder` (`.sortedKeys`, `.withoutEscapingSlashes`) read and write.
///
/// Why not theirs: `JSONValue`'s `Codable` decoding tries each type in turn, and a miss is a thrown
/// error, so a record of tiny values (`{"a":[{},{},…]}`, under the 1 MiB bound) took 1.5 s to read
/// and 0.7 s to write, on the one thread every app's record writes share. Records, their queries'
/// filters and hooks' answers are all read here.
enum JSONText {
    /// How deep arrays and objects may nest, as Foundation's reader allows.
    static let maxDepth = 512

    struct Malformed: Error, CustomStringConvertible {
        var offset: Int
        var reason: String
        var description: String { "Malformed JSON at byte \(offset): \(reason)" }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws(Malformed) -> JSONValue {
        var reader = Reader(bytes: bytes)
        // A UTF-8 byte order mark, which Foundation's reader skips.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { reader.offset = 3 }
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.offset == bytes.count else { throw reader.malformed("text after the value") }
        return value
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        func malformed(_ reason: String) -> Malformed { Malformed(offset: offset, reason: reason) }

        var next: UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func skipSpace() {
            while let byte = next, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { offset += 1 }
        }

        mutating func expect(_ word: String, _ value: JSONValue) throws(Malformed) -> JSONValue {
            for byte in word.utf8 {
                guard next == byte else { throw malformed("not a JSON value") }
                offset += 1
            }
            return value
        }

        mutating func value(depth: Int) throws(Malformed) -> JSONValue {
            guard let byte = next else { throw malformed("the text ended where a value was due") }
            switch byte {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw malformed("not a JSON value")
            }
        }

        mutating func array(depth: Int) throws(Malformed) -> JSONValue {
            guard depth <= JSONText.maxDepth else { throw malformed("nested more than \(JSONText.maxDepth) deep") }
            offset += 1
            var items: [JSONValue] = []
            skipSpace()
            if next == UInt8(ascii: "]") {
                offset += 1
                return .array(items)
            }
            while true {
                skipSpace()
                // A comma before the end, which Foundation's reader lets pass.
                if next == UInt8(ascii: "]"), !items.isEmpty {
                    offset += 1
                    return .array(items)
                }
                items.append(try value(depth: depth))
                skipSpace()
                switch next {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "]"):
                    offset += 1
                    return .array(items)
                default: throw malformed("an array's items are not followed by ',' or ']'")
                }
            }
        }

        mutating func object(depth: Int) throws(Malformed) -> JSONValue {
            guard depth <= JSONText.maxDepth else { throw malformed("nested more than \(JSONText.maxDepth) deep") }
            offset += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if next == UInt8(ascii: "}") {
                offset += 1
                return .object(members)
            }
            while true {
                skipSpace()
                if next == UInt8(ascii: "}"), !members.isEmpty {
                    offset += 1
                    return .object(members)
                }
                guard next == UInt8(ascii: "\"") else { throw malformed("an object's key is not a string") }
                let key = try string()
                skipSpace()
                guard next == UInt8(ascii: ":") else { throw malformed("an object's key is not followed by ':'") }
                offset += 1
                skipSpace()
                let item = try value(depth: depth)
                // The first of a repeated key wins, as with Foundation's reader.
                if members[key] == nil { members[key] = item }
                skipSpace()
                switch next {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "}"):
                    offset += 1
                    return .object(members)
                default: throw malformed("an object's members are not followed by ',' or '}'")
                }
            }
        }

        /// A string from its opening quote: UTF-8 checked, escapes read, a lone surrogate refused.
        mutating func string() throws(Malformed) -> String {
            offset += 1
            let start = offset
            // Most strings have no escape: checked and made in one go.
            while let byte = next, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                guard byte >= 0x20 else { throw malformed("a control character in a string") }
                offset += 1
            }
            guard let stop = next else { throw malformed("a string is not closed") }
            if stop == UInt8(ascii: "\"") {
                defer { offset += 1 }
                return try text(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
            }
            var buffer = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
            while true {
                guard let byte = next else { throw malformed("a string is not closed") }
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    guard let text = buffer.withUnsafeBytes({ String(validating: $0, as: UTF8.self) }) else {
                        throw malformed("a string that is not UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard let escaped = next else { throw malformed("a string is not closed") }
                    offset += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escaped)
                    case UInt8(ascii: "b"): buffer.append(0x08)
                    case UInt8(ascii: "f"): buffer.append(0x0C)
                    case UInt8(ascii: "n"): buffer.append(0x0A)
                    case UInt8(ascii: "r"): buffer.append(0x0D)
                    case UInt8(ascii: "t"): buffer.append(0x09)
                    case UInt8(ascii: "u"): try appendEscapedScalar(to: &buffer)
                    default: throw malformed("an unknown escape in a string")
                    }
                case 0..<0x20:
                    throw malformed("a control character in a string")
                default:
                    buffer.append(byte)
                    offset += 1
                }
            }
        }

        func text(_ raw: UnsafeRawBufferPointer) throws(Malformed) -> String {
            guard let text = String(validating: raw, as: UTF8.self) else { throw malformed("a string that is not UTF-8") }
            return text
        }

        /// `\uXXXX` (the `\u` read), with a surrogate pair's second half.
        mutating func appendEscapedScalar(to buffer: inout [UInt8]) throws(Malformed) {
            var value = try hex4()
            if (0xD800..<0xDC00).contains(value) {
                guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    throw malformed("a lone surrogate in a string")
                }
                offset += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw malformed("a lone surrogate in a string") }
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(value) {
                throw malformed("a lone surrogate in a string")
            }
            buffer.append(contentsOf: String(Character(Unicode.Scalar(value)!)).utf8)
        }

        mutating func hex4() throws(Malformed) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw malformed("a string is not closed") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[offset]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw malformed("a \\u escape without four hex digits")
                }
                value = value << 4 | UInt32(digit)
                offset += 1
            }
            return value
        }

        /// RFC 8259's number: a whole one that fits 64 bits is an integer (`1.0` and `1e2` too, as
        /// Foundation reads them into `Int64`), anything else a finite double.
        mutating func number() throws(Malformed) -> JSONValue {
            let start = offset
            if next == UInt8(ascii: "-") { offset += 1 }
            guard let first = next, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw malformed("a number without digits") }
            offset += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            var whole = true
            if next == UInt8(ascii: ".") {
                offset += 1
                guard skipDigits() > 0 else { throw malformed("a number's fraction without digits") }
                whole = false
            }
            if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                offset += 1
                if next == UInt8(ascii: "+") || next == UInt8(ascii: "-") { offset += 1 }
                guard skipDigits() > 0 else { throw malformed("a number's exponent without digits") }
                whole = false
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
            if whole, let integer = Int64(text) { return .integer(integer) }
            guard let number = Double(text), number.isFinite else { throw malformed("a number out of range") }
            if number.rounded() == number, let integer = Int64(exactly: number) { return .integer(integer) }
            return .number(number)
        }

        @discardableResult
        mutating func skipDigits() -> Int {
            let start = offset
            while let byte = next, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { offset += 1 }
            return offset - start
        }
    }

    // MARK: Writing

    /// The value as `JSONEncoder` with `.sortedKeys` and `.withoutEscapingSlashes` writes it (keys
    /// in the order of their bytes, whole numbers under 1e15 as integers).
    static func write(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let bool): out.append(contentsOf: (bool ? "true" : "false").utf8)
        case .integer(let integer): out.append(contentsOf: String(integer).utf8)
        case .number(let number):
            if number.rounded() == number, abs(number) < 1e15 {
                out.append(contentsOf: String(Int64(number)).utf8)
            } else {
                var text = "\(number)"
                if text.hasSuffix(".0") { text.removeLast(2) }
                out.append(contentsOf: text.utf8)
            }
        case .string(let string): writeString(string, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // By their UTF-8 bytes, as Foundation sorts them (not `String`'s order, which reads
            // `e` + U+0301 as `é`).
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
