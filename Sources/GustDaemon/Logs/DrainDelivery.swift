import Foundation
import GustCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Sends batches of an app's log entries to one drain's receiver.
///
/// HTTP(S): one POST per batch of NDJSON (`application/x-ndjson`), a 2xx answer is delivery;
/// a new connection each time, so nothing depends on the receiver keeping one open.
/// syslog: one TCP (or TLS) connection kept open, RFC 5424 frames written as they come; TCP
/// syslog has no acknowledgement, so what the kernel had accepted when the receiver went away is
/// lost with it (at most a socket buffer's worth; docs/operations.md says so).
final class DrainDelivery: @unchecked Sendable {
    let drain: Drain
    private let policy: DrainAddressPolicy
    private let hostname: String
    private let timeout: TimeAmount
    /// The open syslog connection; only `send` touches it, and one shipper calls `send` at a time.
    private var syslog: NIOAsyncChannel<ByteBuffer, ByteBuffer>?
    /// The host's addresses and when they were looked up (`send`'s too).
    private var resolved: (addresses: [SocketAddress], at: ContinuousClock.Instant)?
    /// How long a lookup serves: an HTTP drain connects for every batch, and each lookup took a
    /// thread. The policy still checks the addresses at every connection.
    static let resolvedFor: Duration = .seconds(30)
    /// The threads that look drains' hosts up, apart from NIO's shared pool (gustd's store, token
    /// checks, schedules): a drain's host can be made to answer slowly, and getaddrinfo blocks.
    private static let resolver: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    init(drain: Drain, policy: DrainAddressPolicy, timeout: TimeAmount = .seconds(10)) {
        self.drain = drain
        self.policy = policy
        self.timeout = timeout
        var name = [CChar](repeating: 0, count: 256)
        hostname = gethostname(&name, name.count) == 0 ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "gust"
    }

    /// Delivers the entries or throws a `DrainFailure` saying why not.
    func send(_ entries: [LogEntry]) async throws {
        guard !entries.isEmpty else { return }
        switch drain.target.kind {
        case .http, .https: try await post(entries)
        case .syslog, .syslogTLS: try await writeSyslog(entries)
        }
    }

    func close() async {
        try? await syslog?.channel.close()
        syslog = nil
    }

    private func post(_ entries: [LogEntry]) async throws {
        var body = Data()
        for entry in entries {
            body.append(Data(entry.jsonLine(app: drain.app).utf8))
            body.append(0x0A)
        }
        let target = drain.target
        let defaultPort = target.kind == .https ? 443 : 80
        let hostHeader = (target.host.contains(":") ? "[\(target.host)]" : target.host) + (target.port == defaultPort ? "" : ":\(target.port)")
        var head = "POST \(target.path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: gustd\r\n"
        head += "Content-Type: application/x-ndjson\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        if let userInfo = target.userInfo {
            let decoded = userInfo.removingPercentEncoding ?? userInfo
            head += "Authorization: Basic \(Data(decoded.utf8).base64EncodedString())\r\n"
        }
        head += "\r\n"
        let request = ByteBuffer(bytes: Data(head.utf8) + body)
        let channel = try await connect()
        let status = try await withDeadline {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(request)
                var answer = ByteBuffer()
                for try await chunk in inbound {
                    var chunk = chunk
                    answer.writeBuffer(&chunk)
                    if let line = answer.getString(at: answer.readerIndex, length: answer.readableBytes), line.contains("\r\n") { break }
                    if answer.readableBytes > 8192 { break }
                }
                let statusLine = answer.getString(at: answer.readerIndex, length: answer.readableBytes)?.split(separator: "\r\n").first ?? ""
                let parts = statusLine.split(separator: " ")
                guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else {
                    throw DrainFailure("the receiver did not answer with HTTP")
                }
                return code
            }
        }
        guard (200..<300).contains(status) else { throw DrainFailure("the receiver answered HTTP \(status)") }
    }

    private func writeSyslog(_ entries: [LogEntry]) async throws {
        var frames = Data()
        for entry in entries { frames.append(SyslogMessage.frame(entry, app: drain.app, hostname: hostname)) }
        let buffer = ByteBuffer(bytes: frames)
        if syslog == nil { syslog = try await connect() }
        guard let channel = syslog else { return }
        do {
            try await Self.write(buffer, on: channel.channel, within: timeout)
        } catch {
            await close()
            throw error as? DrainFailure ?? DrainFailure("the connection failed: \(error)")
        }
    }

    /// Whether a write's time ran out (set on the channel's loop, read by the writing task).
    private final class Expiry: Sendable {
        let passed = Atomic(false)
    }

    /// Writes and flushes, closing the channel at `timeout` or when the task is cancelled: NIO's
    /// write future heeds no cancellation, and a receiver that never reads, or never finishes a TLS
    /// handshake (NIOSSL holds writes until it has), left it pending for good, and with it the
    /// shipper and gustd's stop. Closing fails the pending write.
    private static func write(_ buffer: ByteBuffer, on channel: any Channel, within timeout: TimeAmount) async throws {
        let expired = Expiry()
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            expired.passed.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            try await withTaskCancellationHandler {
                try await channel.writeAndFlush(buffer)
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch where expired.passed.load(ordering: .relaxed) {
            throw DrainFailure("the receiver took nothing within \(timeout.nanoseconds / 1_000_000_000) s")
        }
    }

    /// Resolves the host, refuses addresses the policy forbids (unless an admin allowed them for
    /// this drain), and connects to the first address left, with TLS when the URL asks for it.
    private func connect() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let target = drain.target
        let addresses = try await lookUp()
        var reasons: [String] = []
        var allowed: [SocketAddress] = []
        for address in addresses {
            if !drain.allowPrivate, let reason = policy.refusal(of: address) { reasons.append(reason) } else { allowed.append(address) }
        }
        guard let address = allowed.first else {
            throw DrainFailure(
                "refused to connect: \(reasons.first ?? "\(target.host) has no address") (an admin may allow it: gust drains add APP URL --allow-private)")
        }
        let tls: NIOSSLContext? = target.usesTLS ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let serverName = Self.isIPLiteral(target.host) ? nil : target.host
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(timeout)
                .connect(to: address) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw DrainFailure("cannot connect to \(address.ipAddress ?? target.host):\(target.port): \(Self.describe(error))")
        }
    }

    private func withDeadline<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask { [timeout] in
                try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                throw DrainFailure("no answer within \(timeout.nanoseconds / 1_000_000_000) s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// The target's addresses: looked up again after `resolvedFor`, given up on after `timeout`.
    private func lookUp() async throws -> [SocketAddress] {
        if let resolved, ContinuousClock.now - resolved.at < Self.resolvedFor { return resolved.addresses }
        let (host, port) = (drain.target.host, drain.target.port)
        let addresses = try await withDeadline { try await Self.resolve(host, port: port) }
        resolved = (addresses, .now)
        return addresses
    }

    static func resolve(_ host: String, port: Int) async throws -> [SocketAddress] {
        if isIPLiteral(host) { return [try SocketAddress(ipAddress: host, port: port)] }
        return try await resolver.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let first = list else {
                throw DrainFailure("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(list) }
            var addresses: [SocketAddress] = []
            for node in sequence(first: first, next: { $0.pointee.ai_next }) {
                guard let raw = node.pointee.ai_addr else { continue }
                switch Int32(raw.pointee.sa_family) {
                case AF_INET:
                    addresses.append(raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
                case AF_INET6:
                    addresses.append(raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
                default: continue
                }
            }
            return addresses
        }
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var address = [UInt8](repeating: 0, count: 16)  // room for an in_addr or an in6_addr
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}

/// Why a batch was not delivered, in words for `gust drains list`.
struct DrainFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
