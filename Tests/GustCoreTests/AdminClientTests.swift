#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore
import GustTesting
import Testing

/// The admin client's wait for gustd has one bound, its read timeout, with or without a pusher
/// to watch: a gustd that accepted (here: the listener's backlog did) and says nothing ends the
/// wait with 504 once it passes, and a pusher's hang-up ends it at once with 499.
@Suite(.timeLimit(.minutes(1)))
struct AdminClientTests {
    @Test(.scratchDirectory) func aSilentGustdEndsTheWaitAtTheReadTimeoutWithOrWithoutAPusher() throws {
        let (home, listener) = try Self.silentGustd()
        defer { close(listener) }
        var watched: [Int32] = [-1, -1]
        #expect(pipe(&watched) == 0)
        defer { watched.forEach { close($0) } }
        for hangUp in [nil, watched[0]] {
            let client = AdminClient(home: home, readTimeout: .milliseconds(200), hangUp: hangUp)
            #expect { try client.reconcile() } throws: { error in
                (error as? GustError)?.code == 504 && (error as? GustError)?.message.contains("said nothing for") == true
            }
        }
    }

    @Test(.scratchDirectory) func aPushersHangUpEndsTheWaitAtOnce() throws {
        let (home, listener) = try Self.silentGustd()
        defer { close(listener) }
        var watched: [Int32] = [-1, -1]
        #expect(pipe(&watched) == 0)
        defer { close(watched[0]) }
        close(watched[1])  // the pusher has gone
        let client = AdminClient(home: home, readTimeout: .seconds(600), hangUp: watched[0])
        #expect { try client.reconcile() } throws: { error in (error as? GustError)?.code == 499 }
    }

    /// A listener on the home's admin socket that never accepts: the kernel's backlog takes the
    /// connection and the request, and no answer ever comes.
    static func silentGustd() throws -> (GustHome, Int32) {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("h").path)
        try FileManager.default.createDirectory(at: home.run, withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = home.adminSocket.path
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw GustError("Cannot listen on \(path): \(String(cString: strerror(errno)))") }
        return (home, fd)
    }
}
