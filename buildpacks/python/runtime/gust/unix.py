"""Unix sockets as the runtime uses them, on `_socket`, the C module under `socket`.

`import socket` imports `selectors` and builds its enums at import: about 5 ms of every cold
start on the machine it was measured on (docs/benchmarks.md, "The runtime's own imports out
of a cold start"), for a runtime that only listens, accepts, reads, writes and passes
descriptors on Unix sockets. The objects here are `_socket.socket`s: they have what those
take (bind, listen, sendall, recvmsg, shutdown, fileno, close), not `socket.socket`'s extras
such as makefile(); a reader is made with `reader()`.
"""

import _socket
import io
import os
import sys

SHUT_WR = _socket.SHUT_WR
SHUT_RDWR = _socket.SHUT_RDWR
MSG_TRUNC = _socket.MSG_TRUNC
MSG_CTRUNC = _socket.MSG_CTRUNC
_INT_BYTES = 4  # a descriptor in SCM_RIGHTS is a C int


def listen(path, backlog=64):
    """A stream socket listening at `path` (a file left there is replaced)."""
    if os.path.exists(path):
        os.unlink(path)
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(backlog)
    except BaseException:
        listener.close()
        raise
    return listener


def adopt(fd):
    """The socket open at descriptor `fd` (its family and type asked of the kernel), made not
    inheritable: it is the runtime's, not the app's subprocesses'."""
    os.set_inheritable(fd, False)
    return _socket.socket(fileno=fd)


def accept(listener):
    """The next connection on `listener` (blocking, close-on-exec, as socket.accept gives it)."""
    fd, _ = listener._accept()
    return _socket.socket(listener.family, listener.type, listener.proto, fd)


def reader(sock, buffering=65536):
    """A buffered reader of the connection, as makefile("rb") would give. It does not own the
    descriptor: the connection is closed by whoever holds `sock`, after the reader."""
    return io.open(sock.fileno(), "rb", buffering=buffering, closefd=False)


def send_fds(sock, data, fds):
    """Sends `data` in one message with the descriptors `fds` (socket.send_fds's message)."""
    rights = b"".join(fd.to_bytes(_INT_BYTES, sys.byteorder, signed=True) for fd in fds)
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds else [])


def recv_fds(sock, size, max_fds):
    """One message of at most `size` bytes and `max_fds` descriptors: (data, descriptors, flags),
    as socket.recv_fds reads it; MSG_TRUNC or MSG_CTRUNC in flags says what did not fit."""
    # Close-on-exec from the start: what the app starts must not inherit what gustd sent.
    data, ancillary, flags, _ = sock.recvmsg(size, _socket.CMSG_LEN(max_fds * _INT_BYTES), _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, rights in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            whole = len(rights) - len(rights) % _INT_BYTES
            fds.extend(int.from_bytes(rights[at:at + _INT_BYTES], sys.byteorder, signed=True) for at in range(0, whole, _INT_BYTES))
    return data, fds, flags
