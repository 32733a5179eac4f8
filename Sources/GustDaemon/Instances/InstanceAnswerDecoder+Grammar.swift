import NIOCore
import NIOHTTP1

/// The grammar `InstanceAnswerDecoder` reads with: a head, a `Content-Length`, a chunk's size
/// line, a field line; each refuses what it does not read with `Malformed`.
extension InstanceAnswerDecoder {
    static func head(_ bytes: UnsafeRawBufferPointer) throws(Malformed) -> (status: Int, headers: HTTPHeaders, framing: Framing) {
        var reader = Reader(bytes: bytes)
        guard reader.skip("HTTP/1.1 ") else { throw Malformed("an answer that does not start with HTTP/1.1") }
        let status = try reader.status()
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)  // room for a usual answer's fields at once, not grown field by field
        var length: Int?
        var chunked = false
        while !reader.skip("\r\n") {
            let (name, value) = try reader.field()
            if HTTPBytes.equalsLowered(name, "content-length") {
                guard length == nil else { throw Malformed("an answer with two Content-Length fields") }
                length = try Self.length(value)
            } else if HTTPBytes.equalsLowered(name, "transfer-encoding") {
                guard !chunked, HTTPBytes.equalsLowered(value, "chunked") else {
                    throw Malformed("an answer with a Transfer-Encoding other than one chunked")
                }
                chunked = true
            }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        let framing: Framing
        switch (length, chunked) {
        case (nil, false): framing = .untilClose
        case (let length?, false): framing = .length(length)
        case (nil, true): framing = .chunked
        case (_?, true): throw Malformed("an answer with both Content-Length and Transfer-Encoding")
        }
        return (status, headers, framing)
    }

    /// A `Content-Length`: one decimal number.
    static func length(_ value: UnsafeRawBufferPointer.SubSequence) throws(Malformed) -> Int {
        guard let length = HTTPBytes.decimal(value, maxDigits: 18) else { throw Malformed("an answer whose Content-Length is not one number") }
        return length
    }

    /// A chunk's size line (without its CRLF): hex digits, then perhaps extensions (`;` and visible
    /// ASCII, no space: llhttp refuses a tab or a byte above ASCII there), which are read past.
    static func chunkSize(_ line: UnsafeRawBufferPointer) throws(Malformed) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            default:
                guard digits > 0, byte == UInt8(ascii: ";"), line[digits...].allSatisfy({ (0x21...0x7E).contains($0) }) else {
                    throw Malformed("a chunk's size that is not hex digits")
                }
                return size
            }
            digits += 1
            guard digits <= 15 else { throw Malformed("a chunk over 2^60 bytes") }
            size = size << 4 | Int(value)
        }
        guard digits > 0 else { throw Malformed("a chunk's size that is not hex digits") }
        return size
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func skip(_ literal: StaticString) -> Bool {
            guard HTTPBytes.matches(literal, in: bytes, at: offset) else { return false }
            offset += literal.utf8CodeUnitCount
            return true
        }

        /// Three digits (100–599), then a space and a reason phrase, or nothing, then CRLF.
        mutating func status() throws(Malformed) -> Int {
            guard bytes.count - offset >= 3 else { throw Malformed("an answer without a status") }
            var status = 0
            for _ in 0..<3 {
                let byte = bytes[offset]
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { throw Malformed("an answer without a status") }
                status = status * 10 + Int(byte - UInt8(ascii: "0"))
                offset += 1
            }
            guard (100...599).contains(status) else { throw Malformed("an answer with status \(status)") }
            if skip(" ") {
                while offset < bytes.count, HTTPBytes.isValueByte(bytes[offset]) { offset += 1 }
            }
            guard skip("\r\n") else { throw Malformed("an answer's status line not ended by CRLF") }
            return status
        }

        /// `name: value` and its CRLF; the value without the spaces and tabs before it. Those after it
        /// are kept, as NIO's decoder kept them (so `Content-Length` and `Transfer-Encoding` with one
        /// are refused: a runtime writes neither so).
        mutating func field() throws(Malformed) -> (name: UnsafeRawBufferPointer.SubSequence, value: UnsafeRawBufferPointer.SubSequence) {
            let nameStart = offset
            while offset < bytes.count, HTTPBytes.isTokenByte(bytes[offset]) { offset += 1 }
            let name = bytes[nameStart..<offset]
            guard !name.isEmpty, offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
                throw Malformed("a field line of an answer that is not a name, a colon and a value")
            }
            offset += 1
            while offset < bytes.count, Self.isSpace(bytes[offset]) { offset += 1 }
            let valueStart = offset
            while offset < bytes.count, HTTPBytes.isValueByte(bytes[offset]) { offset += 1 }
            let value = bytes[valueStart..<offset]
            guard skip("\r\n") else { throw Malformed("a field of an answer with a control byte or a bare CR or LF") }
            return (name, value)
        }

        static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    }
}
