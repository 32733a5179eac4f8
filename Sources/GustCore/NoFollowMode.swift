#if canImport(Glibc)
import Glibc
#endif

/// Sets a mode on a name in the home without following a link there. Opening the store tightens
/// the home's directories and database files, and root opens it too (`gust stacks list`, `gust
/// backup`) on a home whose names gustd's user controls: `chmod` by path would follow a link it
/// planted, and have root lock down `/usr/sbin/sshd` or `/usr`.
///
/// Through an `O_PATH` descriptor opened with `O_NOFOLLOW` (a link opens as itself, and is left
/// alone) and chmod(2) of its `/proc/self/fd` entry. Not an ordinary descriptor: closing one of a
/// database file would drop every POSIX lock this process's SQLite connections hold on it.
enum NoFollowMode {
    /// Gives the directory at `path` `mode`; a link, or anything not a directory, is left alone.
    static func setDirectory(_ path: String, _ mode: mode_t) {
        set(path, mode) { ($0.st_mode & S_IFMT) == S_IFDIR }
    }

    /// Gives the regular file at `path` `mode`; a link, a file with other names (a hard link to
    /// someone else's), or anything not a regular file is left alone.
    static func setFile(_ path: String, _ mode: mode_t) {
        set(path, mode) { ($0.st_mode & S_IFMT) == S_IFREG && $0.st_nlink == 1 }
    }

    private static func set(_ path: String, _ mode: mode_t, when isWanted: (stat) -> Bool) {
        let fd = open(path, NoFollowRemoval.oPath | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, isWanted(status) else { return }
        chmod("/proc/self/fd/\(fd)", mode)
    }
}
