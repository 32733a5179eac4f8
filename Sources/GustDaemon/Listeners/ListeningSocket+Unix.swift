#if canImport(Glibc)
import Glibc
#endif
import GustCore

extension ListeningSocket {
    /// A Unix-domain listening socket at `path` (gustd's admin socket, the records channel),
    /// bound here with `mode` set before it listens, so that no connection comes in under
    /// another mode. A socket file left by an earlier gustd is replaced. Never inherited nor
    /// handed over: each gustd binds its own once the one before it has exited.
    static func unix(_ name: String, path: String, mode: mode_t) throws -> ListeningSocket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw GustError("Cannot listen on \(path): the path is longer than a Unix socket's path may be.", hint: "Use a shorter --home.")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        unlink(path)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw GustError("Cannot make a socket for \(path): \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, mode) == 0, listen(descriptor, 4096) == 0 else {
            let code = errno
            close(descriptor)
            throw GustError("Cannot listen on \(path): \(String(cString: strerror(code)))")
        }
        return ListeningSocket(name: name, descriptor: descriptor, inherited: false)
    }
}
