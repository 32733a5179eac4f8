#if canImport(Glibc)
import Glibc
#endif
import CArchive
package import Foundation

/// The `/etc` of sandboxes on the host's system, made once by gustd as it
/// starts: a directory holding copies of exactly the entries sandboxed code
/// reads (`Sandbox.etc`), which bwrap binds read-only as `/etc` with one mount
/// instead of one mount per entry (each a few hundred microseconds of every
/// start; docs/benchmarks.md).
///
/// It shows what the per-entry binds showed: an entry that is a symbolic link
/// is bound as what it points to, so a link into `/usr` (which the sandbox
/// has: `/etc/localtime`) stays a link and any other (`/etc/resolv.conf` into
/// `/run`) becomes a copy of its target; links below an entry (`ssl/certs`)
/// are kept as they are. A file or directory that others may not read
/// (`ssl/private`) is there, empty: its contents never leave the host's `/etc`.
/// Nothing else of the host's `/etc` is copied.
///
/// Two steps, so that a gustd taking over from another copies before it waits for the home's
/// lock (`stage`, into a directory of its own process: `sandbox-etc.staged-PID`, which no other
/// gustd touches) and only swaps it in once it holds the lock (`prepare`, two renames). The
/// swap is safe for a sandbox still running: bwrap bound the directory, not its path, so a
/// sandbox keeps the copy it started with through the renames; removing that copy's files would
/// empty its `/etc`, which is why the copy it replaces is removed under the lock only, once the
/// gustd before (and its sandboxes, which die with it) has gone.
package enum SandboxEtc {
    /// The directory's name under gustd's `run/`.
    static let name = "sandbox-etc"

    /// Copies the host's entries into this process's staging directory (`sandbox-etc.staged-PID`
    /// in `directory`) for `prepare` to put in place: before the home's lock, touching nothing a
    /// running gustd uses.
    package static func stage(in directory: URL, entries: [String] = Sandbox.etc, from source: String = "/etc") throws {
        let staged = stagingPath(in: directory, pid: getpid())
        try removeIfPresent(staged)
        try make(directory: staged, mode: 0o755)
        for entry in entries {
            try copyEntry(source + "/" + entry, to: staged + "/" + entry)
        }
    }

    /// Puts this process's staged copy (`stage`; made now if there is none) in place as
    /// `directory/sandbox-etc`, replacing the one a previous gustd made, removes what gustds
    /// that have gone left staged, and returns its path. Only under the home's lock.
    static func prepare(in directory: URL, entries: [String], from source: String = "/etc") throws -> String {
        let target = directory.appendingPathComponent(name).path
        let staged = stagingPath(in: directory, pid: getpid()), old = target + ".old"
        if !FileManager.default.fileExists(atPath: staged) { try stage(in: directory, entries: entries, from: source) }
        try removeIfPresent(old)
        if rename(target, old) != 0 && errno != ENOENT { throw failure("move the old \(target) aside") }
        guard rename(staged, target) == 0 else { throw failure("put \(target) in place") }
        try removeIfPresent(old)
        try removeAbandoned(in: directory)
        return target
    }

    /// Where process `pid` stages its copy.
    static func stagingPath(in directory: URL, pid: pid_t) -> String {
        directory.appendingPathComponent("\(name).staged-\(pid)").path
    }

    /// The staged copies of processes that have gone (a gustd that never got the lock, or was
    /// killed before it swapped its copy in), and `.new`, which gustds before staging used.
    private static func removeAbandoned(in directory: URL) throws {
        let prefix = name + ".staged-"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            if entry == name + ".new" {
                try removeIfPresent(directory.appendingPathComponent(entry).path)
            } else if entry.hasPrefix(prefix), let pid = pid_t(entry.dropFirst(prefix.count)), kill(pid, 0) != 0, errno == ESRCH {
                try removeIfPresent(directory.appendingPathComponent(entry).path)
            }
        }
    }

    /// A top-level entry, as `bwrap --ro-bind-try` bound it: followed if it is a link, absent if
    /// it does not resolve, and kept as a link where the sandbox resolves it to the same file.
    private static func copyEntry(_ source: String, to target: String) throws {
        var status = stat()
        guard lstat(source, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFLNK else { return try copy(source, to: target) }
        guard let resolved = realpath(source, nil) else { return }  // dangling: bwrap skipped it too
        defer { free(resolved) }
        if String(cString: resolved).hasPrefix("/usr/") {
            try copy(source, to: target)  // the link itself: `/usr` is bound at the same place
        } else {
            try copy(String(cString: resolved), to: target)
        }
    }

    /// `source` as it is (a link stays a link), directories recursively.
    private static func copy(_ source: String, to target: String) throws {
        var status = stat()
        guard lstat(source, &status) == 0 else { return }
        let mode = mode_t(status.st_mode & 0o777)
        let othersRead = status.st_mode & S_IROTH != 0
        switch status.st_mode & S_IFMT {
        case S_IFLNK:
            let destination = try FileManager.default.destinationOfSymbolicLink(atPath: source)
            guard symlink(destination, target) == 0 else { throw failure("link \(target)") }
        case S_IFDIR:
            try make(directory: target, mode: 0o700)
            if othersRead, let names = try? FileManager.default.contentsOfDirectory(atPath: source) {
                for name in names.sorted() { try copy(source + "/" + name, to: target + "/" + name) }
            }
            guard chmod(target, mode) == 0 else { throw failure("set the mode of \(target)") }
        case S_IFREG:
            let contents = othersRead ? FileManager.default.contents(atPath: source) ?? Data() : Data()
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure("create \(target)") }
            defer { close(fd) }
            let written = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == contents.count, fchmod(fd, mode) == 0 else { throw failure("write \(target)") }
        default:
            return  // sockets, pipes and devices: none belong in /etc
        }
    }

    private static func make(directory: String, mode: mode_t) throws {
        guard mkdir(directory, 0o700) == 0, chmod(directory, mode) == 0 else { throw failure("create \(directory)") }
    }

    private static func removeIfPresent(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        // Its directories may be read-only (copies of the host's modes): writable again first.
        if let walker = FileManager.default.enumerator(atPath: path) {
            while let relative = walker.nextObject() as? String {
                var inner = stat()
                if lstat(path + "/" + relative, &inner) == 0, inner.st_mode & S_IFMT == S_IFDIR { chmod(path + "/" + relative, 0o700) }
            }
        }
        chmod(path, 0o700)
        try FileManager.default.removeItem(atPath: path)
    }

    private static func failure(_ what: String) -> SandboxError {
        SandboxError("Cannot \(what) for the sandboxes' /etc: \(String(cString: strerror(errno)))")
    }
}
