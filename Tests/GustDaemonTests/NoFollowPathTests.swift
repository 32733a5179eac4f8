import Glibc
import Foundation
@testable import GustDaemon
import Testing

/// An app's code writes in its socket directory (`/run/gust` in its sandbox) and in its forks':
/// whatever link it puts there, gustd's connects, set-ups and removals below `run/instances` never
/// follow (before, `instance.sock -> ../../gustd.sock` gave the app's callers gustd's admin API).
@Suite struct NoFollowPathTests {
    /// A scratch tree: `base` (gustd's `run/instances`), and beside it what an app must not reach.
    struct Tree {
        let root: URL
        var base: String { root.path + "/instances" }
        var outside: String { root.path + "/outside" }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("nofollow-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(atPath: root.path + "/instances/zygote", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root.path + "/outside", withIntermediateDirectories: true)
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// A listening Unix socket at `path`; the descriptor.
    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && Glibc.listen(fd, 4) == 0, "\(String(cString: strerror(errno)))")
        return fd
    }

    /// Whether a connection waits at the listener `fd` (without blocking).
    static func hasConnection(_ fd: Int32) -> Bool {
        var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&waiting, 1, 0) == 1
    }

    @Test func aSocketIsReachedAsItselfAndNeverThroughALink() async throws {
        let tree = try Tree()
        defer { tree.remove() }
        let admin = try Self.listen(at: tree.outside + "/gustd.sock")
        defer { close(admin) }
        let instance = try Self.listen(at: tree.base + "/zygote/instance.sock")
        defer { close(instance) }

        let reached = try NoFollowPath.socket(tree.base + "/zygote/instance.sock", below: tree.base)
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in reached.address.utf8.enumerated() { bytes[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        reached.close()
        #expect(connected == 0 && Self.hasConnection(instance))

        // The app's links: as the socket itself, as a fork's directory, and a path with `..`.
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/linked.sock", withDestinationPath: "../../outside/gustd.sock")
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/fork", withDestinationPath: "../../outside")
        for path in ["/zygote/linked.sock", "/zygote/fork/gustd.sock", "/zygote/../../outside/gustd.sock"] {
            #expect(throws: NoFollowPath.Failure.self, "\(path)") { try NoFollowPath.socket(tree.base + path, below: tree.base) }
        }
        // A file is not a socket.
        #expect(FileManager.default.createFile(atPath: tree.base + "/zygote/plain", contents: Data()))
        #expect(throws: NoFollowPath.Failure.self) { try NoFollowPath.socket(tree.base + "/zygote/plain", below: tree.base) }
        #expect(!Self.hasConnection(admin), "nothing reached the socket outside")
    }

    @Test func aConnectionToAnInstanceGoesNoFurtherThanItsLink() async throws {
        let tree = try Tree()
        defer { tree.remove() }
        let admin = try Self.listen(at: tree.outside + "/gustd.sock")
        defer { close(admin) }
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/instance.sock", withDestinationPath: "../../outside/gustd.sock")
        await #expect(throws: (any Error).self) {
            try await InstanceConnection.connect(socketPath: tree.base + "/zygote/instance.sock", below: tree.base, internalToken: "x")
        }
        #expect(!Self.hasConnection(admin))
    }

    @Test func aDirectoryIsMadeAndSetUpThroughItsOwnDescriptor() throws {
        let tree = try Tree()
        defer { tree.remove() }
        let records = tree.outside + "/records.sock"
        #expect(FileManager.default.createFile(atPath: records, contents: Data()))
        try NoFollowPath.makeDirectory(tree.base + "/zygote/f1", below: tree.base, mode: 0o777, linking: records, as: "records.sock")
        let made = try FileManager.default.attributesOfItem(atPath: tree.base + "/zygote/f1")
        #expect(made[.type] as? FileAttributeType == .typeDirectory && (made[.posixPermissions] as? Int) == 0o777)
        #expect(FileManager.default.fileExists(atPath: tree.base + "/zygote/f1/records.sock"))

        // Through a link the app made in its zygote's directory: refused, nothing made outside.
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/away", withDestinationPath: "../../outside")
        #expect(throws: NoFollowPath.Failure.self) {
            try NoFollowPath.makeDirectory(tree.base + "/zygote/away/f2", below: tree.base, mode: 0o777, linking: records, as: "records.sock")
        }
        #expect(!FileManager.default.fileExists(atPath: tree.outside + "/f2"))
        // Where the app put a link by the new directory's name: refused, its target untouched.
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/f3", withDestinationPath: "../../outside")
        #expect(throws: NoFollowPath.Failure.self) {
            try NoFollowPath.makeDirectory(tree.base + "/zygote/f3", below: tree.base, mode: 0o777, linking: records, as: "records.sock")
        }
        #expect((try FileManager.default.attributesOfItem(atPath: tree.outside)[.posixPermissions] as? Int) != 0o777)
    }

    @Test func aRemovalTakesLinksAsThemselvesAndWhatIsInsideWhole() throws {
        let tree = try Tree()
        defer { tree.remove() }
        let kept = tree.outside + "/kept"
        #expect(FileManager.default.createFile(atPath: kept, contents: Data("x".utf8)))
        let fork = tree.base + "/zygote/f1"
        try FileManager.default.createDirectory(atPath: fork + "/deep/er", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: fork + "/deep/er/file", contents: Data()))
        try FileManager.default.createSymbolicLink(atPath: fork + "/deep/away", withDestinationPath: tree.outside)
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/zygote/f2", withDestinationPath: tree.outside)
        // A name that is not UTF-8, as an app can make one.
        let odd = fork + "/odd-"
        let oddName = Array(odd.utf8).map { CChar(bitPattern: $0) } + [CChar(bitPattern: 0xFF), 0]
        let made = oddName.withUnsafeBufferPointer { open($0.baseAddress!, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600) }
        #expect(made >= 0)
        close(made)

        NoFollowPath.remove(tree.base + "/zygote/f2/kept", below: tree.base)  // through the link: nothing
        NoFollowPath.remove(fork, below: tree.base)
        NoFollowPath.remove(tree.base + "/zygote/f2", below: tree.base)
        #expect(!FileManager.default.fileExists(atPath: fork))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: tree.base + "/zygote/f2")) == nil)
        #expect(FileManager.default.fileExists(atPath: kept), "nothing outside removed")
        #expect(FileManager.default.fileExists(atPath: tree.base + "/zygote"))
    }
}
