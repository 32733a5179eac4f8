import Foundation
import GustTesting
import Testing

@testable import GustCore

/// The walker behind every disk bound of an app's (repository, build cache, slug) and a stack's size.
@Suite struct DiskUsageTests {
    @Test(.scratchDirectory) func aHardLinkCountsOnceAndNoLinkIsFollowed() throws {
        let root = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 1 << 20).write(to: root.appendingPathComponent("a"))
        let alone = DiskUsage.of(root)
        #expect(alone >= 1 << 20)
        #expect(link(root.path + "/a", root.path + "/b") == 0)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/usr", withDestinationPath: "/usr")
        #expect(DiskUsage.of(root) < alone + 65536)
        // Unpacked, each link is a copy: an archive carries the data once per link, and a 900 MB
        // sparse file linked a thousand times measured 900 MB and unpacked as 900 GB.
        #expect(DiskUsage.of(root, .unpacked) >= 2 << 20)
    }

    @Test(.scratchDirectory) func aTallyCountsEntriesAndTheBytesOfTheirPaths() throws {
        let root = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("ab"), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: root.path + "/ab/cde", contents: nil))
        let tally = DiskUsage.tally(root)
        #expect(tally.entries == 3)
        #expect(tally.pathBytes == "ab".utf8.count + "ab/cde".utf8.count)
    }

    @Test(.scratchDirectory) func everyEntryCountsAtLeastABlockAndHolesOnlyAsUnpacked() throws {
        let root = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let empty = DiskUsage.of(root)
        for index in 0..<1000 {
            #expect(FileManager.default.createFile(atPath: root.path + "/empty-\(index)", contents: nil))
        }
        #expect(DiskUsage.of(root) >= empty + 1000 * 512, "a thousand empty files are not nothing")

        let holes = ScratchDirectory.current.appendingPathComponent("holes")
        try FileManager.default.createDirectory(at: holes, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: holes.path + "/sparse", contents: nil))
        #expect(truncate(holes.path + "/sparse", 100 << 20) == 0)
        #expect(DiskUsage.of(holes) < 1 << 20)
        #expect(DiskUsage.of(holes, .unpacked) >= 100 << 20)
    }

    @Test func aMissingRootIsNothing() {
        #expect(DiskUsage.of(URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)")) == 0)
    }
}
