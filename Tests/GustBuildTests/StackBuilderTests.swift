import Foundation
import GustCore
import Testing

@testable import GustBuild

/// StackBuilder's steps around mmdebstrap, on small trees (StackTests builds real stacks).
struct StackBuilderTests {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stack-builder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func mode(_ path: String) -> Int {
        var info = stat()
        lstat(path, &info)
        return Int(info.st_mode & 0o7777)
    }

    @Test func aRootIsMadeReadOnlyLinksUntouchedAndRemovedAfter() throws {
        let root = try scratch()
        defer { try? StackBuilder.removeTree(root) }
        try FileManager.default.createDirectory(atPath: root.path + "/usr/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root.path + "/usr/bin/tool", contents: Data("x".utf8), attributes: [.posixPermissions: 0o4755])
        _ = FileManager.default.createFile(atPath: root.path + "/usr/data", contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        _ = FileManager.default.createFile(atPath: root.path + "/outside", contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        try FileManager.default.createSymbolicLink(atPath: root.path + "/usr/link", withDestinationPath: root.path + "/outside")
        try FileManager.default.createDirectory(atPath: root.path + "/tmp", withIntermediateDirectories: true)
        chmod(root.path + "/tmp", 0o1777)
        try StackBuilder.makeReadOnly(root.appendingPathComponent("usr"))
        try StackBuilder.makeReadOnly(root.appendingPathComponent("tmp"))
        #expect(mode(root.path + "/usr/bin/tool") == 0o4555)
        #expect(mode(root.path + "/usr/data") == 0o444)
        #expect(mode(root.path + "/usr/bin") == 0o555 && mode(root.path + "/usr") == 0o555)
        #expect(mode(root.path + "/tmp") == 0o1555)
        #expect(mode(root.path + "/outside") == 0o644, "a link's target is not followed")
        try StackBuilder.removeTree(root)
        #expect(!FileManager.default.fileExists(atPath: root.path))
    }

    @Test func diskUsageCountsAHardLinkedFileOnceAndFollowsNoLink() throws {
        let root = try scratch()
        defer { try? StackBuilder.removeTree(root) }
        let big = Data(repeating: 7, count: 1 << 20)
        try big.write(to: root.appendingPathComponent("a"))
        let alone = StackBuilder.diskUsage(of: root)
        #expect(alone >= 1 << 20)
        link(root.path + "/a", root.path + "/b")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/usr", withDestinationPath: "/usr")
        #expect(StackBuilder.diskUsage(of: root) < alone + 65536)
    }

    @Test func theNextVersionFollowsTheHighestOfItsNameAndUnfinishedBuildsAreRemoved() throws {
        let home = GustHome(path: try scratch().path)
        defer { try? StackBuilder.removeTree(home.root) }
        for name in ["bookworm@1", "bookworm@3", "trixie@7", ".building-bookworm-4-abcd", "junk"] {
            try FileManager.default.createDirectory(at: home.stacks.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        #expect(try StackBuilder(home: home, name: "bookworm", suite: "bookworm").nextVersion() == 4)
        #expect(try StackBuilder(home: home, name: "trixie", suite: "trixie").nextVersion() == 8)
        #expect(try StackBuilder(home: home, name: "web", suite: "trixie").nextVersion() == 1)
        try StackBuilder.removeUnfinished(in: home)
        #expect(!FileManager.default.fileExists(atPath: home.stacks.appendingPathComponent(".building-bookworm-4-abcd").path))
        #expect(throws: GustError.self) { try StackBuilder(home: home, name: "x", suite: "sid") }
        #expect(throws: GustError.self) { try StackBuilder(home: home, name: "../etc", suite: "trixie") }
    }
}
