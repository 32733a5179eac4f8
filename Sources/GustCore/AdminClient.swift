#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The client side of gustd's admin API (`GUST_HOME/run/gustd.sock`): plain
/// blocking HTTP/1.1 over a Unix socket, so that `gust-receive` and `gust`
/// need no event loop. Deploy progress arrives as newline-delimited JSON and
/// is handed on line by line as it comes.
public struct AdminClient: Sendable {
    public var home: GustHome
    /// How long a read may wait for gustd. A deploy says it is alive every few
    /// seconds, so this bounds only a gustd that died or hung with the
    /// connection open (`GUST_ADMIN_TIMEOUT`, seconds, default 60).
    public var readTimeout: Duration
    /// A descriptor that reports a hang-up (`POLLERR`/`POLLHUP`) once whoever waits for gustd's
    /// answer has gone: the receive hook's watch on its pusher (`PusherConnection`). While waiting,
    /// the client watches it too and gives up with `AdminClient.pusherGone`, which closes the
    /// connection and so has gustd stop the work. Never read or written.
    public var hangUp: Int32?

    public init(home: GustHome, readTimeout: Duration? = nil, hangUp: Int32? = nil) {
        self.home = home
        self.readTimeout = readTimeout ?? Self.defaultReadTimeout
        self.hangUp = hangUp
    }

    /// What a wait ends with when `hangUp` reports that the one it was for has gone.
    public static let pusherGone = GustError("The push's connection closed (interrupted, or the network dropped): stopped its build.", code: 499)

    static var defaultReadTimeout: Duration {
        let configured = ProcessInfo.processInfo.environment["GUST_ADMIN_TIMEOUT"].flatMap(Double.init)
        return .milliseconds(Int((configured.map { max($0, 0.1) } ?? 60) * 1000))
    }

    /// Asks gustd to run one phase of a deploy of `version` (AdminDeployRequest
    /// says which), calling `progress` with each line of its progress as it
    /// happens. Returns the app's URL once the phase is done.
    @discardableResult
    public func deploy(
        app: AppName, version: Int, phase: AdminDeployRequest.Phase = .full, progress: (String) -> Void
    ) throws -> String {
        let body = try JSONEncoder().encode(AdminDeployRequest(app: app.rawValue, version: version, phase: phase))
        var outcome: Result<String, GustError>?
        try exchange("POST", "/v1/deploy", body: body) { line in
            guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return }
            if let text = event["progress"] as? String {
                progress(text)
            } else if let url = event["url"] as? String {
                outcome = .success(url)
            } else if let message = event["error"] as? String {
                outcome = .failure(GustError(message, code: event["code"] as? Int ?? 500))
            }
        }
        switch outcome {
        case .success(let url): return url
        case .failure(let error): throw error
        case nil: throw GustError("gustd stopped answering during the deploy of v\(version); check its log.", code: 502)
        }
    }

    /// Asks gustd to converge to the database now (after an app was destroyed, say).
    public func reconcile() throws {
        try exchange("POST", "/v1/reconcile", body: Data()) { _ in }
    }

    /// Whether a gustd answers on this home's socket.
    public var isRunning: Bool {
        // A quick question: a socket whose listener is held by a process that never accepts must not stall it.
        var quick = self
        quick.readTimeout = min(readTimeout, .seconds(5))
        return (try? quick.exchange("GET", "/v1/status", body: Data()) { _ in }) != nil
    }

    /// The error for a command that needs gustd when none answers: `cannot`, what cannot happen
    /// without it; `then`, what to do again once it runs.
    public func notRunning(_ cannot: String = "nothing can go live", then: String = "push again") -> GustError {
        GustError(
            "gustd is not running for \(home.path), so \(cannot).", code: 503,
            hint: "Start it with `gustd --home \(home.path)` (or the systemd unit) and \(then)."
        )
    }

    // MARK: HTTP over the socket

    func exchange(_ method: String, _ path: String, body: Data, onLine: (String) -> Void) throws {
        let fd = try connect()
        defer { close(fd) }
        var request = Data("\(method) \(path) HTTP/1.1\r\nHost: gustd\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        request.append(body)
        try request.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw GustError("Lost the connection to gustd: \(String(cString: strerror(errno)))", code: 502) }
                offset += written
            }
        }
        var reader = ResponseReader(fd: fd, timeout: readTimeout, hangUp: hangUp)
        let status = try reader.readHead()
        try withoutActuallyEscaping(onLine) { onLine in
            var lines = LineSplitter(onLine)
            try reader.readBody { lines.feed($0) }
            lines.finish()
        }
        guard (200..<300).contains(status) else {
            throw GustError("gustd answered \(status) to \(method) \(path).", code: 502)
        }
    }

    private func connect() throws -> Int32 {
        let path = home.adminSocket.path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw GustError("The admin socket path \(path) is longer than Unix allows (\(capacity - 1) bytes): use a shorter --home.")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GustError("Cannot create a socket: \(String(cString: strerror(errno)))") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw notRunning()
        }
        // Sending: the request is small, but a gustd that never reads must not hold it. Reading is
        // bounded by `ResponseReader.waitForData`'s poll alone.
        let seconds = readTimeout.components.seconds
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(readTimeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }
}

/// Reads an HTTP/1.1 response head and a body framed by chunks, a length, or the end of the stream.
private struct ResponseReader {
    let fd: Int32
    /// How long one wait for gustd's next bytes may last (`AdminClient.readTimeout`).
    let timeout: Duration
    /// `AdminClient.hangUp`, watched while waiting.
    let hangUp: Int32?
    private var buffer = [UInt8]()
    private var headers: [String: String] = [:]

    init(fd: Int32, timeout: Duration, hangUp: Int32?) {
        self.fd = fd
        self.timeout = timeout
        self.hangUp = hangUp
    }

    private mutating func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            try waitForData()
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw GustError("Lost the connection to gustd: \(String(cString: strerror(errno)))", code: 502) }
            buffer.append(contentsOf: chunk[0..<count])
            return count > 0
        }
    }

    private var silence: GustError {
        GustError("gustd said nothing for \(timeout.shortText) (not even that it is alive): it stopped or hung.", code: 504)
    }

    /// Returns once the socket has something to read (or gustd closed it), throwing `silence` when
    /// `timeout` passes first and `AdminClient.pusherGone` as soon as `hangUp` reports a hang-up.
    /// The one bound of a wait: the socket has no receive timeout of its own.
    private func waitForData() throws {
        var descriptors = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let hangUp { descriptors.append(pollfd(fd: hangUp, events: 0, revents: 0)) }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = max(deadline - .now, .zero)
            // Rounded up: a wait never ends before its bound.
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw GustError("Lost the connection to gustd: \(String(cString: strerror(errno)))", code: 502) }
            if descriptors.count > 1, descriptors[1].revents & Int16(POLLERR | POLLHUP) != 0 { throw AdminClient.pusherGone }
            if ready == 0 { throw silence }
            return  // readable or closed: recv says which
        }
    }

    private mutating func readLine() throws -> String {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<end], as: UTF8.self).trimmingCharacters(in: .init(charactersIn: "\r"))
                buffer.removeSubrange(...end)
                return line
            }
            guard try fill() else { throw GustError("gustd closed the connection mid-answer.", code: 502) }
        }
    }

    mutating func readHead() throws -> Int {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw GustError("gustd answered something that is not HTTP.", code: 502) }
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return status
    }

    mutating func readBody(_ deliver: ([UInt8]) -> Void) throws {
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw GustError("gustd sent a malformed chunk.", code: 502)
                }
                if size == 0 { return }
                while buffer.count < size + 2 {
                    guard try fill() else { throw GustError("gustd closed the connection mid-answer.", code: 502) }
                }
                deliver(Array(buffer[..<size]))
                buffer.removeSubrange(..<(size + 2))
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            while buffer.count < length {
                guard try fill() else { break }
            }
            deliver(Array(buffer.prefix(length)))
        } else {
            while try fill() {}
            deliver(buffer)
        }
    }
}

/// Splits a byte stream into lines as the bytes arrive.
private struct LineSplitter {
    private var pending = [UInt8]()
    private let onLine: (String) -> Void

    init(_ onLine: @escaping (String) -> Void) { self.onLine = onLine }

    mutating func feed(_ bytes: [UInt8]) {
        pending.append(contentsOf: bytes)
        while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
            onLine(String(decoding: pending[..<end], as: UTF8.self))
            pending.removeSubrange(...end)
        }
    }

    mutating func finish() {
        if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
        pending = []
    }
}
