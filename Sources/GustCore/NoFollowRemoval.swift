#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// Removes trees an app's code has written in (a build's workspace, an instance's socket
/// directory) without ever following a link: each level is opened relative to the one above with
/// `O_NOFOLLOW`, and a link is removed as itself. `FileManager.removeItem` walks by path names and
/// opens each directory again by its path, so a directory the app swaps for a link while the walk
/// is under way is followed: a build still running as its hook removed its workspace could point
/// it at the home and have it deleted.
public enum NoFollowRemoval {
    /// How deep a tree is walked: each level holds a descriptor while its entries go. What lies
    /// deeper stays (a tree an app built to be deep), with the levels above it.
    public static let depthLimit = 256

    /// Removes what `url` names, whatever it is; its parent directory is trusted (gustd's own). Quietly
    /// does what it can (gone already is fine).
    public static func removeTree(at url: URL) {
        let parent = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        url.lastPathComponent.withCString { remove($0, in: parent) }
    }

    /// Removes the entry `name` of the directory open as `parent`, and if it is a directory, all it holds.
    public static func remove(_ name: UnsafePointer<CChar>, in parent: Int32) {
        removeEntry(name, in: parent, depth: 0, beforeDescending: nil)
    }

    /// `beforeDescending`: for tests, called with each directory's name just before it is opened.
    static func removeEntry(_ name: UnsafePointer<CChar>, in parent: Int32, depth: Int, beforeDescending: ((String) -> Void)?) {
        if unlinkat(parent, name, 0) == 0 || errno == ENOENT { return }
        // A directory (unlink says EISDIR): its entries first.
        guard errno == EISDIR, depth < depthLimit else { return }
        beforeDescending?(String(cString: name))
        var fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0, errno == EACCES, openedToOwner(name, in: parent) {
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else {
            // Swapped for a link since: that link goes, as itself.
            if errno == ELOOP || errno == ENOTDIR { unlinkat(parent, name, 0) }
            return
        }
        // A directory of ours that we may read but not empty (a build's `chmod 500`): made ours to
        // empty again, or what it holds would stay on the disk for good, push after push.
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o700 != 0o700 {
            _ = fchmod(fd, 0o700)
        }
        guard let listing = fdopendir(fd) else {
            close(fd)
            return
        }
        var names: [[CChar]] = []
        while let entry = readdir(listing) {
            let child = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                bytes.prefix(while: { $0 != 0 }).map { CChar(bitPattern: $0) } + [0]
            }
            if child != [46, 0] && child != [46, 46, 0] { names.append(child) }  // "." and ".."
        }
        for child in names {
            child.withUnsafeBufferPointer { removeEntry($0.baseAddress!, in: dirfd(listing), depth: depth + 1, beforeDescending: beforeDescending) }
        }
        closedir(listing)
        unlinkat(parent, name, AT_REMOVEDIR)
    }

    /// Gives the directory `name` back to its owner (mode 0700), when that is this process: a build
    /// may leave one it made with mode 0000, which a gustd that is not root can neither read nor
    /// empty once the sandbox has given the build's files back to gustd's uid, and all it held
    /// would stay on the disk for good, push after push. Through an `O_PATH` descriptor opened
    /// with `O_NOFOLLOW` (which needs no permission on the directory, and is never a link), and
    /// chmod(2) of its `/proc/self/fd` entry, which acts on that very directory.
    private static func openedToOwner(_ name: UnsafePointer<CChar>, in parent: Int32) -> Bool {
        let path = openat(parent, name, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard path >= 0 else { return false }
        defer { close(path) }
        var info = stat()
        guard fstat(path, &info) == 0, info.st_uid == geteuid() else { return false }
        return chmod("/proc/self/fd/\(path)", 0o700) == 0
    }

    /// Linux's `O_PATH` (x86-64 and arm64), which Glibc's Swift overlay leaves out (it needs _GNU_SOURCE).
    static let oPath: Int32 = 0o10_000_000
}
