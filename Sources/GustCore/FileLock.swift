#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// An exclusive `flock(2)` on a file, released when the value is dropped or the
/// process dies, so a crashed deploy never leaves an app locked.
public final class FileLock {
    private let descriptor: Int32

    /// Takes the lock, calling `onWait` once first if another process holds it.
    public init(_ url: URL, onWait: () -> Void = {}) throws(GustError) {
        descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw GustError.internal("Cannot open lock file \(url.path): \(String(cString: strerror(errno)))")
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return }
        onWait()
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(descriptor)
                throw GustError.internal("Cannot lock \(url.path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Takes the lock only if no other process holds it; nil if one does.
    public init?(ifFree url: URL) {
        descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
