#if canImport(Glibc)
import Glibc
#endif
import CArchive

/// The receive hook's watch on the one who pushed. Over ssh, a push whose connection drops (a lost
/// network, a killed client) is not told to anyone on the server: sshd sends no signal to a session
/// without a terminal, and git-receive-pack notices only at its next write, after the hook ends.
/// So the hook, waiting on gustd's build for minutes, would let it run to its end and record it.
///
/// The hooks `exec` gust-receive, so its parent is git-receive-pack, whose standard output is the
/// pipe the pusher's answers go back by (sshd's end for ssh, git push's for a local push). A write
/// end of that pipe, opened through `/proc/PPID/fd/1` and never written, reports `POLLERR` as soon
/// as nobody reads the pipe any more: sshd's session ended, or git push died. Where that standard
/// output is not a pipe (a socket: git daemon, sshd built without pipes), there is nothing to open
/// and no watch: the build then ends at its own time limit, as before.
public final class PusherConnection: Sendable {
    /// The write end, for `poll` only (`AdminClient.hangUp`).
    public let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// The watch on this process's parent's pusher, or nil where there is none to watch.
    public static func ofParent() -> PusherConnection? {
        let parent = getppid()
        guard parent > 1 else { return nil }
        let path = "/proc/\(parent)/fd/1"
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFIFO else { return nil }
        // O_NONBLOCK: opening a pipe's write end must never wait for a reader.
        let descriptor = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        return PusherConnection(descriptor: descriptor)
    }

    /// Whether nobody reads the pusher's pipe any more.
    public var isGone: Bool {
        var watch = pollfd(fd: descriptor, events: 0, revents: 0)
        return poll(&watch, 1, 0) == 1 && watch.revents & Int16(POLLERR | POLLHUP) != 0
    }
}
