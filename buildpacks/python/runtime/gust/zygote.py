"""A zygote: imports an app once, then forks its instances on gustd's request.

gustd starts ``python -m gust.server`` with ``GUST_ZYGOTE_FD`` naming one end
of a SOCK_SEQPACKET socket pair (docs/runtime-protocol.md, "Zygotes"). The
zygote imports the app, then says on that socket whether it can be forked:

    {"ready": true}                       forks will be asked for (with a pidfd of the zygote)
    {"ready": false, "reason": "..."}     gustd starts this release's instances on their own

and serves requests, one message each, until gustd closes its end:

    gustd  -> {"fork": ID, "socket": PATH, "environment": {...}, "internal_token": T,
               "listener": true, "cgroup_files": N}
              with 3 + N descriptors: the write ends of the instance's stdout and stderr, the
              socket gustd bound for the instance to serve on, then N ``cgroup.procs`` files the
              fork writes itself into before anything else. Without "listener" (a gustd that
              did not bind it), 2 + N: the zygote binds PATH itself.
    zygote -> {"forked": ID, "pid": PID}  with one descriptor: a pidfd of the fork
           or {"failed": ID, "error": "..."}
    zygote -> {"exited": PID, "status": WAIT_STATUS}   when it has reaped a fork

The zygote runs one thread and never runs app code after the import, so a
fork copies a quiet process. Each fork leads a session of its own, serves on
the socket gustd bound for it (or that the zygote bound, so gustd can connect
as soon as it hears "forked"), and gets its own GUST_INSTANCE, records token, internal secret,
output and random state before the app's ``gust.after_fork`` functions run.
"""

import gc
import os
import select
import sys
import threading

import gust
from gust import codec, server, unix

try:
    # The C module that `signal` wraps in enums (0.4 ms of a cold start); the few calls here take ints.
    import _signal as signal
except ImportError:  # an interpreter without CPython's _signal
    import signal

# The most bytes a message holds, either way (gustd's ZygoteWire.messageBytes): a fork request is
# under 4 KiB (three socket paths, two secrets, an id). A longer one is refused, never read in part.
MESSAGE_BYTES = 16 << 10
# What of a long reason or error an answer keeps, so that it stays within MESSAGE_BYTES.
TEXT_CHARACTERS = 2000
# stdout, stderr, the listener and a cgroup.procs file per controller (three on cgroup v1), with room.
MAX_DESCRIPTORS = 8
INSTANCE_VARIABLE = "GUST_INSTANCE"
# Seconds without a request after a fork before the zygote runs server.warm().
WARM_AFTER_IDLE = 0.2


def unforkable(allowed=(), fd_directory="/proc/self/fd"):
    """Why this process cannot be forked safely after the app's import, or None.

    A thread does not survive a fork (the child holds only the thread that
    forked, and any lock another thread held stays locked forever); a socket
    would be shared by every fork, their reads and writes interleaved.
    """
    threads = [thread.name for thread in threading.enumerate() if thread is not threading.current_thread()]
    if threads:
        return f"the app started {len(threads)} thread(s) at import ({', '.join(sorted(threads))})"
    sockets = []
    for name in os.listdir(fd_directory):
        try:
            if os.readlink(os.path.join(fd_directory, name)).startswith("socket:") and int(name) not in allowed:
                sockets.append(int(name))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    if sockets:
        return f"the app opened {len(sockets)} socket(s) at import (a connection or a client): descriptors {sorted(sockets)}"
    return None


def environ_slot(value, stat_path="/proc/self/stat", memory_path="/proc/self/mem"):
    """Where the entry ``GUST_INSTANCE=value`` starts in the environment block the kernel shows as
    /proc/PID/environ (an entry's start, never a longer name's tail), or None.

    Found once, in the zygote: a fork is a copy of its memory, so the entry is at the same
    address in each fork, and `relabel` there is one write instead of reading the block again
    in every fork (about 0.3 ms in a fresh fork on the machine it was measured on, 0.05 for the
    write; docs/benchmarks.md, "A cold start's fork asked for during the import").
    """
    entry = f"{INSTANCE_VARIABLE}={value}\0".encode()
    try:
        with open(stat_path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end: fields 50 and 51
        with open(memory_path, "rb", buffering=0) as memory:
            memory.seek(start)
            block = b"\0" + memory.read(end - start)
    except (OSError, ValueError, IndexError):
        return None
    at = block.find(b"\0" + entry)
    return None if at < 0 else start + at


def relabel(old, new, at, memory_path="/proc/self/mem"):
    """Rewrites ``GUST_INSTANCE=old`` to ``=new`` at ``at`` (`environ_slot`'s) in the environment
    block the kernel shows as /proc/PID/environ.

    A fork inherits the zygote's block, and gustd finds what an instance left running by that
    entry (InstanceStragglers); os.environ changes only the C library's copy. Same length only
    (instance ids are 8 characters). Returns whether it did.
    """
    if at is None or len(old) != len(new):
        return False
    try:
        memory = os.open(memory_path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(memory, f"{INSTANCE_VARIABLE}={new}\0".encode(), at)
        finally:
            os.close(memory)
        return True
    except OSError:
        return False


class Zygote:
    """The zygote's side of the control socket: fork requests in, forks and exits out."""

    def __init__(self, control, zygote_id):
        self.control = control
        self.zygote_id = zygote_id
        self.children = set()
        self.warmed = False  # server.warm() has run
        self.environ_slot = environ_slot(zygote_id)
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def send(self, message, fds=()):
        """Sends one message; a long ``reason`` or ``error`` (many threads or sockets named) is cut to fit."""
        for key in ("reason", "error"):
            text = message.get(key)
            if isinstance(text, str) and len(text) > TEXT_CHARACTERS:
                message = {**message, key: text[:TEXT_CHARACTERS] + "..."}
        try:
            unix.send_fds(self.control, codec.dumps(message).encode(), list(fds))
        except (BrokenPipeError, ConnectionResetError):
            pass  # gustd has closed its end (it is stopping this zygote): serve() reads that next and returns

    def serve(self):
        """Answers requests until gustd closes its end (then the zygote exits; its forks live on)."""
        signal.set_wakeup_fd(self._wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        while True:
            # Once it has forked, the zygote imports what only some calls need (server.warm), so
            # that the forks after share it; when it has been idle a moment, not while a cold
            # start's fork sets itself up and serves its first call on the same cores.
            timeout = WARM_AFTER_IDLE if self.children and not self.warmed else None
            readable, _, _ = select.select([self.control, self._wake_read], [], [], timeout)
            if not readable:
                self.warmed = True
                server.warm()
                continue
            if self._wake_read in readable:
                while True:
                    try:
                        if not os.read(self._wake_read, 512):
                            break
                    except BlockingIOError:
                        break
                self.reap()
            if self.control in readable and not self.receive():
                return

    def receive(self):
        """Reads and handles one request; False when gustd has closed its end."""
        try:
            data, fds, flags = unix.recv_fds(self.control, MESSAGE_BYTES, MAX_DESCRIPTORS)
        except ConnectionResetError:
            return False  # gustd closed its end with a report of ours unread: gone all the same
        if not data:
            return False
        if flags & (unix.MSG_TRUNC | unix.MSG_CTRUNC):
            # Longer than any request gustd sends, or with more descriptors: the kernel dropped the rest.
            for fd in fds:
                os.close(fd)
            what = f"more than {MESSAGE_BYTES} bytes" if flags & unix.MSG_TRUNC else f"more than {MAX_DESCRIPTORS} descriptors"
            self.send({"failed": None, "error": f"a request of {what}, which a zygote does not read"})
            return True
        self.handle(data, fds)
        return True

    def handle(self, data, fds):
        """One request from gustd; descriptors it sent are closed here whatever happens."""
        try:
            request = codec.loads(data)
            if not isinstance(request, dict):
                raise ValueError("a fork request is a JSON object")
            fork_id = request.get("fork")
            cgroup_files = request.get("cgroup_files") or 0
            passed = 3 if request.get("listener") is True else 2
            if not isinstance(fork_id, str) or not isinstance(cgroup_files, int) or len(fds) != passed + cgroup_files:
                raise ValueError(
                    "a fork request names its instance and sends two descriptors (stdout, stderr), its listening"
                    " socket if it says so, then one per cgroup file"
                )
        except ValueError as error:
            for fd in fds:
                os.close(fd)
            self.send({"failed": None, "error": str(error)})
            return
        try:
            listener = fds[2] if passed == 3 else None
            pid, pidfd = self.fork(request, fds[0], fds[1], fds[passed:], listener)
        except OSError as error:
            self.send({"failed": fork_id, "error": f"cannot fork: {error}"})
            return
        finally:
            for fd in fds:
                os.close(fd)
        try:
            self.send({"forked": fork_id, "pid": pid}, [pidfd])
        finally:
            os.close(pidfd)

    def fork(self, request, stdout, stderr, cgroup_files=(), listening_fd=None):
        """Forks an instance serving on `listening_fd` (the socket gustd bound for it, left open for
        the caller to close), or else on a socket bound here at request["socket"]; returns its pid
        and a pidfd of it (opened before the zygote can reap it, so it can only name this child,
        never a process that reused its pid)."""
        listener = unix.adopt(os.dup(listening_fd)) if listening_fd is not None else unix.listen(request["socket"])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            # What the zygote allocated since the last fork (a request or two) joins the rest.
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                if listening_fd is not None:
                    # The fork serves on its copy: the descriptor it was sent would be inherited by
                    # what the app starts, which could then accept gustd's connections.
                    os.close(listening_fd)
                self._become_instance(request, listener, stdout, stderr, cgroup_files)  # never returns
            self.children.add(pid)
            return pid, os.pidfd_open(pid)
        finally:
            listener.close()

    def _become_instance(self, request, listener, stdout, stderr, cgroup_files):
        # Into the instance's cgroups before anything else runs in this process, so no line of
        # the app's runs outside its limits; a fork that cannot join them ends at once. gustd
        # opened the files for it (as the app's uid, under a sandbox, which has no path to them).
        try:
            for fd in cgroup_files:
                os.write(fd, b"0")
                os.close(fd)
            for path in request.get("cgroups") or ():
                with open(path, "w") as procs:
                    procs.write("0")
        except OSError:
            os._exit(70)
        status = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.control.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            os.close(stdout)
            os.close(stderr)
            environment = request.get("environment") or {}
            os.environ.update({str(key): str(value) for key, value in environment.items()})
            relabel(self.zygote_id, environment.get(INSTANCE_VARIABLE, ""), self.environ_slot)
            server.take_internal_token({server.INTERNAL_TOKEN_VARIABLE: request.get("internal_token") or ""})
            reseed()
            server.serve(request["socket"], listener)
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 - a fork must never return into the zygote's loop
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)

    def reap(self):
        """Collects every fork that exited and tells gustd its wait status; then any other child that
        exited, unreported. In a sandbox the zygote is PID 1 of its PID namespace, so a fork's
        orphans (a process whose parent exited first) become its children, and nobody else would
        collect them: each would stay a zombie, counted against the app's pids limit."""
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.children.discard(pid)
                continue
            if done:
                self.children.discard(pid)
                self.send({"exited": pid, "status": status})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:  # a fork that exited since the loop above
                self.children.discard(pid)
                self.send({"exited": pid, "status": status})


def reseed():
    """What a fork must not share with its siblings: the `random` module's state (Python reseeds its
    global instance at fork too; this also covers a process started otherwise). os.urandom, secrets and
    uuid.uuid4 read the kernel's generator on each call and need nothing; an app that has not
    imported `random` gets fresh state when it does."""
    module = sys.modules.get("random")
    if module is not None:
        module.seed()


def main():
    control = unix.adopt(int(os.environ.pop("GUST_ZYGOTE_FD")))
    os.environ.pop(server.INTERNAL_TOKEN_VARIABLE, None)  # each fork gets its own secret
    server.load_or_exit(os.environ.get("GUST_APP_ROOT") or os.getcwd())
    reason = unforkable(allowed=(control.fileno(),))
    zygote = Zygote(control, os.environ.get(INSTANCE_VARIABLE, ""))
    if reason:
        zygote.send({"ready": False, "reason": reason})
        return
    # Every object the import made moves to the collector's permanent generation: a fork's
    # collections then never write to them (each write would copy a page of the zygote's), so
    # they stay shared between the forks. (No gc.collect() first: a full collection of all
    # the import made would cost a cold start more than the few cycles it could free.)
    gc.freeze()
    # With a pidfd of itself: under a sandbox gustd knows the zygote by its pid on the host.
    pidfd = os.pidfd_open(os.getpid())
    try:
        zygote.send({"ready": True}, [pidfd])
    finally:
        os.close(pidfd)
    zygote.serve()


if __name__ == "__main__":
    main()
