#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// Copies trees of the home of gustd's user (a backup, often run as root) without ever following
/// a link: each level is opened relative to the one above with `O_NOFOLLOW`, a file is copied
/// from the descriptor it was checked through, and a link is copied as the link it is. Walking by
/// path names, a directory gustd's user swapped for a link while the copy was under way was
/// followed, and root copied what it named (`/root/.ssh`) into the backup, which a restore then
/// hands to that user.
public enum NoFollowCopy {
    /// Copies the entry `name` of `directory` (a path trusted as it is) to `destination`, which must
    /// not exist; modes are kept without setuid or setgid bits. A regular file whose name
    /// `leavingOut` accepts, and what is neither a file, a directory nor a link (a FIFO, whose read
    /// would wait for good), are left out; the latter are named on standard error.
    public static func copy(
        _ name: String, of directory: URL, to destination: URL, leavingOut: (String) -> Bool = { _ in false },
        beforeDescending: ((String) -> Void)? = nil
    ) throws {
        let parent = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw failure("read", directory.path) }
        defer { close(parent) }
        try copyEntry(name, in: parent, shownAs: directory.appendingPathComponent(name).path, to: destination,
                      leavingOut: leavingOut, beforeDescending: beforeDescending)
    }

    /// Copies the entry `name` of the directory open as `parent`; `shownAs` names it in messages.
    public static func copyEntry(
        _ name: String, in parent: Int32, shownAs path: String, to destination: URL, leavingOut: (String) -> Bool = { _ in false },
        beforeDescending: ((String) -> Void)? = nil
    ) throws {
        var seen = stat()
        guard fstatat(parent, name, &seen, AT_SYMLINK_NOFOLLOW) == 0 else { return }  // gone meanwhile
        switch seen.st_mode & S_IFMT {
        case S_IFLNK:
            let target = try linkTarget(name, in: parent, shownAs: path)
            try FileManager.default.createSymbolicLink(atPath: destination.path, withDestinationPath: target)
        case S_IFREG:
            guard !leavingOut(name) else { return }
            guard let source = openSame(name, in: parent, as: seen, flags: O_RDONLY | O_NONBLOCK) else { return leftOut(path, "it changed while copied") }
            defer { close(source) }
            try copyFile(source, shownAs: path, to: destination, mode: seen.st_mode & 0o1777, times: (seen.st_atim, seen.st_mtim))
        case S_IFDIR:
            beforeDescending?(name)
            guard let directory = openSame(name, in: parent, as: seen, flags: O_RDONLY | O_DIRECTORY) else {
                return leftOut(path, "it changed while copied")
            }
            var made = stat()
            if lstat(destination.path, &made) != 0 {
                guard mkdir(destination.path, 0o700) == 0 else { close(directory); throw failure("create", destination.path) }
            }
            guard let listing = fdopendir(directory) else {
                close(directory)
                throw failure("read", path)
            }
            defer { closedir(listing) }
            var names: [String] = []
            while let entry = readdir(listing) {
                let child = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if child != "." && child != ".." { names.append(child) }
            }
            for child in names.sorted() {
                try copyEntry(child, in: dirfd(listing), shownAs: path + "/" + child, to: destination.appendingPathComponent(child),
                              leavingOut: leavingOut, beforeDescending: beforeDescending)
            }
        default:
            leftOut(path, "not a file, directory or link")
        }
    }

    /// `name` opened without following a link, if it is still what `seen` found (no swap between).
    private static func openSame(_ name: String, in parent: Int32, as seen: stat, flags: Int32) -> Int32? {
        let fd = openat(parent, name, flags | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var now = stat()
        guard fstat(fd, &now) == 0, now.st_dev == seen.st_dev, now.st_ino == seen.st_ino else {
            close(fd)
            return nil
        }
        return fd
    }

    private static func linkTarget(_ name: String, in parent: Int32, shownAs path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(parent, name, &buffer, buffer.count - 1)
        guard count >= 0 else { throw failure("read the link", path) }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `times`: the source's access and modification times, which the copy keeps (an artifact's
    /// mtime says when it was last packed: `ArtifactFile`).
    private static func copyFile(_ source: Int32, shownAs path: String, to destination: URL, mode: mode_t, times: (timespec, timespec)) throws {
        let target = open(destination.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard target >= 0 else { throw failure("create", destination.path) }
        defer { close(target) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("read", path) }
            if count == 0 { break }
            var written = 0
            while written < count {
                let step = buffer.withUnsafeBytes { write(target, $0.baseAddress! + written, count - written) }
                if step < 0 && errno == EINTR { continue }
                guard step > 0 else { throw failure("write", destination.path) }
                written += step
            }
        }
        fchmod(target, mode)
        var kept = [times.0, times.1]
        futimens(target, &kept)
    }

    private static func leftOut(_ path: String, _ why: String) {
        FileHandle.standardError.write(Data("Left out \(path): \(why).\n".utf8))
    }

    private static func failure(_ action: String, _ path: String) -> GustError {
        GustError("Cannot \(action) \(path): \(String(cString: strerror(errno)))")
    }
}
