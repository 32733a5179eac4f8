import CGustSystem
import Foundation

/// Work run on a thread of its own whose umask is its own too (`gust_unshare_fs`): the umask is
/// the process's, and libarchive's extraction sets it to 0 and back for every entry it writes
/// (the only way POSIX has to read it), so on a shared one a file another thread of gustd created
/// in that moment got mode 0666 (a directory 0777) instead of what `GustHome.restrictNewFiles`
/// allows. The thread ends with the work, taking its copy of the umask with it.
enum OwnUmaskThread {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = Outcome<T>()
        let thread = Thread {
            let failed = gust_unshare_fs()
            outcome.set(failed == 0
                ? Result { try body() }
                : .failure(ArchiveError("Cannot give the unpack a umask of its own: \(String(cString: strerror(failed)))")))
        }
        thread.start()
        return try outcome.wait().get()
    }

    /// The thread's result, handed to the caller that waits for it.
    private final class Outcome<T: Sendable>: @unchecked Sendable {
        private var result: Result<T, any Error>?
        private let done = DispatchSemaphore(value: 0)

        func set(_ result: Result<T, any Error>) {
            self.result = result  // written once, before the signal the reader waits for
            done.signal()
        }

        func wait() -> Result<T, any Error> {
            done.wait()
            return result!
        }
    }
}
