#if canImport(Glibc)
import Glibc
#endif
import CArchive
import Crypto
public import Foundation
import GustCore

/// A packed slug: `artifacts/<sha256>.tar.zst`.
public struct Artifact: Sendable, Equatable {
    /// SHA-256 of the file's bytes, which also names it.
    public var digest: String
    public var size: Int
    public var url: URL
}

/// Packing build directories into artifacts and unpacking them into releases.
///
/// tar compressed with zstd: packing runs on every push, and zstd packs a
/// slug several times faster than gzip at a better ratio. Entries are written
/// in sorted order with uid/gid 0, no owner names, the files' own modes, and
/// mtimes clamped to a given time (SOURCE_DATE_EPOCH's rule), so identical
/// builds give identical bytes and share one artifact even though a build
/// writes files (the start script, copied environments) at a new time.
public enum Artifacts {
    public static let fileExtension = "tar.zst"

    /// - Parameter clampTime: mtimes later than this (seconds since the epoch) are written as it; nil keeps them.
    public static func pack(_ directory: URL, into artifactsDirectory: URL, clampingTimesTo clampTime: Int? = nil) throws -> Artifact {
        try FileManager.default.createDirectory(at: artifactsDirectory, withIntermediateDirectories: true)
        let temporary = artifactsDirectory.appendingPathComponent(".pack-\(UUID().uuidString.prefix(8)).tmp")
        do {
            let (digest, size) = try ArchiveWriter.write(directory, to: temporary, clampTime: clampTime)
            let final = artifactsDirectory.appendingPathComponent("\(digest).\(fileExtension)")
            // Already there (an old release's, another app's): marked as just packed, so that no
            // prune takes it before this build's release is recorded (`ArtifactFile`).
            if ArtifactFile.markPacked(final) {
                try? FileManager.default.removeItem(at: temporary)
            } else {
                guard rename(temporary.path, final.path) == 0 else {
                    throw ArchiveError("Cannot move the artifact into place: \(String(cString: strerror(errno)))")
                }
            }
            return Artifact(digest: digest, size: size, url: final)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// Unpacks into `destination`, which must not exist: into a temporary
    /// sibling first, renamed into place, so a reader never sees half a release.
    /// The artifact's bytes are checked against its name first (`verify`).
    public static func unpack(_ artifact: URL, to destination: URL) throws {
        try verify(artifact)
        let parent = destination.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let temporary = parent.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        do {
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false)
            try ArchiveReader.extract(artifact, into: temporary)
            guard rename(temporary.path, destination.path) == 0 else {
                throw ArchiveError("Cannot move \(destination.lastPathComponent) into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            NoFollowRemoval.removeTree(at: temporary)  // its directories have the slug's modes: 0500 too
            throw error
        }
    }

    /// Throws unless the file's SHA-256 is the digest it is named by. Artifacts are
    /// content-addressed and never rewritten, so any difference is damage (a disk
    /// error, a hand edit), found before libarchive reads a byte of it.
    public static func verify(_ artifact: URL) throws {
        let name = artifact.lastPathComponent
        let expected = name.hasSuffix(".\(fileExtension)") ? String(name.dropLast(fileExtension.count + 1)) : name
        let actual = try digest(of: artifact)
        guard actual == expected else {
            throw ArchiveError("The artifact \(name) is corrupt: its SHA-256 is \(actual), not the one it is named by.")
        }
    }

    /// SHA-256 of a file's bytes, in hex, read in 1 MB blocks.
    static func digest(of file: URL) throws -> String {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError("Cannot read the artifact \(file.lastPathComponent): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ArchiveError("Cannot read the artifact \(file.lastPathComponent): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        return Hex.lower(hasher.finalize())
    }
}
