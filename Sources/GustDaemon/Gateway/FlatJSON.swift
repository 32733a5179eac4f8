import NIOCore

/// A JSON object of strings, integers and booleans, written straight into a buffer with
/// the bytes `JSONSerialization` gives it (keys sorted, `/` not escaped): the
/// gateway's own answers (`/_/health`, every error) are made per request, and
/// Foundation's `JSONSerialization`, a bridge through `NSDictionary`, cost
/// more than the rest of a health answer (docs/benchmarks.md, "Per-call cost,
/// second pass"). Every flat answer of gustd's own goes through it; only an
/// answer whose values nest (`/v1/status`) takes `Gateway.json(_:_: [String: Any])`.
struct FlatJSON {
    enum Value: Equatable {
        case string(String)
        case int(Int)
        case bool(Bool)
    }

    private var fields: [(key: String, value: Value)] = []

    init(_ fields: [(String, Value)] = []) {
        self.fields.reserveCapacity(fields.count + 1)
        // A key given twice keeps its last value, as the subscript would; most are given once
        // (every health answer is made here), and then nothing is removed.
        for (key, value) in fields {
            if self.fields.contains(where: { $0.key == key }) { self[key] = value } else { self.fields.append((key, value)) }
        }
    }

    subscript(key: String) -> Value? {
        get { fields.first { $0.key == key }?.value }
        set {
            fields.removeAll { $0.key == key }
            if let newValue { fields.append((key, newValue)) }
        }
    }

    var buffer: ByteBuffer {
        // Allocated once at its size (an empty buffer's `reserveCapacity` copies into a new one).
        var buffer = ByteBufferAllocator().buffer(capacity: 64 + fields.reduce(0) { $0 + $1.key.utf8.count + 16 })
        buffer.writeInteger(UInt8(ascii: "{"))
        // Most are made in key order (a health answer, an error): sorted only when they are not.
        let ordered = zip(fields, fields.dropFirst()).allSatisfy { $0.key < $1.key } ? fields : fields.sorted { $0.key < $1.key }
        for (index, field) in ordered.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            Self.write(field.key, to: &buffer)
            buffer.writeInteger(UInt8(ascii: ":"))
            switch field.value {
            case .string(let text): Self.write(text, to: &buffer)
            case .int(let number): buffer.writeString(String(number))
            case .bool(let flag): buffer.writeStaticString(flag ? "true" : "false")
            }
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`, the rest as UTF-8.
    private static func write(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        // Most strings (an app's name, a state) need no escape: written whole rather than a byte at a time.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            buffer.writeString(text)
            buffer.writeInteger(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            case 0x08: buffer.writeStaticString("\\b")
            case 0x0C: buffer.writeStaticString("\\f")
            case 0..<0x20:
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(HexDigits.lower[Int(byte >> 4)])
                buffer.writeInteger(HexDigits.lower[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

}
