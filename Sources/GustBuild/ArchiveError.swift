import CArchive

/// A libarchive failure, with `archive_error_string()` read at once on the failing thread.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }

    init(_ archive: OpaquePointer?, _ what: String) {
        let detail = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        message = "\(what): \(detail)"
    }

    public var description: String { message }

    /// Throws unless `code` is ARCHIVE_OK (or a warning, which libarchive uses for recoverable oddities).
    static func check(_ code: Int32, _ archive: OpaquePointer?, _ what: @autoclosure () -> String) throws(ArchiveError) {
        guard code >= ARCHIVE_WARN else { throw ArchiveError(archive, what()) }
    }
}
