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

    /// A build makes whatever names it likes in its cache, bytes that are no UTF-8 among them: what
    /// lies under such a name counts as any other (else a cache kept gigabytes past the disk bound).
    @Test(.scratchDirectory) func whatLiesUnderANameThatIsNotUTF8IsCounted() throws {
        let root = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let odd: [CChar] = Array(root.path.utf8CString.dropLast()) + [CChar(bitPattern: 0x2F), CChar(bitPattern: 0xFF), CChar(bitPattern: 0xFE), 0]
        #expect(mkdir(odd, 0o755) == 0)
        let file = Array(odd.dropLast()) + Array("/big".utf8CString)
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        try #require(fd >= 0)
        let data = [UInt8](repeating: 7, count: 1 << 20)
        #expect(write(fd, data, data.count) == data.count)
        close(fd)
        let tally = DiskUsage.tally(root)
        #expect(tally.bytes >= 1 << 20, "\(tally)")
        #expect(tally.entries == 3, "\(tally)")
    }

    /// Below `maxDepth` directories nothing is walked: the tree says so, and measures as over any
    /// bound, so that what it hides there is never free.
    @Test(.scratchDirectory) func aTreeDeeperThanTheWalkDescendsIsOverAnyBound() throws {
        let root = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var fd = open(root.path, O_RDONLY | O_DIRECTORY)
        for _ in 0...DiskUsage.maxDepth {
            #expect(mkdirat(fd, "d", 0o755) == 0)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        close(fd)
        let tally = DiskUsage.tally(root)
        #expect(tally.isTooDeep && tally.entries == DiskUsage.maxDepth + 1, "\(tally.entries)")
        #expect(DiskUsage.of(root) >= Int.max / 4)
        // rm walks by descriptors too; the scratch directory's removal (by paths) stops at PATH_MAX.
        #expect(try Command.run("/bin/rm", ["-rf", root.path]).status == 0)
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
