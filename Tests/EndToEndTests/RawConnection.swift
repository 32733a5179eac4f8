import Foundation
import GustTesting

/// A loopback TCP connection a test drives by hand: half a request, a byte at
/// a time, or nothing at all, then closed when the test says so. What
/// `HTTPClient` cannot do, because it always sends a whole request and waits.
final class RawConnection {
    let fd: Int32

    /// Connects to 127.0.0.1:`port` from 127.0.0.`from` (the connect completes once the kernel
    /// has queued it, whether or not gustd has accepted it yet).
    init(port: Int, from source: UInt8 = 1) throws {
        fd = try LoopbackPort.connect(port, from: source)
    }

    /// Connects to the Unix socket at `path` (gustd's records channel, say).
    init(unixSocket path: String) throws {
        fd = try HTTPClient.connect(unixSocket: path)
    }

    deinit { Glibc.close(fd) }

    /// Sends `text`, ignoring a peer that has gone (the test checks that separately).
    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Closes the sending side only (a half-close: `shutdown(SHUT_WR)`); answers can still be read.
    func finishSending() {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Sends `text` `count` times over, or as many times as the peer takes within `seconds`
    /// (a client that pipelines requests and reads none of the answers); returns how many went.
    @discardableResult
    func sendRepeated(_ text: String, count: Int, within seconds: Double) -> Int {
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let batch = 1000
        let chunk = Array(String(repeating: text, count: batch).utf8)
        let deadline = Date().addingTimeInterval(seconds)
        var sent = 0
        while sent < count, Date() < deadline {
            let written = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { break }
            sent += written / text.utf8.count
            if written < chunk.count { break }  // the peer took part of a batch: it is full
        }
        return sent
    }

    /// Sends `count` bytes of padding, or as many as the peer takes within `seconds`.
    @discardableResult
    func sendPadding(_ count: Int, within seconds: Double) -> Int {
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
        let deadline = Date().addingTimeInterval(seconds)
        var sent = 0
        while sent < count, Date() < deadline {
            let written = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min(chunk.count, count - sent), Int32(MSG_NOSIGNAL)) }
            if written <= 0 { break }
            sent += written
        }
        return sent
    }

    /// Whether the other side has closed the connection: a read without
    /// waiting sees end of file or a reset.
    var isClosedByPeer: Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if count == 0 { return true }
        if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        return false
    }

    /// Takes what has arrived so far, without waiting.
    func drain() -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads what arrives until the peer closes or `seconds` pass.
    func readAll(seconds: Int) -> String {
        String(decoding: readAllBytes(seconds: seconds), as: UTF8.self)
    }

    /// `readAll`, as bytes.
    func readAllBytes(seconds: Int) -> [UInt8] {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }

    /// A process's resident memory (gustd's, mostly), from /proc.
    static func residentBytes(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// An answer's head (up to its blank line) and the bytes after it, as they came.
    static func headAndBody(_ bytes: [UInt8]) -> (head: String, body: Data) {
        let data = Data(bytes)
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return (String(decoding: data, as: UTF8.self), Data()) }
        return (String(decoding: data[..<end.upperBound], as: UTF8.self), data[end.upperBound...])
    }

    /// The body of a chunked answer in `bytes` (head included), or nil if it was cut short.
    static func chunkedBody(_ bytes: [UInt8]) -> Data? {
        let data = Data(bytes)
        guard let head = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let (body, complete) = HTTPClient.dechunk(data[head.upperBound...])
        return complete ? body : nil
    }
}

/// Runs blocking test code (an HTTP call that may take seconds) on a thread
/// of its own, so the test can do other things meanwhile; `wait` collects it.
final class BackgroundCall<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread.detachNewThread {
            self.result = Result { try body() }
            self.done.signal()
        }
    }

    /// The result, or nil if it has not come within `seconds`.
    func wait(seconds: Double) -> Result<T, any Error>? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return result
    }
}
