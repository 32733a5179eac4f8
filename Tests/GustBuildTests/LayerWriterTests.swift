import Foundation
@testable import GustBuild
import GustTesting
import Testing

/// An OCI layer's bytes depend on the files' content, names, modes, owners and links only: never on
/// when they were written or read (times are clamped, no atime/ctime, no owner names), and the real
/// `tar` reads back hard links, numeric owners and a slug made readable by the image's user.
@Suite struct LayerWriterTests {
    /// A small root: a setuid program with a second hard link, a symlink, a private directory, a file owned by 1234:5678.
    func tree() throws -> URL {
        let root = ScratchDirectory.current.appendingPathComponent("rootfs")
        let manager = FileManager.default
        try manager.createDirectory(at: root.appendingPathComponent("usr/bin"), withIntermediateDirectories: true)
        try manager.createDirectory(at: root.appendingPathComponent("root"), withIntermediateDirectories: true)
        try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root.appendingPathComponent("root").path)
        try "#!/bin/sh\n".write(to: root.appendingPathComponent("usr/bin/su"), atomically: true, encoding: .utf8)
        try manager.setAttributes([.posixPermissions: 0o4755], ofItemAtPath: root.appendingPathComponent("usr/bin/su").path)
        try manager.linkItem(at: root.appendingPathComponent("usr/bin/su"), to: root.appendingPathComponent("usr/bin/su2"))
        try manager.createSymbolicLink(atPath: root.appendingPathComponent("bin").path, withDestinationPath: "usr/bin")
        try "mail\n".write(to: root.appendingPathComponent("root/owned"), atomically: true, encoding: .utf8)
        #expect(chown(root.appendingPathComponent("root/owned").path, 1234, 5678) == 0)
        return root
    }

    func layer(_ root: URL, name: String, clampTime: Int = 1_700_000_000) throws -> (digest: String, url: URL) {
        let url = ScratchDirectory.current.appendingPathComponent(name)
        let writer = try LayerWriter(to: url, clampTime: clampTime)
        try writer.addTree(root, keepOwners: true)
        return (try writer.finish().digest, url)
    }

    @Test(.scratchDirectory) func theSameTreeGivesTheSameBytesWhateverItsTimes() throws {
        let root = try tree()
        let first = try layer(root, name: "one.tar")
        // Touched, read, its inodes changed: nothing of that reaches the layer.
        for path in ["usr/bin/su", "root/owned", "root"] {
            try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: root.appendingPathComponent(path).path)
        }
        _ = try Data(contentsOf: root.appendingPathComponent("root/owned"))
        let second = try layer(root, name: "two.tar")
        #expect(first.digest == second.digest && first.digest.hasPrefix("sha256:"))
        let sum = try Command.run("sha256sum", [first.url.path]).stdout.prefix(64)
        #expect("sha256:" + sum == first.digest)
        let bytes = String(decoding: try Data(contentsOf: first.url), as: UTF8.self)
        #expect(!bytes.contains("atime") && !bytes.contains("ctime") && !bytes.contains("SCHILY") && !bytes.contains("root\0\0"))
        // Another clamp is another layer: the time is part of the content.
        #expect(try layer(root, name: "three.tar", clampTime: 1_600_000_000).digest != first.digest)
    }

    @Test(.scratchDirectory) func tarReadsBackLinksOwnersAndModes() throws {
        let layer = try layer(try tree(), name: "layer.tar")
        let listing = try Command.run("tar", ["--numeric-owner", "-tvf", layer.url.path]).stdout
        let lines = listing.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: " ").last.map(String.init) ?? "" }.count == lines.count)
        let names = lines.compactMap { line in line.range(of: " 2023-").map { String(line[$0.upperBound...].dropFirst(12)) } }
        #expect(names == ["bin -> usr/bin", "root/", "root/owned", "usr/", "usr/bin/", "usr/bin/su", "usr/bin/su2 link to usr/bin/su"], "\(listing)")
        #expect(lines.contains { $0.hasPrefix("-rwsr-xr-x 0/0") && $0.hasSuffix(" usr/bin/su") }, "\(listing)")
        #expect(lines.contains { $0.hasPrefix("-rw-r--r-- 1234/5678") && $0.hasSuffix(" root/owned") }, "\(listing)")
        #expect(lines.contains { $0.hasPrefix("drwx------ 0/0") && $0.hasSuffix(" root/") }, "\(listing)")
    }

    /// `tar -tvf` of an image's slug layer made from `artifact`, at `/app`.
    func slugLayerListing(_ artifact: URL) throws -> String {
        let url = ScratchDirectory.current.appendingPathComponent("slug.tar")
        let writer = try LayerWriter(to: url, clampTime: 1_700_000_000)
        try writer.addDirectory("app")
        try writer.addArtifact(artifact, prefix: "app")
        _ = try writer.finish()
        return try Command.run("tar", ["--numeric-owner", "-tvf", url.path]).stdout
    }

    /// A build (the app's code) can leave a setuid or setgid file in its slug: the artifact, owned
    /// by root, keeps neither bit, so no image of it holds a setuid-root program (a plain `podman
    /// run` would let the image's user become root through it) and no release unpacks one.
    @Test(.scratchDirectory) func aSlugsSetuidAndSetgidBitsAreNeverKept() throws {
        let slug = ScratchDirectory.current.appendingPathComponent("slug")
        try FileManager.default.createDirectory(at: slug.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(to: slug.appendingPathComponent("bin/root-shell"), atomically: true, encoding: .utf8)
        #expect(chmod(slug.appendingPathComponent("bin/root-shell").path, 0o6755) == 0)
        #expect(chmod(slug.appendingPathComponent("bin").path, 0o2755) == 0)
        let artifact = try Artifacts.pack(slug, into: ScratchDirectory.current.appendingPathComponent("artifacts"))
        let release = ScratchDirectory.current.appendingPathComponent("release")
        try Artifacts.unpack(artifact.url, to: release)
        var info = stat()
        #expect(lstat(release.appendingPathComponent("bin/root-shell").path, &info) == 0 && info.st_mode & 0o7777 == 0o755)
        let listing = try slugLayerListing(artifact.url)
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("-rwxr-xr-x 0/0") && $0.hasSuffix(" app/bin/root-shell") }, "\(listing)")
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("drwxr-xr-x 0/0") && $0.hasSuffix(" app/bin/") }, "\(listing)")
    }

    @Test(.scratchDirectory) func aSlugIsReadableByTheImageUserAndNeverWritable() throws {
        let slug = ScratchDirectory.current.appendingPathComponent("slug")
        try FileManager.default.createDirectory(at: slug.appendingPathComponent(".gust"), withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(to: slug.appendingPathComponent(".gust/start"), atomically: true, encoding: .utf8)
        try "x = 1\n".write(to: slug.appendingPathComponent("main.py"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: slug.appendingPathComponent(".gust/start").path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: slug.appendingPathComponent("main.py").path)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: slug.appendingPathComponent(".gust").path)
        let artifact = try Artifacts.pack(slug, into: ScratchDirectory.current.appendingPathComponent("artifacts"))
        let listing = try slugLayerListing(artifact.url)
        #expect(listing.contains("drwxr-xr-x 0/0") && listing.contains(" app/.gust/\n"), "\(listing)")
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("-rwxr-xr-x 0/0") && $0.hasSuffix(" app/.gust/start") }, "\(listing)")
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("-rw-r--r-- 0/0") && $0.hasSuffix(" app/main.py") }, "\(listing)")
    }
}
