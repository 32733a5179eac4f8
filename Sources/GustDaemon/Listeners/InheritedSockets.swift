#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// The listening sockets this gustd was started with, by name: from systemd's
/// socket unit (`contrib/systemd/gustd.socket`) or from the gustd that handed
/// over to this one (`GustdHandover`). Both speak systemd's socket-activation
/// protocol (sd_listen_fds(3)): the sockets are descriptors 3, 4, …,
/// `LISTEN_FDS` says how many, `LISTEN_PID` whose they are and `LISTEN_FDNAMES`
/// their names (`http`, `https`, `console`, `metrics`). Read once, at start,
/// and taken out of the environment so that no child sees them; a socket no
/// listener takes is closed.
final class InheritedSockets: Sendable {
    private let sockets: Mutex<[String: Int32]>

    init(_ sockets: [String: Int32]) { self.sockets = Mutex(sockets) }

    /// What the environment passes to this process (nothing unless `LISTEN_PID` is its pid).
    static func fromEnvironment() -> InheritedSockets {
        let environment = ProcessInfo.processInfo.environment
        defer {
            for name: String in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) }
        }
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return InheritedSockets(parse(pid: environment["LISTEN_PID"], count: environment["LISTEN_FDS"], names: names, me: getpid()))
    }

    /// The name of each descriptor passed; one without a name (systemd's default is
    /// "unknown") is `http` when it is the only one.
    static func parse(pid: String?, count: String?, names: [String], me: Int32) -> [String: Int32] {
        guard let pid = pid.flatMap({ Int32($0) }), pid == me, let count = count.flatMap({ Int($0) }), count > 0 else { return [:] }
        var sockets: [String: Int32] = [:]
        for index in 0..<count {
            var name = index < names.count ? names[index] : ""
            if count == 1, name.isEmpty || name == "unknown" { name = "http" }
            sockets[name] = Int32(3 + index)
        }
        return sockets
    }

    var count: Int { sockets.withLock { $0.count } }

    /// The socket called `name`, once: the listener that takes it owns it.
    func take(_ name: String) -> Int32? {
        sockets.withLock { $0.removeValue(forKey: name) }
    }

    /// Closes the sockets no listener took (a `--console` given up, say), returning their names.
    func closeUntaken() -> [String] {
        let left = sockets.withLock { sockets in
            defer { sockets = [:] }
            return sockets
        }
        left.values.forEach { close($0) }
        return left.keys.sorted()
    }
}
