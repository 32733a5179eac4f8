#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import GustDaemon
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// One peer (one app's instances, told apart by uid) holds at most its share of
/// a Unix-domain listener's connections (`PeerConnectionLimit`): the records
/// channel every sandboxed instance reaches.
struct PeerConnectionLimitTests {
    @Test func aPeersShareIsAQuarterOfTheBudgetFrom8To128() {
        #expect(PeerConnectionLimit.share(of: 192) == 48)
        #expect(PeerConnectionLimit.share(of: 0) == 8)
        #expect(PeerConnectionLimit.share(of: 786_432) == 128)
    }

    @Test func aPeerPastItsShareIsRefusedUntilOneOfItsConnectionsCloses() throws {
        let budget = ConnectionBudget(limit: { 96 }, openDescriptors: { 0 })  // 32 connections: a share of 8
        let limit = PeerConnectionLimit(name: "records channel", budget: budget, exempt: 1000, logger: Logger(label: "test"))
        let held = (0..<8).map { _ in EmbeddedChannel() }
        for channel in held { #expect(limit.admit(channel, uid: 420_001)) }
        #expect(!limit.admit(EmbeddedChannel(), uid: 420_001), "past its share")
        #expect(limit.admit(EmbeddedChannel(), uid: 420_002), "another app has its own share")
        #expect(limit.connections(of: 420_001) == 8)

        _ = try held[0].finish()
        #expect(limit.connections(of: 420_001) == 7)
        #expect(limit.admit(EmbeddedChannel(), uid: 420_001), "a connection closed: room for one")
        #expect(!limit.admit(EmbeddedChannel(), uid: 420_001))
    }

    @Test func aClientAddresssShareIsAQuarterOfTheBudgetFrom64To1024() {
        #expect(PeerConnectionLimit.addressShare(of: 100) == 64)
        #expect(PeerConnectionLimit.addressShare(of: 2_000) == 500)
        #expect(PeerConnectionLimit.addressShare(of: 786_432) == 1024)
    }

    @Test func aClientAddressPastItsShareIsRefusedAndATrustedProxyIsNot() throws {
        let budget = ConnectionBudget(limit: { 320 }, openDescriptors: { 0 })  // 256 connections: a share of 64
        let limit = PeerConnectionLimit(
            name: "TCP listeners", budget: budget, kind: .addresses, exempt: [.address("10.0.0.1")], logger: Logger(label: "test"))
        let held = (0..<64).map { _ in EmbeddedChannel() }
        for channel in held { #expect(limit.admit(channel, peer: .address("203.0.113.7"))) }
        #expect(!limit.admit(EmbeddedChannel(), peer: .address("203.0.113.7")), "past its share")
        #expect(limit.admit(EmbeddedChannel(), peer: .address("203.0.113.8")), "another address has its own share")
        for _ in 0..<100 { #expect(limit.admit(EmbeddedChannel(), peer: .address("10.0.0.1")), "the trusted proxy") }
        #expect(limit.connections(of: .address("10.0.0.1")) == 0)
        _ = try held[0].finish()
        #expect(limit.admit(EmbeddedChannel(), peer: .address("203.0.113.7")), "a connection closed: room for one")
    }

    /// One IPv6 client holds a /64 (every host's, residential or cloud): counted by its address,
    /// it had a share per address and so could take the whole budget.
    @Test func anIPv6ClientIsCountedByItsSlash64AndAMappedIPv4ByItsIPv4() throws {
        func peer(_ address: String) throws -> PeerConnectionLimit.Peer? {
            PeerConnectionLimit.peer(of: try SocketAddress(ipAddress: address, port: 443))
        }
        #expect(try peer("2001:db8:1:2::5") == peer("2001:db8:1:2:ffff:ffff:ffff:9"))
        #expect(try peer("2001:db8:1:2::5") != peer("2001:db8:1:3::5"))
        #expect(try peer("::ffff:192.0.2.1") == peer("192.0.2.1"))
        #expect(try peer("192.0.2.1") != peer("192.0.2.2"))
        #expect(try peer("2001:db8:1:2::5") == .address("2001:db8:1:2::/64"))

        let budget = ConnectionBudget(limit: { 320 }, openDescriptors: { 0 })  // a share of 64
        let limit = PeerConnectionLimit(
            name: "TCP listeners", budget: budget, kind: .addresses, exempt: [.address("2001:db8:9:9::1")], logger: Logger(label: "test"))
        var held: [EmbeddedChannel] = []
        for host in 0..<64 {
            let channel = EmbeddedChannel()
            held.append(channel)
            #expect(limit.admit(channel, address: try SocketAddress(ipAddress: "2001:db8:1:2::\(String(host, radix: 16))", port: 1)))
        }
        #expect(!limit.admit(EmbeddedChannel(), address: try SocketAddress(ipAddress: "2001:db8:1:2::abcd", port: 1)),
                "another address of the same /64 is past the share")
        #expect(limit.admit(EmbeddedChannel(), address: try SocketAddress(ipAddress: "2001:db8:9:9::2", port: 1)))
        for _ in 0..<100 {
            #expect(limit.admit(EmbeddedChannel(), address: try SocketAddress(ipAddress: "2001:db8:9:9::1", port: 1)),
                    "a trusted proxy is exempt by its own address")
        }
    }

    @Test func gustdsOwnUIDHasNoShare() {
        let limit = PeerConnectionLimit(name: "records channel", budget: ConnectionBudget(limit: { 96 }, openDescriptors: { 0 }), exempt: 1000, logger: Logger(label: "test"))
        for _ in 0..<20 { #expect(limit.admit(EmbeddedChannel(), uid: 1000)) }
        #expect(limit.connections(of: 1000) == 0)
    }

    /// A real Unix socket served by `SocketServer`: this process's uid (not exempt here) opens
    /// 12 connections with a share of 8; gustd closes 4 at once, serves HTTP on the others, and
    /// takes a new one once one of them has closed.
    @Test(.timeLimit(.minutes(2))) func overARealUnixSocketThePeersCredentialsDecide() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("peer-limit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("records.sock").path
        let logger = Logger(label: "test")
        let budget = ConnectionBudget(limit: { 96 }, openDescriptors: { 0 })
        let peers = PeerConnectionLimit(name: "records channel", budget: budget, exempt: getuid() &+ 1, logger: logger)
        let server = SocketServer(
            childChannel: HTTP1Channel(responder: Listeners.respond(Answer(), dates: HTTPDate(), serverName: "gustd", logger: logger)),
            socket: try ListeningSocket.unix("records channel", path: path, mode: 0o600), budget: budget,
            peerLimit: peers,
            logger: logger, onServerRunning: { _ in })
        // Through FileManager, not stat(2): which Clang module `struct stat` is found in depends on
        // the order this target's files are compiled in (MemberImportVisibility).
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { group.cancelAll() }
            var clients = try (0..<12).map { _ in try UnixClient(path: path) }
            let settled = await Self.settle { clients.filter(\.isClosedByPeer).count == 4 }
            #expect(settled, "closed by gustd: \(clients.filter(\.isClosedByPeer).count) of 12")
            #expect(clients.filter { !$0.isClosedByPeer }.count == 8)
            let answer = clients.first { !$0.isClosedByPeer }?.exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "\(answer ?? "no open connection")")

            clients.removeAll()  // all closed: room again
            #expect(await Self.settle { peers.connections(of: getuid()) == 0 })
            let again = try UnixClient(path: path)
            #expect(again.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            await server.shutdownGracefully()
        }
    }

    /// Polls `condition` until true, for at most 20 s (see `exchange`).
    static func settle(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<400 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    struct Answer: HTTPResponder {
        typealias Context = BasicRequestContext
        func respond(to request: Request, context: Context) async throws -> Response {
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok")))
        }
    }

    /// A blocking Unix-socket client the test drives by hand.
    final class UnixClient {
        let fd: Int32

        init(path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: Array(path.utf8))
                raw[path.utf8.count] = 0
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                close(fd)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }

        deinit { close(fd) }

        /// Whether the server closed it (end of stream or a reset; nothing to read yet means open).
        var isClosedByPeer: Bool {
            var byte: UInt8 = 0
            let got = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        }

        /// Sends `request` and reads the answer's first bytes, or says why there were none. Waits up
        /// to 20 s: CI runs every unit suite at once on two cores, where 5 s once ran out
        /// (the whole run stalled about 10 s) and failed this test with an empty answer.
        func exchange(_ request: String) -> String {
            _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var wait = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 512)
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0 { return String(decoding: buffer[..<got], as: UTF8.self) }
            return got == 0 ? "(closed by gustd)" : "(no answer: \(String(cString: strerror(errno))))"
        }
    }
}
