import CGustSystem
import Foundation

/// The user whose files a home's are: root opening a home another user owns opens its files as
/// that user (`FileSystemIdentity.acting`).
public struct FileOwner: Sendable, Equatable {
    public let uid: UInt32
    public let gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    /// The owner of `path` itself (a link's own, not what it names).
    public init?(of path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        self.init(uid: status.st_uid, gid: status.st_gid)
    }
}

/// Opens made as the home's owner when root makes them.
///
/// A check that a name is not a link, then an open by that name, leaves a window in which the
/// home's owner (gustd's user, whose names they are) can swap a link in: root would then open, and
/// write, what the link names. SQLite opens by name and cannot be handed a descriptor, so the
/// window cannot be closed; instead root's thread opens as that user (setfsuid(2), one thread's
/// alone), and a link swapped in leads only where that user could go anyway.
public enum FileSystemIdentity {
    /// Runs `body` with this thread's file-system identity set to `owner`'s, when this process is
    /// root and `owner` is not; otherwise as it is. `body` must not suspend (it is synchronous)
    /// nor leave work to other threads: the identity is this thread's.
    public static func acting<T, E: Error>(as owner: FileOwner?, _ body: () throws(E) -> T) throws(E) -> T {
        guard let owner, owner.uid != 0, geteuid() == 0 else { return try body() }
        let (uid, gid) = (geteuid(), getegid())
        guard gust_set_fs_identity(owner.uid, owner.gid) == 0 else {
            // Without the change the open goes ahead as root's, as before: nothing refuses it.
            _ = gust_set_fs_identity(uid, gid)
            return try body()
        }
        defer { _ = gust_set_fs_identity(uid, gid) }
        return try body()
    }
}
