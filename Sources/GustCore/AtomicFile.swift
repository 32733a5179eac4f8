#if canImport(Glibc)
import Glibc
#endif
public import Foundation

public enum AtomicFile {
    /// Writes `data` next to `url` under a temporary name, syncs it and renames
    /// it into place: a reader sees the old file or the new one, never half.
    public static func write(_ data: Data, to url: URL, mode: mode_t = 0o600) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw GustError.internal("Cannot write \(temporary.path): \(String(cString: strerror(errno)))")
        }
        var failure: Int32?
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = errno }
        close(fd)
        chmod(temporary.path, mode)  // the umask must not narrow what was asked for
        if failure == nil, rename(temporary.path, url.path) != 0 { failure = errno }
        if let failure {
            unlink(temporary.path)  // the old file, if any, is untouched
            if failure == ENOSPC || failure == EDQUOT { throw GustError.diskFull("Could not write \(url.path)") }
            throw GustError.internal("Cannot write \(url.path): \(String(cString: strerror(failure)))")
        }
    }

}
