import NIOCore

/// A request head read straight from a connection's bytes for `PlainLane`:
/// only the plainest form a request can take, which every HTTP/1.1 parser
/// reads the same way. Answering such a head before NIO's decoder, and handing
/// that decoder everything after it, therefore cannot split the connection's
/// bytes into requests differently than the decoder alone would (the way one
/// request is smuggled past a front that reads it as another).
///
/// Read: `GET` or `POST`, an origin-form target of visible ASCII, `HTTP/1.1`, header
/// lines (a token, a colon, spaces, then a value of visible ASCII and spaces
/// that does not end with one), each ended by CRLF, then a blank line; one
/// `Host`; at most one `Content-Length`, of one to five digits and at most
/// `maxBodyLength` (its body is then the next bytes: ops and handlers are sent
/// small JSON bodies, and the lane takes them only whole, `PlainLane`); no
/// `Transfer-Encoding`; no `Upgrade` or `Expect`; no `Connection` but
/// `keep-alive` or `close`.
/// Anything else (a bare LF, an obsolete line fold, a tab, a byte outside
/// ASCII, another version, a head not wholly in the bytes at hand, one over
/// `maxLength`) is not read here, and the connection goes on to NIO's decoder.
/// `PlainRequestHeadTests` holds the decoder to that, mutation after mutation.
struct PlainRequestHead: Equatable {
    enum Method: Equatable { case get, post }

    var method: Method = .get
    /// The request target, as sent.
    var target: String
    var host: String
    /// `X-Request-Id` as sent (only one is read).
    var requestID: String?
    /// `Connection: close`.
    var closes: Bool
    /// Bytes of the head, its blank line included.
    var length: Int
    /// Bytes of the body that follows the head (its `Content-Length`; 0 without one).
    var bodyLength = 0
    /// Where the other header fields are in the head (all but `Host`, `X-Request-Id`, `Connection`
    /// and `Content-Length`): a call forwards them (`fields(in:)`); a health check never reads them.
    var others: [Field] = []

    /// A field's name and value, as offsets from the head's first byte.
    struct Field: Equatable {
        var name: Range<Int>
        var value: Range<Int>
    }

    /// The other fields of the head that starts at `bytes`' reader index, as sent.
    func fields(in bytes: ByteBuffer) -> [(name: String, value: String)] {
        let start = bytes.readerIndex
        return others.map { field in
            (bytes.getString(at: start + field.name.lowerBound, length: field.name.count) ?? "",
             bytes.getString(at: start + field.value.lowerBound, length: field.value.count) ?? "")
        }
    }

    /// The values of the other fields named `name` (ASCII, any case), joined with ", " as
    /// `HTTPFields` joins them; nil if there is none.
    func value(of name: String, in bytes: ByteBuffer) -> String? {
        let start = bytes.readerIndex
        let wanted = name.lowercased()
        let values = others.compactMap { field -> String? in
            guard field.name.count == wanted.utf8.count,
                bytes.getString(at: start + field.name.lowerBound, length: field.name.count)?.lowercased() == wanted
            else { return nil }
            return bytes.getString(at: start + field.value.lowerBound, length: field.value.count)
        }
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// A head no longer than this is read; a longer one is NIO's.
    static let maxLength = 4096
    /// A longer body is NIO's: the lane holds a body in memory while its call waits for an instance
    /// (`Gateway.respond` reads one only once the call has one), so it keeps that small.
    static let maxBodyLength = 16 * 1024

    /// The head at the start of `bytes`, or nil if it is not a whole plain one.
    static func read(_ bytes: UnsafeRawBufferPointer) -> PlainRequestHead? {
        var reader = Reader(bytes: bytes.prefix(maxLength))
        let method: Method
        if reader.skip("GET ") {
            method = .get
        } else if reader.skip("POST ") {
            method = .post
        } else {
            return nil
        }
        guard let target = reader.target(), reader.skip(" HTTP/1.1\r\n") else { return nil }
        var host: String?
        var requestID: String?
        var closes = false
        var bodyLength: Int?
        var sawConnection = false
        var others: [Field] = []
        while !reader.skip("\r\n") {
            guard let (name, value) = reader.field() else { return nil }
            switch Known(name) {
            case .host:
                guard host == nil else { return nil }
                host = String(decoding: value, as: UTF8.self)
            case .requestID:
                guard requestID == nil else { return nil }
                requestID = String(decoding: value, as: UTF8.self)
            case .connection:
                guard !sawConnection else { return nil }
                sawConnection = true
                if HTTPBytes.equalsLowered(value, "close") {
                    closes = true
                } else if !HTTPBytes.equalsLowered(value, "keep-alive") {
                    return nil
                }
            case .contentLength:
                guard bodyLength == nil, let length = Self.length(value) else { return nil }
                bodyLength = length
            case .refused:
                return nil
            case .other:
                let start = bytes.startIndex
                others.append(Field(
                    name: name.startIndex - start..<name.endIndex - start, value: value.startIndex - start..<value.endIndex - start))
            }
        }
        guard let host else { return nil }
        return PlainRequestHead(
            method: method, target: String(decoding: target, as: UTF8.self), host: host, requestID: requestID, closes: closes,
            length: reader.offset, bodyLength: bodyLength ?? 0, others: others)
    }

    /// A `Content-Length` of one to five ASCII digits up to `maxBodyLength`; nil for any other
    /// (a sign, a list, a longer number: the decoder's to read or refuse).
    private static func length(_ value: UnsafeRawBufferPointer.SubSequence) -> Int? {
        guard let length = HTTPBytes.decimal(value, maxDigits: 5), length <= maxBodyLength else { return nil }
        return length
    }

    /// The header names this reader looks at.
    private enum Known {
        case host, requestID, connection, contentLength
        /// A chunked body, an upgrade or an expectation: the request is not a plain one.
        case refused
        case other

        init(_ name: UnsafeRawBufferPointer.SubSequence) {
            if HTTPBytes.equalsLowered(name, "host") {
                self = .host
            } else if HTTPBytes.equalsLowered(name, "x-request-id") {
                self = .requestID
            } else if HTTPBytes.equalsLowered(name, "connection") {
                self = .connection
            } else if HTTPBytes.equalsLowered(name, "content-length") {
                self = .contentLength
            } else if HTTPBytes.equalsLowered(name, "transfer-encoding") || HTTPBytes.equalsLowered(name, "upgrade")
                || HTTPBytes.equalsLowered(name, "expect")
            {
                self = .refused
            } else {
                self = .other
            }
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer.SubSequence
        var offset: Int

        init(bytes: UnsafeRawBufferPointer.SubSequence) {
            self.bytes = bytes
            offset = bytes.startIndex
        }

        /// Moves past `literal` if the bytes go on with it.
        mutating func skip(_ literal: StaticString) -> Bool {
            guard HTTPBytes.matches(literal, in: bytes, at: offset) else { return false }
            offset += literal.utf8CodeUnitCount
            return true
        }

        /// An origin-form target: `/`, then visible ASCII up to the space before the version.
        mutating func target() -> UnsafeRawBufferPointer.SubSequence? {
            let start = offset
            guard offset < bytes.endIndex, bytes[offset] == UInt8(ascii: "/") else { return nil }
            while offset < bytes.endIndex, (0x21...0x7E).contains(bytes[offset]) { offset += 1 }
            return bytes[start..<offset]
        }

        /// `name: value` and its CRLF; the value without the spaces before it. An empty value is not read.
        mutating func field() -> (name: UnsafeRawBufferPointer.SubSequence, value: UnsafeRawBufferPointer.SubSequence)? {
            let nameStart = offset
            while offset < bytes.endIndex, HTTPBytes.isTokenByte(bytes[offset]) { offset += 1 }
            let name = bytes[nameStart..<offset]
            guard !name.isEmpty, offset < bytes.endIndex, bytes[offset] == UInt8(ascii: ":") else { return nil }
            offset += 1
            while offset < bytes.endIndex, Self.isSpace(bytes[offset]) { offset += 1 }
            let valueStart = offset
            while offset < bytes.endIndex, (0x21...0x7E).contains(bytes[offset]) || Self.isSpace(bytes[offset]) { offset += 1 }
            // Nor a space at a value's end, which NIO's decoder keeps as part of it.
            guard offset > valueStart, !Self.isSpace(bytes[offset - 1]) else { return nil }
            let value = bytes[valueStart..<offset]
            guard skip("\r\n") else { return nil }
            return (name, value)
        }

        /// Only a space: a tab, which HTTP allows around a value too, NIO's decoder keeps at a value's end
        /// (`Connection: close<TAB>` is not `close` to it), so a head with one is left to it.
        static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") }
    }
}
