#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Ports on 127.0.0.1 for the real servers a test starts (sshd, Prometheus,
/// pebble, podman's published ports): one place that asks the kernel for a
/// free one and builds the loopback address, so every suite asks the same way.
public enum LoopbackPort {
    /// A port the kernel just handed out on 127.0.0.1. It is free at the moment of
    /// asking only: a server that binds it later may lose it to another process.
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = address(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw FixtureFailure("cannot bind a loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` now.
    public static func accepts(_ port: Int) -> Bool {
        guard let fd = try? connect(port) else { return false }
        close(fd)
        return true
    }

    /// A blocking TCP connection to 127.0.0.1:`port`, its descriptor the caller's to close; the one
    /// place tests connect to a loopback port by hand. The error names the port and the errno.
    /// `from`: the last byte of the loopback address the connection comes from (127.0.0.`from`), so
    /// that a test can be several clients to gustd's per-address bounds.
    public static func connect(_ port: Int, from source: UInt8 = 1) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureFailure("socket: errno \(errno)") }
        if source != 1 {
            var local = address(port: 0, host: source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let code = errno
                close(fd)
                throw FixtureFailure("cannot bind 127.0.0.\(source): errno \(code)")
            }
        }
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw FixtureFailure("cannot connect to 127.0.0.1:\(port): errno \(code)")
        }
        return fd
    }

    private static func address(port: Int, host: UInt8 = 1) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = (UInt32(0x7F00_0000) | UInt32(host)).bigEndian
        return address
    }
}
