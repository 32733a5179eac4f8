import NIOCore
import NIOHTTP1

extension InstanceRequest {
    /// The request as the instance reads it, written into `buffer`: the bytes NIO's HTTP/1.1
    /// request encoder wrote for it (`InstanceAnswerDecoderTests` compares the two), without
    /// building its head as NIO's types first.
    ///
    /// Its fields as given, less any `X-Gust-Internal` and `Content-Length` (and `X-Gust-Call` when
    /// the request has a `callTag`); then the call's tag, the instance's secret if the request is
    /// for the internal surface (`internalToken`), its body's length,
    /// and `Host: instance` if it has none. A field whose name is not a token or whose value
    /// holds a control byte is left out (fields come from heads a parser has read, so none does:
    /// this keeps a request from ever being split whatever a caller hands over), and a byte of the
    /// target that cannot stand in a request line is percent-escaped.
    func write(into buffer: inout ByteBuffer, internalToken: String) {
        buffer.writeString(method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        Self.writeTarget(target, into: &buffer)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        var hasHost = false
        for (name, value) in headers {
            guard Self.isSendable(name: name, value: value) else { continue }
            if HTTPBytes.equalsLowered(name.utf8, "x-gust-internal") || HTTPBytes.equalsLowered(name.utf8, "content-length") { continue }
            if callTag != nil, HTTPBytes.equalsLowered(name.utf8, "x-gust-call") { continue }
            if HTTPBytes.equalsLowered(name.utf8, "host") { hasHost = true }
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if let callTag, callTag.utf8.allSatisfy(HTTPBytes.isValueByte) {
            buffer.writeStaticString("X-Gust-Call: ")
            buffer.writeString(callTag)
            buffer.writeStaticString("\r\n")
        }
        if isInternal {
            buffer.writeString(InternalSecret.header)
            buffer.writeStaticString(": ")
            buffer.writeString(internalToken)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("Content-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\n")
        if !hasHost { buffer.writeStaticString("Host: instance\r\n") }
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(body)
    }

    /// The bytes of a request line's target: visible ASCII as it is, any other byte percent-escaped.
    private static func writeTarget(_ target: String, into buffer: inout ByteBuffer) {
        guard target.utf8.contains(where: { !(0x21...0x7E).contains($0) }) else {
            buffer.writeString(target)
            return
        }
        for byte in target.utf8 {
            if (0x21...0x7E).contains(byte) {
                buffer.writeInteger(byte)
            } else {
                buffer.writeInteger(UInt8(ascii: "%"))
                buffer.writeInteger(HexDigits.upper[Int(byte >> 4)])
                buffer.writeInteger(HexDigits.upper[Int(byte & 0x0F)])
            }
        }
    }

    private static func isSendable(name: String, value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPBytes.isTokenByte) && value.utf8.allSatisfy(HTTPBytes.isValueByte)
    }
}
