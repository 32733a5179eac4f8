#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Which host uid an app's sandboxed processes run as.
///
/// With a subordinate range in `/etc/subuid` and `/etc/subgid` for the user
/// that runs gustd (as rootless podman has), app number N runs as host uid and
/// gid `start + N`: another app's processes and files are another user's, so
/// a wrong bind mount still could not expose them. The setuid helpers
/// `newuidmap`/`newgidmap` write the map of each sandbox's user namespace:
/// inside uid 0 is gustd's own (it sets the sandbox up, never runs app code),
/// inside uid 1000 is the app's. Without a range (root, or a user the installer
/// did not set up) every app runs as gustd's uid, in its own user namespace.
public struct SandboxIdentity: Sendable, Equatable {
    /// The first host uid and gid of gustd's subordinate range and how many there are.
    public struct Range: Sendable, Equatable {
        public var uidStart: UInt32
        public var gidStart: UInt32
        public var count: UInt32
    }

    public let range: Range?
    /// gustd's own uid and gid (inside uid 0 of each sandbox).
    public let uid: UInt32
    public let gid: UInt32
    /// The uid an app's code has inside its sandbox.
    public static let appUIDInside: UInt32 = 1000

    public init(range: Range?, uid: UInt32, gid: UInt32) {
        self.range = range
        self.uid = uid
        self.gid = gid
    }

    /// The range `/etc/subuid` and `/etc/subgid` give the current user (by name or uid),
    /// if both exist, `newuidmap` is installed and the user is not root.
    public static func current() -> SandboxIdentity {
        let uid = getuid(), gid = getgid()
        guard uid != 0, FileManager.default.isExecutableFile(atPath: newuidmap),
            FileManager.default.isExecutableFile(atPath: newgidmap)
        else { return SandboxIdentity(range: nil, uid: uid, gid: gid) }
        let name = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        let keys = [String(uid)] + (name.map { [$0] } ?? [])
        guard let uids = subordinate("/etc/subuid", keys), let gids = subordinate("/etc/subgid", keys) else {
            return SandboxIdentity(range: nil, uid: uid, gid: gid)
        }
        return SandboxIdentity(range: Range(uidStart: uids.start, gidStart: gids.start, count: min(uids.count, gids.count)), uid: uid, gid: gid)
    }

    /// The host uid and gid of app number `number`, nil without a range.
    public func hostIDs(ofApp number: Int) throws -> (uid: UInt32, gid: UInt32)? {
        guard let range else { return nil }
        guard number > 0, UInt32(number) < range.count else {
            throw SandboxError("App number \(number) is past the \(range.count) uids of gustd's subordinate range (/etc/subuid); give its user a larger range.")
        }
        return (range.uidStart + UInt32(number), range.gidStart + UInt32(number))
    }

    /// Writes the user namespace map of the sandbox whose first process is `pid`
    /// (bubblewrap's, waiting on its block descriptor): inside 0 is gustd, inside 1000 the app.
    public func map(pid: Int32, app ids: (uid: UInt32, gid: UInt32)) throws {
        let inside = String(Self.appUIDInside)
        try Self.run(Self.newuidmap, [String(pid), "0", String(uid), "1", inside, String(ids.uid), "1"])
        try Self.run(Self.newgidmap, [String(pid), "0", String(gid), "1", inside, String(ids.gid), "1"])
    }

    static let newuidmap = "/usr/bin/newuidmap"
    static let newgidmap = "/usr/bin/newgidmap"

    /// `NAME:START:COUNT` lines; the first that names one of `keys`.
    static func subordinate(_ path: String, _ keys: [String]) -> (start: UInt32, count: UInt32)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":")
            guard fields.count == 3, keys.contains(String(fields[0])), let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 1
            else { continue }
            return (start, count)
        }
        return nil
    }

    /// posix_spawn and wait: quicker than Foundation's Process, and no thread of its own; the
    /// setuid helper gets no descriptor of gustd's beyond 0, 1 and 2 (`SandboxSpawn`).
    private static func run(_ executable: String, _ arguments: [String]) throws {
        let status: Int32
        switch SandboxSpawn.spawn([executable] + arguments) {
        case .success(let child): status = SandboxSpawn.wait(child)
        case .failure(let failure): throw SandboxError("Cannot run \(executable): \(failure.words)")
        }
        guard status == 0 else {
            throw SandboxError("\(executable) \(arguments.joined(separator: " ")) failed (status \(status)): is the range in /etc/subuid and /etc/subgid?")
        }
    }
}

public struct SandboxError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
