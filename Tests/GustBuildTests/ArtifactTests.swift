import Foundation
import GustBuild
import Synchronization
import GustTesting
import Testing

@Suite struct ArtifactTests {
    func slug() throws -> URL {
        let dir = ScratchDirectory.current.appendingPathComponent("slug")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try "#!/bin/sh\necho hi\n".write(to: dir.appendingPathComponent("bin/start"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.appendingPathComponent("bin/start").path)
        try "data\n".write(to: dir.appendingPathComponent("data.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: "bin/start")
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_700_000_000)], ofItemAtPath: dir.appendingPathComponent("data.txt").path)
        return dir
    }

    @Test(.scratchDirectory) func identicalDirectoriesShareOneArtifactNamedByItsDigest() throws {
        let dir = try slug()
        let store = ScratchDirectory.current.appendingPathComponent("artifacts")
        let first = try Artifacts.pack(dir, into: store)
        let second = try Artifacts.pack(dir, into: store)
        #expect(first == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.path) == ["\(first.digest).tar.zst"])
        let sum = try Command.run("sha256sum", [first.url.path]).stdout.prefix(64)
        #expect(String(sum) == first.digest)
        #expect(try Command.run("zstd", ["-t", "-q", first.url.path]).status == 0)
    }

    /// A build whose slug's artifact is already there (another app's, or an old release's) marks
    /// it as just packed: a prune then spares it until its own release is recorded.
    @Test(.scratchDirectory) func packingASlugWhoseArtifactIsThereMarksItAsJustPacked() throws {
        let dir = try slug()
        let store = ScratchDirectory.current.appendingPathComponent("artifacts")
        let first = try Artifacts.pack(dir, into: store)
        let old = Date(timeIntervalSince1970: 1_600_000_000)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: first.url.path)
        let before = Date()
        let second = try Artifacts.pack(dir, into: store)
        #expect(second == first)
        let marked = try #require(try FileManager.default.attributesOfItem(atPath: first.url.path)[.modificationDate] as? Date)
        #expect(marked >= before.addingTimeInterval(-1))
    }

    @Test(.scratchDirectory) func roundTripKeepsContentModesLinksAndTimes() throws {
        let artifact = try Artifacts.pack(try slug(), into: ScratchDirectory.current.appendingPathComponent("artifacts"))
        let release = ScratchDirectory.current.appendingPathComponent("releases/v1")
        try Artifacts.unpack(artifact.url, to: release)
        #expect(try String(contentsOf: release.appendingPathComponent("data.txt"), encoding: .utf8) == "data\n")
        #expect(FileManager.default.isExecutableFile(atPath: release.appendingPathComponent("bin/start").path))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: release.appendingPathComponent("link").path) == "bin/start")
        let mtime = try FileManager.default.attributesOfItem(atPath: release.appendingPathComponent("data.txt").path)[.modificationDate] as? Date
        #expect(mtime == Date(timeIntervalSince1970: 1_700_000_000))
        // The destination must not exist yet: a release directory is never overwritten.
        #expect(throws: (any Error).self) { try Artifacts.unpack(artifact.url, to: release) }
    }

    /// libarchive reads the umask by setting it to 0 and back, for every entry it writes, and the
    /// umask is the process's: a file another thread of gustd created in that moment got 0666 (a
    /// directory 0777) instead of what `GustHome.restrictNewFiles` allows. An unpack keeps it to its own
    /// thread: the process's umask, as another thread reads it all along, never changes.
    @Test(.scratchDirectory) func anUnpackNeverChangesTheProcesssUmask() throws {
        let dir = try slug()
        for index in 0..<1500 {
            try Data().write(to: dir.appendingPathComponent("file-\(index)"))
        }
        let artifact = try Artifacts.pack(dir, into: ScratchDirectory.current.appendingPathComponent("artifacts"))
        let expected = try Self.processUmask()
        let watching = Atomic(true)
        let readings = Atomic(0)
        let changed = Atomic(0)
        let watcher = Thread {
            while watching.load(ordering: .relaxed) {
                if (try? Self.processUmask()) != expected { changed.add(1, ordering: .relaxed) }
                readings.add(1, ordering: .relaxed)
            }
        }
        watcher.start()
        for round in 0..<4 {
            try Artifacts.unpack(artifact.url, to: ScratchDirectory.current.appendingPathComponent("releases/v\(round)"))
        }
        watching.store(false, ordering: .relaxed)
        while !watcher.isFinished { usleep(1000) }
        #expect(readings.load(ordering: .relaxed) > 100)
        #expect(changed.load(ordering: .relaxed) == 0, "the process's umask was seen changed \(changed.load(ordering: .relaxed)) times")
    }

    /// The umask of the process (its first thread's), as the kernel shows it.
    static func processUmask() throws -> String {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        return status.split(separator: "\n").first { $0.hasPrefix("Umask:") }.map(String.init) ?? ""
    }

    @Test(.scratchDirectory) func aDamagedArtifactIsRefusedBeforeItIsRead() throws {
        let root = ScratchDirectory.current
        let source = root.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try String(repeating: "some data\n", count: 1000).write(to: source.appendingPathComponent("data.txt"), atomically: true, encoding: .utf8)
        let artifact = try Artifacts.pack(source, into: root.appendingPathComponent("artifacts"))
        var bytes = try Data(contentsOf: artifact.url)
        for index in (bytes.count / 2)..<min(bytes.count / 2 + 64, bytes.count) { bytes[index] ^= 0xA5 }
        try bytes.write(to: artifact.url)
        let release = root.appendingPathComponent("releases/v1")
        let error = #expect(throws: ArchiveError.self) { try Artifacts.unpack(artifact.url, to: release) }
        #expect(error?.message.contains("\(artifact.digest).tar.zst is corrupt") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: release.path))
    }

    @Test(.scratchDirectory, arguments: ["../evil.txt", "/tmp/gust-evil-absolute.txt"])
    func entriesLeavingTheReleaseAreRefused(_ name: String) throws {
        let root = ScratchDirectory.current
        let source = root.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try "evil\n".write(to: source.appendingPathComponent("evil.txt"), atomically: true, encoding: .utf8)
        let crafted = root.appendingPathComponent("crafted.tar.zst")
        let transform = name.hasPrefix("/") ? "s,^evil.txt,\(name)," : "s,^,../,"
        #expect(try Command.run("tar", ["--zstd", "-P", "-cf", crafted.path, "-C", source.path, "--transform", transform, "evil.txt"]).status == 0)
        // Named by its digest, as gust names artifacts, so that it passes `verify` and the reader meets its entries.
        let digest = try Command.run("sha256sum", [crafted.path]).stdout.prefix(64)
        let artifact = root.appendingPathComponent("\(digest).tar.zst")
        try FileManager.default.moveItem(at: crafted, to: artifact)
        let release = root.appendingPathComponent("releases/v1")
        #expect(throws: ArchiveError.self) { try Artifacts.unpack(artifact, to: release) }
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("releases/evil.txt").path))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/gust-evil-absolute.txt"))
        #expect(!FileManager.default.fileExists(atPath: release.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("releases").path).isEmpty)
    }
}
