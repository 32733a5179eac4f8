#if canImport(Glibc)
import Glibc
#endif
import CArchive
import Crypto
import Foundation
import GustCore

/// Writes one deterministic tar.zst, hashing the bytes as they go to disk.
enum ArchiveWriter {
    /// The sink libarchive's callbacks write through: a file and a running SHA-256. Shared by the
    /// artifacts' writer and the OCI layers' (`LayerWriter`).
    final class Sink {
        let descriptor: Int32
        var hash = SHA256()
        var size = 0
        var failure: Int32 = 0

        init(descriptor: Int32) { self.descriptor = descriptor }

        /// Opens `archive` to write through this sink: every block to the file (a failed write is
        /// kept in `failure`), then into the hash. The archive must not outlive the sink.
        func open(_ archive: OpaquePointer, _ what: String) throws {
            let context = Unmanaged.passUnretained(self).toOpaque()
            try ArchiveError.check(archive_write_open2(archive, context, nil, { _, context, buffer, length in
                let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                var offset = 0
                while offset < length {
                    let written = Glibc.write(sink.descriptor, buffer! + offset, length - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        sink.failure = errno
                        return -1
                    }
                    offset += written
                }
                sink.hash.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: length))
                sink.size += length
                return length
            }, nil, nil), archive, "Cannot start \(what)")
        }
    }

    static func write(_ directory: URL, to file: URL, clampTime: Int? = nil) throws -> (digest: String, size: Int) {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError("Cannot create \(file.path): \(String(cString: strerror(errno)))") }
        let sink = Sink(descriptor: fd)
        defer { close(fd) }
        guard let archive = archive_write_new() else { throw ArchiveError("libarchive is out of memory") }
        defer { archive_write_free(archive) }
        try ArchiveError.check(archive_write_add_filter_zstd(archive), archive, "zstd is not available in libarchive")
        try ArchiveError.check(archive_write_set_format_pax_restricted(archive), archive, "Cannot write tar")
        // libarchive pads to 10 KiB blocks by default; one byte blocks keep the output minimal.
        archive_write_set_bytes_in_last_block(archive, 1)
        try sink.open(archive, "the artifact")

        for relative in try sortedEntries(of: directory) {
            try writeEntry(archive, root: directory.path, relative: relative, clampTime: clampTime)
        }
        try ArchiveError.check(archive_write_close(archive), archive, "Cannot finish the artifact")
        guard sink.failure == 0, fsync(fd) == 0 else {
            throw ArchiveError("Cannot write the artifact: \(String(cString: strerror(sink.failure != 0 ? sink.failure : errno)))")
        }
        let digest = Hex.lower(sink.hash.finalize())
        return (digest, sink.size)
    }

    /// Every path below `directory`, parents before children, in byte order.
    static func sortedEntries(of directory: URL) throws -> [String] {
        var result: [String] = []
        func walk(_ relative: String) throws {
            let absolute = relative.isEmpty ? directory.path : "\(directory.path)/\(relative)"
            for name in try FileManager.default.contentsOfDirectory(atPath: absolute).sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                let path = relative.isEmpty ? name : "\(relative)/\(name)"
                result.append(path)
                var info = stat()
                if lstat("\(directory.path)/\(path)", &info) == 0, info.st_mode & S_IFMT == S_IFDIR { try walk(path) }
            }
        }
        try walk("")
        return result
    }

    private static func writeEntry(_ archive: OpaquePointer, root: String, relative: String, clampTime: Int?) throws {
        let path = "\(root)/\(relative)"
        var info = stat()
        guard lstat(path, &info) == 0 else { throw ArchiveError("Cannot read \(relative): \(String(cString: strerror(errno)))") }
        guard let entry = archive_entry_new() else { throw ArchiveError("libarchive is out of memory") }
        defer { archive_entry_free(entry) }
        let type = info.st_mode & S_IFMT
        // AE_IF* are the POSIX S_IF* values; the C macros do not import into Swift.
        archive_entry_set_pathname(entry, relative)
        // Never setuid or setgid: the build (the app's code) made these files, and they are written as root's.
        archive_entry_set_perm(entry, info.st_mode & 0o1777)
        archive_entry_set_mtime(entry, min(info.st_mtim.tv_sec, clampTime ?? .max), 0)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        switch type {
        case S_IFDIR:
            archive_entry_set_filetype(entry, UInt32(type))
        case S_IFLNK:
            archive_entry_set_filetype(entry, UInt32(type))
            let destination = try FileManager.default.destinationOfSymbolicLink(atPath: path)
            archive_entry_set_symlink(entry, destination)
        case S_IFREG:
            archive_entry_set_filetype(entry, UInt32(type))
            archive_entry_set_size(entry, Int64(info.st_size))
        default:
            return  // sockets, fifos and devices have no place in a slug
        }
        try ArchiveError.check(archive_write_header(archive, entry), archive, "Cannot add \(relative)")
        guard type == S_IFREG else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError("Cannot read \(relative): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw ArchiveError("Cannot read \(relative): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            let written = buffer.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, count) }
            guard written == count else { throw ArchiveError(archive, "Cannot pack \(relative)") }
        }
    }
}
