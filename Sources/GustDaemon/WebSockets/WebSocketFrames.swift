import NIOCore

/// Where the frames of one direction of a WebSocket begin and end (RFC 6455, 5.2),
/// without reading what they carry: gustd relays the bytes as they come and needs
/// only to know when it may put a frame of its own between two of the peer's (a
/// close when the connection must go), and to refuse a frame that declares more
/// than the limit before any of it is relayed. Fragmented messages are the
/// runtime's concern: each fragment is a frame here.
struct WebSocketFrames {
    /// The largest payload a frame may declare; a larger one is `tooLarge`.
    let maxPayload: Int
    /// The bytes of a header read so far (2 to 14 bytes make a header).
    private var header: [UInt8] = []
    /// The payload bytes of the current frame still to come.
    private var remaining = 0

    init(maxPayload: Int) {
        self.maxPayload = maxPayload
        header.reserveCapacity(14)
    }

    struct TooLarge: Error, Equatable {
        var declared: UInt64
    }

    /// Whether the bytes read so far end with a whole frame (or there were none).
    var atBoundary: Bool { header.isEmpty && remaining == 0 }

    /// Reads the bytes of `buffer` from its reader index and says how many it read:
    /// all of them, or with `stopAtBoundary`, those up to the first point where a
    /// frame ends. Throws `TooLarge` as soon as a header declares more than
    /// `maxPayload` (before its mask key, let alone its payload).
    mutating func read(_ buffer: ByteBuffer, stopAtBoundary: Bool = false) throws -> Int {
        try buffer.withUnsafeReadableBytes { bytes -> Int in
            var index = 0
            while index < bytes.count {
                if remaining > 0 {
                    let taken = min(remaining, bytes.count - index)
                    remaining -= taken
                    index += taken
                } else {
                    header.append(bytes[index])
                    index += 1
                    if let (length, size) = Self.headerLength(header) {
                        guard length <= UInt64(maxPayload) else { throw TooLarge(declared: length) }
                        if header.count == size {
                            header.removeAll(keepingCapacity: true)
                            remaining = Int(length)
                        }
                    }
                }
                if stopAtBoundary, atBoundary { return index }
            }
            return index
        }
    }

    /// The payload length a header declares and the header's whole size, once
    /// enough of it has come to tell (nil before).
    private static func headerLength(_ header: [UInt8]) -> (UInt64, Int)? {
        guard header.count >= 2 else { return nil }
        let masked = header[1] & 0x80 != 0
        let mask = masked ? 4 : 0
        switch header[1] & 0x7F {
        case 126:
            guard header.count >= 4 else { return nil }
            return (UInt64(header[2]) << 8 | UInt64(header[3]), 4 + mask)
        case 127:
            guard header.count >= 10 else { return nil }
            let length = header[2..<10].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return (length, 10 + mask)
        case let short:
            return (UInt64(short), 2 + mask)
        }
    }

    /// A close frame with `code` (and no reason), masked with `mask` when it goes to
    /// a server (a client's frames are masked, RFC 6455 5.3), else unmasked.
    static func close(code: UInt16, mask: (UInt8, UInt8, UInt8, UInt8)? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0x88))
        let payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        if let mask {
            buffer.writeInteger(UInt8(0x80 | payload.count))
            let key = [mask.0, mask.1, mask.2, mask.3]
            buffer.writeBytes(key)
            buffer.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset % 4] })
        } else {
            buffer.writeInteger(UInt8(payload.count))
            buffer.writeBytes(payload)
        }
        return buffer
    }
}
