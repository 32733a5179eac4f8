#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Whether the store's file has been written since an earlier reading, by any process: gustd's
/// own connections, `gust` on the command line, `sqlite3` by hand. gustd remembers the tokens the
/// store verified (`TokenVerifier`) only as long as this says nothing was written since.
///
/// An inotify watch on the store's directory: the kernel queues the event inside the writer's
/// `write(2)` (a commit appends to the `-wal` file; a checkpoint writes the file itself; a
/// restore renames a copy over it), before the writer's call returns. So a reading taken after
/// a `gust tokens revoke` has returned always sees it. Readers write only the mmap'ed `-shm`
/// file, which inotify does not report: a read does not change the generation.
public final class StoreWrites: Sendable {
    /// The inotify descriptor, non-blocking; -1 when the directory could not be watched.
    private let descriptor: Int32
    /// How many readings have found a write of the store's files; every reading drains under it,
    /// so a reading on one thread never misses an event another thread is still counting.
    private let writes = Mutex<UInt64?>(0)
    private let name: [UInt8]

    public init(home: GustHome) {
        name = Array(home.database.lastPathComponent.utf8)
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        let events = UInt32(IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
        if descriptor >= 0, inotify_add_watch(descriptor, home.root.path, events) >= 0 {
            self.descriptor = descriptor
            failure = nil
        } else {
            failure = String(cString: strerror(errno))
            if descriptor >= 0 { close(descriptor) }
            self.descriptor = -1
        }
    }

    /// Why the store's directory is not watched (then `generation` is always nil), or nil.
    public let failure: String?

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// A number that differs from every earlier reading's once the store has been written since it;
    /// nil when that cannot be known (no watch, or the watch was lost): trust nothing remembered.
    public func generation() -> UInt64? {
        guard descriptor >= 0 else { return nil }
        return writes.withLock { count in
            guard count != nil else { return nil }
            switch drain() {
            case .nothing: break
            case .written: count! += 1
            case .unknown: count = nil
            }
            return count
        }
    }

    private enum Drained { case nothing, written, unknown }

    /// Reads every queued event; whether one was about the store's files (its name, or `-wal`,
    /// `-shm` and `-journal` after it). A full queue (`IN_Q_OVERFLOW`: nobody asked while many
    /// files changed) counts as a write: whatever it stood for happened before this reading, and
    /// the queue takes events again once drained.
    private func drain() -> Drained {
        var found = Drained.nothing
        let header = MemoryLayout<inotify_event>.size
        return withUnsafeTemporaryAllocation(byteCount: 4096, alignment: MemoryLayout<inotify_event>.alignment) { buffer in
            while true {
                let count = read(descriptor, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno == EAGAIN ? found : .unknown
                }
                guard count > 0 else { return found }
                var offset = 0
                while offset + header <= count {
                    let event = UnsafeRawBufferPointer(buffer).loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    if event.mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                        return .unknown  // the directory itself gone: no later reading can be trusted
                    }
                    let start = offset + header, end = min(start + Int(event.len), count)
                    let entry = UnsafeRawBufferPointer(rebasing: buffer[start..<end]).prefix { $0 != 0 }
                    if event.mask & UInt32(IN_Q_OVERFLOW) != 0 || entry.starts(with: name) { found = .written }
                    offset = end
                }
            }
        }
    }
}
