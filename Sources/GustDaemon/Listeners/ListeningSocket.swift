#if canImport(Glibc)
import Glibc
#endif
import GustCore
import NIOCore

/// One of gustd's TCP listeners (`http`, `https`, `console`, `metrics`) as a
/// descriptor gustd owns, rather than one SwiftNIO binds and hides: so it can
/// be inherited (systemd's socket unit, or the gustd before this one) and
/// handed on to the next gustd, and the port never refuses a connection while
/// gustd is replaced. The server that serves it (`SocketServer`) closes it.
struct ListeningSocket: Sendable {
    let name: String
    let descriptor: Int32
    /// Whether it came from systemd or the previous gustd rather than being bound here.
    let inherited: Bool

    /// The port it is bound to (getsockname).
    var port: Int? {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard got == 0 else { return nil }
        return withUnsafeBytes(of: &address) { raw in
            // sin_port and sin6_port are at the same offset, in network order.
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
    }

    /// The inherited socket called `name`, else a new one bound to `host:port`.
    static func make(_ name: String, host: String, port: Int, inherited: InheritedSockets) throws -> ListeningSocket {
        if let descriptor = inherited.take(name) {
            var type: Int32 = 0
            var accepting: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &size) == 0, type == Int32(SOCK_STREAM.rawValue),
                getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0, accepting == 1
            else {
                throw GustError(
                    "The \(name) socket gustd was given (descriptor \(descriptor)) is not a listening TCP socket.",
                    hint: "Check ListenStream= in gustd.socket.")
            }
            return ListeningSocket(name: name, descriptor: descriptor, inherited: true)
        }
        return ListeningSocket(name: name, descriptor: try bind(host: host, port: port), inherited: false)
    }

    /// socket, SO_REUSEADDR, bind, listen: what SwiftNIO's ServerBootstrap does, with the descriptor kept.
    private static func bind(host: String, port: Int) throws -> Int32 {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let descriptor = socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw GustError("Cannot make a socket for \(host):\(port): \(String(cString: strerror(errno)))") }
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0, listen(descriptor, 4096) == 0 else {
            let code = errno
            close(descriptor)
            throw GustError("Cannot listen on \(host):\(port): \(String(cString: strerror(code)))", hint: "Is another server on that port?")
        }
        return descriptor
    }
}
