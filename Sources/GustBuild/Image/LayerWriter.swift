#if canImport(Glibc)
import Glibc
#endif
import CArchive
import Crypto
import Foundation
import GustCore

/// Writes one uncompressed tar, deterministically, to a file, hashing the bytes as they go: an OCI
/// layer (or the layout's own archive). Entries come from a directory tree, from a release's
/// artifact re-rooted under a prefix, or from bytes in memory.
///
/// Why its own writer rather than `ArchiveWriter`: a stack's root needs what a slug never has
/// (hard links, owners other than root, modes such as setuid), a layer must not be compressed (its
/// digest is then its content's, the `diff_id`), and everything here streams: a 320 MB root never
/// sits in memory. Reproducible by construction: entries in byte order of their paths, owners by
/// number without names, no access or change times, no extended attributes, modification times
/// clamped to `clampTime` (SOURCE_DATE_EPOCH's rule).
final class LayerWriter {
    private let archive: OpaquePointer
    private let sink: ArchiveWriter.Sink
    private let clampTime: Int
    private let file: URL
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    /// Creates `file` (which must not exist).
    init(to file: URL, clampTime: Int) throws {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError("Cannot create \(file.path): \(String(cString: strerror(errno)))") }
        guard let archive = archive_write_new() else {
            close(fd)
            throw ArchiveError("libarchive is out of memory")
        }
        self.archive = archive
        self.file = file
        self.clampTime = clampTime
        sink = ArchiveWriter.Sink(descriptor: fd)
        try ArchiveError.check(archive_write_set_format_pax_restricted(archive), archive, "Cannot write tar")
        archive_write_set_bytes_in_last_block(archive, 1)
        try sink.open(archive, file.lastPathComponent)
    }

    deinit {
        archive_write_free(archive)
        close(sink.descriptor)
    }

    /// Ends the tar and returns its digest (`sha256:…`) and size.
    func finish() throws -> (digest: String, size: Int) {
        try ArchiveError.check(archive_write_close(archive), archive, "Cannot finish \(file.lastPathComponent)")
        guard sink.failure == 0, fsync(sink.descriptor) == 0 else {
            throw ArchiveError("Cannot write \(file.path): \(String(cString: strerror(sink.failure != 0 ? sink.failure : errno)))")
        }
        return ("sha256:" + Hex.lower(sink.hash.finalize()), sink.size)
    }

    // MARK: Entries

    /// A directory entry of its own (a prefix such as `app` that is no file's parent on disk).
    func addDirectory(_ path: String, mode: mode_t = 0o755, mtime: Int? = nil) throws {
        try header(path) { entry in
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFDIR))
            archive_entry_set_perm(entry, mode)
            archive_entry_set_mtime(entry, min(mtime ?? clampTime, clampTime), 0)
        }
    }

    /// A regular file from bytes in memory (small ones: the entrypoint), owned by root.
    func addFile(_ path: String, contents: Data, mode: mode_t = 0o644) throws {
        try header(path) { entry in
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
            archive_entry_set_perm(entry, mode)
            archive_entry_set_mtime(entry, clampTime, 0)
            archive_entry_set_size(entry, Int64(contents.count))
        }
        guard !contents.isEmpty else { return }
        let written = contents.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        guard written == contents.count else { throw ArchiveError(archive, "Cannot pack \(path)") }
    }

    /// Every file below `directory`, parents before children in byte order, under `prefix`
    /// (nothing for a root filesystem). Owners and modes as on disk, hard links as links to the
    /// first path met, devices, sockets and fifos left out (an engine provides `/dev`).
    /// `keepOwners: false` writes every entry as root's. Directories named in `scratch` are written
    /// 1777 whatever their mode on disk: a stack is read-only on the server (the sandbox mounts a
    /// private /tmp over it), but a container's /tmp and /var/tmp must be writable, as on any Debian.
    func addTree(_ directory: URL, prefix: String = "", keepOwners: Bool, scratch: Set<String> = []) throws {
        var firstPathOf: [String: String] = [:]  // "device:inode" → path, for files with several links
        for relative in try ArchiveWriter.sortedEntries(of: directory) {
            let path = "\(directory.path)/\(relative)"
            let name = prefix.isEmpty ? relative : "\(prefix)/\(relative)"
            var info = stat()
            guard lstat(path, &info) == 0 else { throw ArchiveError("Cannot read \(path): \(String(cString: strerror(errno)))") }
            let type = info.st_mode & S_IFMT
            guard type == S_IFDIR || type == S_IFREG || type == S_IFLNK else { continue }
            var linkTarget: String?
            if type == S_IFREG, info.st_nlink > 1 {
                let key = "\(info.st_dev):\(info.st_ino)"
                if let first = firstPathOf[key] { linkTarget = first } else { firstPathOf[key] = name }
            }
            try header(name) { entry in
                archive_entry_set_filetype(entry, UInt32(type))
                archive_entry_set_perm(entry, type == S_IFDIR && scratch.contains(relative) ? 0o1777 : info.st_mode & 0o7777)
                archive_entry_set_mtime(entry, min(info.st_mtim.tv_sec, clampTime), 0)
                if keepOwners {
                    archive_entry_set_uid(entry, Int64(info.st_uid))
                    archive_entry_set_gid(entry, Int64(info.st_gid))
                }
                if let linkTarget {
                    archive_entry_set_hardlink(entry, linkTarget)
                    archive_entry_set_size(entry, 0)
                } else if type == S_IFLNK {
                    archive_entry_set_symlink(entry, (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "")
                } else if type == S_IFREG {
                    archive_entry_set_size(entry, Int64(info.st_size))
                }
            }
            if type == S_IFREG, linkTarget == nil, info.st_size > 0 { try copyFile(path, name: name) }
        }
    }

    /// Every entry of a release's artifact (a tar.zst, itself deterministic), under `prefix`, as
    /// root's. A build writes its files for its own user only (0700, 0600); the image runs the app
    /// as another user, so everyone gets the owner's read and execute bits, never its write bit:
    /// the slug stays read-only, as gustd keeps a release directory.
    func addArtifact(_ artifact: URL, prefix: String) throws {
        guard let reader = archive_read_new() else { throw ArchiveError("libarchive is out of memory") }
        defer { archive_read_free(reader) }
        archive_read_support_filter_all(reader)
        archive_read_support_format_tar(reader)
        try ArchiveError.check(archive_read_open_filename(reader, artifact.path, 256 * 1024), reader, "Cannot open \(artifact.lastPathComponent)")
        var next: OpaquePointer?
        while true {
            let status = archive_read_next_header(reader, &next)
            if status == ARCHIVE_EOF { break }
            try ArchiveError.check(status, reader, "Cannot read \(artifact.lastPathComponent)")
            guard let source = next, let rawName = archive_entry_pathname(source) else {
                throw ArchiveError("Cannot read \(artifact.lastPathComponent): an entry has no readable name; the artifact is damaged.")
            }
            let name = String(cString: rawName)
            guard ArchiveReader.isSafe(name) else { throw ArchiveError("The artifact holds an entry outside the release: '\(name)'.") }
            let type = archive_entry_filetype(source)
            guard type == UInt32(Glibc.S_IFDIR) || type == UInt32(Glibc.S_IFREG) || type == UInt32(Glibc.S_IFLNK) else { continue }
            let hardlink = archive_entry_hardlink(source).map { String(cString: $0) }
            if let hardlink, !ArchiveReader.isSafe(hardlink) { throw ArchiveError("The artifact holds a hard link outside the release: '\(hardlink)'.") }
            let size = archive_entry_size(source)
            try header("\(prefix)/\(name)") { entry in
                archive_entry_set_filetype(entry, type)
                // Never setuid or setgid (an artifact packed before its writer dropped them may have them).
                let mode = archive_entry_perm(source) & 0o1777
                archive_entry_set_perm(entry, mode | (mode & 0o500) >> 3 | (mode & 0o500) >> 6)
                archive_entry_set_mtime(entry, min(Int(archive_entry_mtime(source)), clampTime), 0)
                if let hardlink {
                    archive_entry_set_hardlink(entry, "\(prefix)/\(hardlink)")
                    archive_entry_set_size(entry, 0)
                } else if type == UInt32(Glibc.S_IFLNK) {
                    archive_entry_set_symlink(entry, archive_entry_symlink(source).map { String(cString: $0) } ?? "")
                } else if type == UInt32(Glibc.S_IFREG) {
                    archive_entry_set_size(entry, size)
                }
            }
            guard hardlink == nil, type == UInt32(Glibc.S_IFREG), size > 0 else { continue }
            var written: Int64 = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { archive_read_data(reader, $0.baseAddress, $0.count) }
                guard count >= 0 else { throw ArchiveError(reader, "Cannot read '\(name)'") }
                if count == 0 { break }
                let out = buffer.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, count) }
                guard out == count else { throw ArchiveError(archive, "Cannot pack '\(name)'") }
                written += Int64(count)
            }
            guard written == size else { throw ArchiveError("'\(name)' in \(artifact.lastPathComponent) is shorter than its header says.") }
        }
    }

    /// One header with nothing of the host's (owners root unless `fill` says, no names, no times but mtime).
    private func header(_ path: String, _ fill: (OpaquePointer) -> Void) throws {
        guard let entry = archive_entry_new() else { throw ArchiveError("libarchive is out of memory") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, path)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        fill(entry)
        try ArchiveError.check(archive_write_header(archive, entry), archive, "Cannot add \(path)")
    }

    private func copyFile(_ path: String, name: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError("Cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw ArchiveError("Cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            let written = buffer.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, count) }
            guard written == count else { throw ArchiveError(archive, "Cannot pack \(name)") }
        }
    }
}
