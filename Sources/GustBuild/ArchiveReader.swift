import CArchive
import Foundation

/// Extracts an artifact into a directory, refusing any entry that would land outside it.
enum ArchiveReader {
    /// On a thread with a umask of its own (`OwnUmaskThread`): libarchive changes it as it writes.
    static func extract(_ artifact: URL, into directory: URL) throws {
        try OwnUmaskThread.run { try extractHere(artifact, into: directory) }
    }

    private static func extractHere(_ artifact: URL, into directory: URL) throws {
        guard let reader = archive_read_new(), let writer = archive_write_disk_new() else {
            throw ArchiveError("libarchive is out of memory")
        }
        defer {
            archive_read_free(reader)
            archive_write_free(writer)
        }
        archive_read_support_filter_all(reader)
        archive_read_support_format_tar(reader)
        // Entries are rewritten under `directory` below, which makes their paths absolute, so
        // SECURE_NOABSOLUTEPATHS is enforced by hand on the archive's own names first; the
        // other two guards libarchive applies to the rewritten path.
        let flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
            | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
        try ArchiveError.check(archive_write_disk_set_options(writer, flags), writer, "Cannot prepare extraction")
        try ArchiveError.check(archive_read_open_filename(reader, artifact.path, 256 * 1024), reader, "Cannot open \(artifact.lastPathComponent)")

        // Nothing read from the file is trusted to be there: a damaged artifact is an error, never a crash.
        var next: OpaquePointer?
        while true {
            let status = archive_read_next_header(reader, &next)
            if status == ARCHIVE_EOF { break }
            try ArchiveError.check(status, reader, "Cannot read \(artifact.lastPathComponent)")
            guard let entry = next, let rawName = archive_entry_pathname(entry) else {
                throw ArchiveError("Cannot read \(artifact.lastPathComponent): an entry has no readable name; the artifact is damaged.")
            }
            let name = String(cString: rawName)
            guard isSafe(name) else {
                throw ArchiveError("Refusing to unpack \(artifact.lastPathComponent): the entry '\(name)' would land outside the release.")
            }
            if let link = archive_entry_hardlink(entry).map({ String(cString: $0) }) {
                guard isSafe(link) else { throw ArchiveError("Refusing to unpack a hard link to '\(link)'.") }
                archive_entry_set_hardlink(entry, "\(directory.path)/\(link)")
            }
            archive_entry_set_pathname(entry, "\(directory.path)/\(name)")
            try ArchiveError.check(archive_write_header(writer, entry), writer, "Cannot unpack '\(name)'")
            if archive_entry_size(entry) > 0 {
                try copyData(reader, writer, name)
            }
            try ArchiveError.check(archive_write_finish_entry(writer), writer, "Cannot unpack '\(name)'")
        }
    }

    /// A relative path with no `..` component.
    static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("/") && !name.split(separator: "/").contains("..")
    }

    private static func copyData(_ reader: OpaquePointer, _ writer: OpaquePointer, _ name: String) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        while true {
            let status = archive_read_data_block(reader, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return }
            try ArchiveError.check(status, reader, "Cannot read '\(name)'")
            try ArchiveError.check(Int32(truncatingIfNeeded: archive_write_data_block(writer, buffer, size, offset)), writer, "Cannot write '\(name)'")
        }
    }
}
