/// The few pieces of HTTP/1.1's grammar (RFC 9110, RFC 9112) that gustd reads from bytes by hand:
/// a request head before NIO's decoder (`PlainRequestHead`) and an instance's answers
/// (`InstanceAnswerDecoder`). One copy, so the two read a name or a space alike.
enum HTTPBytes {
    /// A `tchar` of RFC 9110, 5.6.2: a byte of a field's name or a method.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// A byte a field's value may hold (RFC 9110, 5.5): visible ASCII, a space, a tab, or one
    /// above ASCII (obs-text); never a control byte (CR, LF, NUL among them).
    static func isValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t")
    }

    /// `bytes` is `lowercase` in any case.
    static func equalsLowered(_ bytes: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        var index = 0
        for byte in bytes {
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard lowered == lowercase.utf8Start[index] else { return false }
            index += 1
        }
        return true
    }

    /// The number `bytes` spell in one to `maxDigits` ASCII digits (a `Content-Length`, RFC 9110,
    /// 8.6), or nil for anything else: no sign, no space, no list.
    static func decimal(_ bytes: some Collection<UInt8>, maxDigits: Int) -> Int? {
        guard !bytes.isEmpty, bytes.count <= maxDigits, bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        return bytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// `bytes` go on with `literal` from `offset`.
    static func matches<Bytes: RandomAccessCollection<UInt8>>(_ literal: StaticString, in bytes: Bytes, at offset: Int) -> Bool
    where Bytes.Index == Int {
        let count = literal.utf8CodeUnitCount
        guard bytes.endIndex - offset >= count else { return false }
        for index in 0..<count where bytes[offset + index] != literal.utf8Start[index] { return false }
        return true
    }
}
