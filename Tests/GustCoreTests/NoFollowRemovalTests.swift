import Foundation
import GustTesting
import Testing

@testable import GustCore

/// Removing a tree an app wrote in never follows a link, even one swapped in for a directory
/// while the walk is under way (a build still running as its workspace is removed).
@Suite struct NoFollowRemovalTests {
    @Test(.scratchDirectory) func aDirectorySwappedForALinkMidWalkLeavesWhatTheLinkNamesAlone() throws {
        let fm = FileManager.default
        let scratch = ScratchDirectory.current
        let outside = scratch.appendingPathComponent("home")  // think GUST_HOME
        try fm.createDirectory(at: outside.appendingPathComponent("releases"), withIntermediateDirectories: true)
        try Data("key".utf8).write(to: outside.appendingPathComponent("secrets.key"))
        let workspace = scratch.appendingPathComponent("tmp/build-cats-0123abcd")
        try fm.createDirectory(at: workspace.appendingPathComponent("app/deep/er"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: workspace.appendingPathComponent("app/deep/er/file"))
        try fm.createSymbolicLink(at: workspace.appendingPathComponent("app/link"), withDestinationURL: outside)

        // Just before `deep` is opened, the app puts a link to the home in its place.
        let parent = open(workspace.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        defer { close(parent) }
        "build-cats-0123abcd".withCString { name in
            NoFollowRemoval.removeEntry(name, in: parent, depth: 0) { directory in
                guard directory == "deep" else { return }
                let deep = workspace.appendingPathComponent("app/deep")
                try? fm.moveItem(at: deep, to: scratch.appendingPathComponent("moved"))
                try? fm.createSymbolicLink(at: deep, withDestinationURL: outside)
            }
        }
        #expect(fm.fileExists(atPath: outside.appendingPathComponent("secrets.key").path), "the home's files are left alone")
        #expect(fm.fileExists(atPath: outside.appendingPathComponent("releases").path))
        #expect(!fm.fileExists(atPath: workspace.path), "the workspace, links and all, is gone")
    }

    @Test(.scratchDirectory) func aTreeIsRemovedWholeAndAMissingOneIsFine() throws {
        let tree = ScratchDirectory.current.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("a/b/c"), withIntermediateDirectories: true)
        try Data().write(to: tree.appendingPathComponent("a/b/c/d"))
        chmod(tree.appendingPathComponent("a/b").path, 0o500)  // as root, still removed
        NoFollowRemoval.removeTree(at: tree)
        #expect(!FileManager.default.fileExists(atPath: tree.path))
        NoFollowRemoval.removeTree(at: tree)
    }
}
