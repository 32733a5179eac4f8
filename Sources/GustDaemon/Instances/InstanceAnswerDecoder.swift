import NIOCore
import NIOHTTP1

/// Reads an instance's answers from its connection's bytes: HTTP/1.1 responses as the runtime
/// protocol has them (docs/runtime-protocol.md), each framed by its `Content-Length`, as chunks,
/// or, with neither, by the end of the connection. It stands where NIO's HTTP client decoder
/// stood (llhttp, then its parts made into NIO's types: a seventh of gustd's user time per trivial
/// call, more with its handlers' share of the pipeline),
/// and reads what llhttp reads the same way (`InstanceAnswerDecoderTests` holds the two side by side).
///
/// Strict, since the bytes are the app's: its code runs in the process that writes them. What a
/// runtime never sends and HTTP leaves room to read two ways is refused (`Malformed`), and the
/// connection is closed: an HTTP version but 1.1, a status outside 100–599, a bare LF, a control
/// byte in a field, an obsolete line fold, a space before a colon, a `Content-Length` that is not
/// one number or comes twice, a `Transfer-Encoding` but `chunked`, both framings at once, a chunk
/// line that is not hex digits (and an extension), a head past `maxHeadLength`. An interim answer
/// (1xx, say `100 Continue` to a client's `Expect`) is read past, as HTTP has a client do and
/// NIO's decoder did; an upgrade (101) is refused, since this connection never asks for one.
struct InstanceAnswerDecoder {
    /// How an answer's body is framed.
    enum Framing: Equatable {
        /// No body: an answer to `HEAD`, a 204 or a 304.
        case none
        case length(Int)
        case chunked
        /// Up to the end of the connection, which then cannot carry another answer.
        case untilClose
    }

    /// What `next()` reads, in order: a `head`, its body in any number of pieces, then `end`.
    enum Part: Equatable {
        case head(status: Int, headers: HTTPHeaders, framing: Framing)
        case body(ByteBuffer)
        case end
    }

    struct Malformed: Error, Equatable, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The most of a head (or of a chunked answer's trailers) read, as NIO's decoder's default.
    static let maxHeadLength = 80 * 1024
    /// The most of a chunk's size line (with its extensions).
    static let maxChunkLineLength = 4096

    private enum State: Equatable {
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        /// After the last chunk, up to a blank line; `read` bytes so far.
        case trailers(read: Int)
        case untilClose
        /// The answer's `end` is the next part.
        case ending
        /// Refused: nothing more is read.
        case failed
    }

    private var state = State.head
    /// What came and is not read yet.
    private var unread = Self.nothing
    private static let nothing = ByteBuffer()
    /// Bytes of the head in progress already searched for its end.
    private var searched = 0
    /// The answer to come is to a `HEAD`.
    private var toHEAD = false

    /// The next answer is to a request of `method` (an answer to `HEAD` has no body, whatever its length says).
    mutating func expectAnswer(to method: HTTPMethod) {
        toHEAD = method == .HEAD
    }

    mutating func add(_ bytes: ByteBuffer) {
        if unread.readableBytes == 0 {
            unread = bytes
        } else {
            var bytes = bytes
            unread.writeBuffer(&bytes)
        }
    }

    /// Bytes came that no part has been read from yet: between answers, ones nobody asked for.
    var hasUnread: Bool { unread.readableBytes > 0 }

    /// The next part, or nil until more bytes come.
    mutating func next() throws(Malformed) -> Part? {
        do {
            defer {
                // Not held once read: NIO reuses a read's buffer that no one else holds for the next read.
                if unread.readableBytes == 0 { unread = Self.nothing }
            }
            return try read()
        } catch {
            state = .failed
            unread = ByteBuffer()
            throw error
        }
    }

    /// The connection's input ended: the `end` of an answer framed by it, nil between answers;
    /// an answer cut short is `Malformed`.
    mutating func inputEnded() throws(Malformed) -> Part? {
        switch state {
        case .untilClose, .ending:
            return ended()
        case .head where unread.readableBytes == 0:
            return nil
        default:
            state = .failed
            throw Malformed("the connection closed in the middle of an answer")
        }
    }

    private mutating func read() throws(Malformed) -> Part? {
        while true {
            switch state {
            case .failed:
                throw Malformed("an answer before this one was refused")
            case .ending:
                return ended()
            case .head:
                guard let length = try headLength() else { return nil }
                let head = try unread.withUnsafeReadableBytes { bytes throws(Malformed) in
                    try Self.head(UnsafeRawBufferPointer(rebasing: bytes[..<length]))
                }
                unread.moveReaderIndex(forwardBy: length)
                searched = 0
                if (100..<200).contains(head.status) {
                    guard head.status != 101 else { throw Malformed("an upgrade (101) on a connection that asked for none") }
                    continue  // an interim answer: the final one follows
                }
                let framing: Framing = toHEAD || head.status == 204 || head.status == 304 ? .none : head.framing
                switch framing {
                case .none, .length(0): state = .ending
                case .length(let length): state = .length(remaining: length)
                case .chunked: state = .chunkSize
                case .untilClose: state = .untilClose
                }
                return .head(status: head.status, headers: head.headers, framing: framing)
            case .length(let remaining):
                guard let piece = take(upTo: remaining) else { return nil }
                state = remaining == piece.readableBytes ? .ending : .length(remaining: remaining - piece.readableBytes)
                return .body(piece)
            case .untilClose:
                guard let piece = take(upTo: Int.max) else { return nil }
                return .body(piece)
            case .chunkSize:
                guard let line = try self.line(limit: Self.maxChunkLineLength, what: "a chunk's size line") else { return nil }
                let size = try unread.withUnsafeReadableBytes { bytes throws(Malformed) in
                    try Self.chunkSize(UnsafeRawBufferPointer(rebasing: bytes[..<line]))
                }
                unread.moveReaderIndex(forwardBy: line + 2)
                state = size == 0 ? .trailers(read: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let piece = take(upTo: remaining) else { return nil }
                state = remaining == piece.readableBytes ? .chunkEnd : .chunkData(remaining: remaining - piece.readableBytes)
                return .body(piece)
            case .chunkEnd:
                guard unread.readableBytes >= 2 else { return nil }
                guard unread.readInteger(as: UInt16.self) == 0x0D0A else { throw Malformed("a chunk's data not followed by CRLF") }
                state = .chunkSize
            case .trailers(let read):
                guard let line = try self.line(limit: Self.maxHeadLength - read, what: "the trailers") else { return nil }
                // Trailers are read past (a call's answer has none gustd passes on), but only field lines.
                if line > 0 {
                    try unread.withUnsafeReadableBytes { bytes throws(Malformed) in
                        var reader = Reader(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<(line + 2)]))
                        _ = try reader.field()
                    }
                }
                unread.moveReaderIndex(forwardBy: line + 2)
                state = line == 0 ? .ending : .trailers(read: read + line + 2)
            }
        }
    }

    /// The answer's end: the next one is read as a head, to a request of its own.
    private mutating func ended() -> Part {
        state = .head
        toHEAD = false
        return .end
    }

    /// The length of the head at the start of what is unread, its blank line included; nil if it has not all come.
    private mutating func headLength() throws(Malformed) -> Int? {
        let found = unread.withUnsafeReadableBytes { bytes -> Int? in
            var index = max(searched - 3, 0)
            while index + 3 < bytes.count {
                if bytes[index + 3] == UInt8(ascii: "\n"), bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n"),
                    bytes[index + 2] == UInt8(ascii: "\r")
                {
                    return index + 4
                }
                index += 1
            }
            return nil
        }
        if let found, found <= Self.maxHeadLength { return found }
        guard found == nil, unread.readableBytes <= Self.maxHeadLength else {
            throw Malformed("an answer's head longer than \(Self.maxHeadLength) bytes")
        }
        searched = unread.readableBytes
        return nil
    }

    /// The length of the line at the start of what is unread, without its CRLF; nil if it has not all come.
    private func line(limit: Int, what: String) throws(Malformed) -> Int? {
        let found = unread.withUnsafeReadableBytes { bytes -> Int? in
            guard let lf = bytes.prefix(limit + 2).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            return lf
        }
        guard let found else {
            guard unread.readableBytes < limit + 2 else { throw Malformed("\(what) longer than \(limit) bytes") }
            return nil
        }
        guard found > 0, unread.getInteger(at: unread.readerIndex + found - 1, as: UInt8.self) == UInt8(ascii: "\r") else {
            throw Malformed("a line of \(what) ended by a bare LF")
        }
        return found - 1
    }

    /// Up to `count` of the unread bytes, as a slice of them; nil if there are none.
    private mutating func take(upTo count: Int) -> ByteBuffer? {
        guard unread.readableBytes > 0 else { return nil }
        return unread.readSlice(length: min(count, unread.readableBytes))
    }
}
