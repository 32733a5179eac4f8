import Foundation
import Glibc
import GustCore
import GustTesting
import Testing

/// Root writes stacks in a home that is gustd's user's: a link that user puts at `stacks` is never
/// followed, a `stacks` someone else owns is refused, and once opened, the directory is reached
/// through its descriptor, whatever is renamed or linked in the home after.
@Suite struct StacksDirectoryTests {
    func mode(_ path: String) -> mode_t {
        var info = stat()
        lstat(path, &info)
        return info.st_mode & 0o7777
    }

    @Test(.scratchDirectory) func aLinkAtStacksIsRefusedAndItsTargetUntouched() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
        let elsewhere = ScratchDirectory.current.appendingPathComponent("elsewhere")  // think /root
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: home.stacks, withDestinationURL: elsewhere)

        // A stack seen through the link, so that `gust stacks default` gets as far as writing.
        let reference = try Stack.Reference(parsing: "bookworm@1")
        let description = Stack.descriptionFile(of: reference, in: home)
        try FileManager.default.createDirectory(at: description.deletingLastPathComponent(), withIntermediateDirectories: true)
        try StackCatalog.encode(Stack(reference: reference, suite: "bookworm", createdAt: Date(), python: nil, node: nil, sizeBytes: nil)).write(to: description)
        chmod(elsewhere.path, 0o700)

        #expect(throws: GustError.self) { try StacksDirectory(home: home) }
        #expect(mode(elsewhere.path) == 0o700, "not chmodded through the link")
        #expect(throws: GustError.self) { try StackCatalog(home: home).setDefault("bookworm") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path) == ["bookworm@1"], "nothing written through the link")
    }

    @Test(.scratchDirectory) func aStacksDirectoryAnotherUserOwnsIsRefused() throws {
        guard geteuid() == 0 else { return }  // chown needs root, as building a stack does
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.stacks, withIntermediateDirectories: true)
        #expect(chown(home.stacks.path, 1000, 1000) == 0)
        let error = #expect(throws: GustError.self) { try StacksDirectory(home: home) }
        #expect(error?.message.contains("owned by uid 1000") == true, "\(String(describing: error))")
    }

    @Test(.scratchDirectory) func onceOpenedTheDirectoryIsReachedThroughItsDescriptor() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        try FileManager.default.createDirectory(at: home.root, withIntermediateDirectories: true)
        let stacks = try StacksDirectory(home: home)
        #expect(mode(home.stacks.path) == 0o755)
        // gustd's user renames it away and puts a link to somewhere else in its place.
        let moved = home.root.appendingPathComponent("moved")
        #expect(rename(home.stacks.path, moved.path) == 0)
        let elsewhere = ScratchDirectory.current.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: home.stacks, withDestinationURL: elsewhere)

        try Data("x".utf8).write(to: stacks.url.appendingPathComponent("written"))
        #expect(FileManager.default.fileExists(atPath: moved.appendingPathComponent("written").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty)
    }
}
