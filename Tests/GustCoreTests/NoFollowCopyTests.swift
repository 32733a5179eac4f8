import Foundation
import GustTesting
import Testing

@testable import GustCore

/// A backup (often run as root) copies the home of gustd's user: it never follows a link, not even
/// a directory swapped for one while the copy is under way.
@Suite struct NoFollowCopyTests {
    @Test(.scratchDirectory) func aDirectorySwappedForALinkMidCopyIsNotFollowed() throws {
        let fm = FileManager.default
        let scratch = ScratchDirectory.current
        let secrets = scratch.appendingPathComponent("root-secrets")  // think /root/.ssh
        try fm.createDirectory(at: secrets, withIntermediateDirectories: true)
        try Data("root's key".utf8).write(to: secrets.appendingPathComponent("id_ed25519"))
        let home = scratch.appendingPathComponent("home")
        try fm.createDirectory(at: home.appendingPathComponent("zz/deep"), withIntermediateDirectories: true)
        try Data("gust's".utf8).write(to: home.appendingPathComponent("zz/deep/id_ed25519"))
        try Data("mine".utf8).write(to: home.appendingPathComponent("zz/file"))
        try fm.createSymbolicLink(at: home.appendingPathComponent("zz/link"), withDestinationURL: secrets)

        let backup = scratch.appendingPathComponent("backup")
        try fm.createDirectory(at: backup, withIntermediateDirectories: true)
        // Just before `deep` is opened, gustd's user puts a link to root's directory in its place.
        try NoFollowCopy.copy("zz", of: home, to: backup.appendingPathComponent("zz"), beforeDescending: { directory in
            guard directory == "deep" else { return }
            let deep = home.appendingPathComponent("zz/deep")
            try? fm.moveItem(at: deep, to: scratch.appendingPathComponent("moved"))
            try? fm.createSymbolicLink(at: deep, withDestinationURL: secrets)
        })
        var copied: [String] = []
        for case let relative as String in fm.enumerator(atPath: backup.path)! {
            let path = backup.appendingPathComponent(relative).path
            if let data = fm.contents(atPath: path) { copied.append(String(decoding: data, as: UTF8.self)) }
        }
        #expect(!copied.contains("root's key"), "\(copied)")
        #expect(try String(contentsOf: backup.appendingPathComponent("zz/file"), encoding: .utf8) == "mine")
        #expect(try fm.destinationOfSymbolicLink(atPath: backup.appendingPathComponent("zz/link").path) == secrets.path, "a link stays a link")
    }

    @Test(.scratchDirectory) func modesAndTimesAreKeptWithoutSetuidAndTemporaryFilesAndFIFOsAreLeftOut() throws {
        let fm = FileManager.default
        let home = ScratchDirectory.current.appendingPathComponent("home")
        try fm.createDirectory(at: home.appendingPathComponent("tree/sub"), withIntermediateDirectories: true)
        let tool = home.appendingPathComponent("tree/sub/tool")
        try Data("#!/bin/sh\n".utf8).write(to: tool)
        chmod(tool.path, 0o4755)
        try Data("half".utf8).write(to: home.appendingPathComponent("tree/write.tmp"))
        #expect(mkfifo(home.appendingPathComponent("tree/fifo").path, 0o600) == 0)
        let copy = ScratchDirectory.current.appendingPathComponent("copy")
        try fm.createDirectory(at: copy, withIntermediateDirectories: true)
        try NoFollowCopy.copy("tree", of: home, to: copy.appendingPathComponent("tree"), leavingOut: { $0.hasSuffix(".tmp") })
        let mode = try #require(try fm.attributesOfItem(atPath: copy.appendingPathComponent("tree/sub/tool").path)[.posixPermissions] as? Int)
        #expect(mode == 0o755)
        let times = try [tool, copy.appendingPathComponent("tree/sub/tool")].map {
            try #require(try fm.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date)
        }
        #expect(times[0] == times[1], "the copy keeps its source's mtime")
        #expect(try fm.contentsOfDirectory(atPath: copy.appendingPathComponent("tree").path).sorted() == ["sub"])
    }
}
