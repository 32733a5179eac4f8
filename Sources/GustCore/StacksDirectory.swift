#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// The home's `stacks` directory as root writes in it (`gust stacks build`, `remove`, `default`).
///
/// The home is gustd's user's: that user may rename `stacks`, or put a link in its place, at any
/// moment. Root following such a link would create, chmod, mount under and remove files wherever
/// it points: a way from gustd's user to root. So root opens the directory once, without following
/// a link, checks that it is root's and that no one else may write in it, and from then on reaches
/// it only through the open descriptor (`url`, `/proc/PID/fd/N`), never by its name in the home
/// again. Below it everything is root's: nothing else can put a link there.
public final class StacksDirectory: Sendable {
    private let descriptor: Int32
    /// The directory through the descriptor: the start of every path root uses below it. Valid in
    /// this process's children too (mmdebstrap, bwrap), while this process lives.
    public let url: URL

    /// Opens (creating it, root's and 0755, when absent) `home`'s stacks directory.
    public init(home: GustHome) throws(GustError) {
        let path = home.stacks.path
        let parent = open(home.root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw GustError("Cannot open \(home.root.path): \(String(cString: strerror(errno)))") }
        defer { close(parent) }
        if mkdirat(parent, "stacks", 0o755) != 0, errno != EEXIST {
            throw GustError("Cannot create \(path): \(String(cString: strerror(errno)))")
        }
        let descriptor = openat(parent, "stacks", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno == ELOOP || errno == ENOTDIR ? "it is not a directory (a link?)" : String(cString: strerror(errno))
            throw GustError("Refusing \(path): \(reason).", hint: "Stacks are root's: remove it, and the next `gust stacks build` makes it.")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_uid == geteuid() else {
            let owner = info.st_uid
            close(descriptor)
            throw GustError(
                "Refusing \(path): it is owned by uid \(owner), not by this user (uid \(geteuid())); another user could swap what is in it while it is written.",
                hint: "Stacks are root's: chown root:root \(path)"
            )
        }
        // gustd's user reads it; no one but its owner writes in it.
        fchmod(descriptor, 0o755)
        self.descriptor = descriptor
        self.url = URL(fileURLWithPath: "/proc/\(getpid())/fd/\(descriptor)")
    }

    /// `NAME@VERSION`'s directory, through the descriptor.
    public func stack(_ reference: Stack.Reference) -> URL { url.appendingPathComponent(reference.description) }

    deinit { close(descriptor) }
}
