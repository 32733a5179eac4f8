public import Foundation

/// A response read off a real TCP connection.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
}

/// A minimal blocking HTTP/1.1 client over loopback TCP, one connection per
/// request: what tests need to call gustd the way curl would.
public enum HTTPClient {
    public static func request(
        port: Int, _ method: String = "GET", _ path: String, host: String? = nil,
        headers: [String: String] = [:], body: String? = nil, timeout: Int = 30
    ) throws -> HTTPResult {
        let fd = try LoopbackPort.connect(port)
        defer { close(fd) }
        return try parse(exchange(fd, request(method, path, host: host ?? "127.0.0.1:\(port)", headers: headers, body: body), timeout: timeout))
    }

    /// The same over a Unix socket (an instance's, say), with `Host: instance`.
    public static func request(
        unixSocket socketPath: String, _ method: String = "GET", _ path: String,
        headers: [String: String] = [:], body: String? = nil, timeout: Int = 30
    ) throws -> HTTPResult {
        let fd = try connect(unixSocket: socketPath)
        defer { close(fd) }
        return try parse(exchange(fd, request(method, path, host: "instance", headers: headers, body: body), timeout: timeout))
    }

    /// A connected descriptor to the Unix socket at `socketPath`, the caller's to close.
    public static func connect(unixSocket socketPath: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw HTTPClientError("socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw HTTPClientError("cannot connect to \(socketPath): errno \(error)")
        }
        return fd
    }

    /// Sends `bytes` as they are (malformed HTTP, say) and returns whatever
    /// comes back before the server closes the connection or `timeout` passes.
    public static func raw(port: Int, _ bytes: Data, timeout: Int = 10) throws -> Data {
        let fd = try LoopbackPort.connect(port)
        defer { close(fd) }
        return try exchange(fd, bytes, timeout: timeout, partialOnTimeout: true)
    }

    private static func request(_ method: String, _ path: String, host: String, headers: [String: String], body: String?) -> Data {
        let payload = Data((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        head += "Content-Length: \(payload.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var request = Data((head + "\r\n").utf8)
        request.append(payload)
        return request
    }

    /// Writes `request` and reads until the peer closes (or `timeout`).
    private static func exchange(_ fd: Int32, _ request: Data, timeout: Int, partialOnTimeout: Bool = false) throws -> Data {
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < request.count {
            let count = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }  // the server may refuse early and close; read what it said
            sent += count
        }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 && errno == EINTR { continue }
            if count < 0 && partialOnTimeout { break }
            if count < 0 && errno == ECONNRESET { break }
            guard count >= 0 else { throw HTTPClientError("no answer within \(timeout) s") }
            if count == 0 { break }
            response.append(contentsOf: buffer[0..<count])
        }
        return response
    }

    public static func parse(_ data: Data) throws -> HTTPResult {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw HTTPClientError("incomplete response: \(data.count) bytes") }
        let lines = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, let status = Int(parts[1]) else { throw HTTPClientError("not HTTP: \(lines.first ?? "")") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if headers["transfer-encoding"]?.contains("chunked") == true { body = dechunk(body).body }
        return HTTPResult(status: status, headers: headers, body: body)
    }

    /// A chunked body's data, and whether its last (zero-size) chunk came: a body cut short
    /// gives what came before the cut.
    public static func dechunk(_ data: Data) -> (body: Data, complete: Bool) {
        var result = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let parsed = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? "", radix: 16)
            let size = parsed ?? 0
            if size == 0 { return (result, parsed == 0) }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size else { break }
            let end = rest.index(start, offsetBy: size)
            result.append(rest[start..<end])
            rest = rest[rest.index(end, offsetBy: min(2, rest.distance(from: end, to: rest.endIndex)))...]
        }
        return (result, false)
    }
}

public struct HTTPClientError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
