"""Serves a WSGI (Flask, Django) or ASGI (FastAPI, Starlette) application next to the app's functions.

    import gust
    from flask import Flask

    web = Flask(__name__)
    gust.mount('/', web)            # or gust.mount('/api', web)

A request whose path has no handler registered with ``gust.handler`` goes to the
mount with the longest prefix that contains it, with the prefix in SCRIPT_NAME
(WSGI) or root_path (ASGI). The internal surface (``/_gust/...``) and paths under
``/_/`` are never a mount's. The request body streams to the application as it
is read from gustd, and the answer streams back chunk by chunk
(``Transfer-Encoding: chunked`` when the application gives no Content-Length).
ASGI applications get the lifespan protocol: startup before the first request,
shutdown when gustd stops the instance.
"""

import io
import sys

import gust

# gust.asgi (and with it asyncio, the largest import of the runtime) is imported by the first
# ASGI mount only: an app without one, the common case, starts without it.

_mounts = []      # [Mount], longest prefix first


class Mount:
    """One application served under a path prefix ('/' for the root)."""

    def __init__(self, prefix, app, interface):
        self.prefix = prefix
        self.app = app
        self.interface = interface
        self.state = {}     # ASGI lifespan state, copied into every request's scope

    def contains(self, path):
        return self.prefix == "/" or path == self.prefix or path.startswith(self.prefix + "/")

    def split(self, path):
        """(script_name, path_info): the prefix ('' at the root) and the rest of the path."""
        if self.prefix == "/":
            return "", path
        return self.prefix, path[len(self.prefix):]


def interface_of(app):
    """'asgi' for an async callable (a coroutine function or an object whose __call__ is one), else 'wsgi'."""
    import inspect

    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None)):
        return "asgi"
    if not callable(app):
        raise TypeError(f"gust.mount: {app!r} is not a WSGI or ASGI application (not callable)")
    return "wsgi"


def mount(prefix, app, interface=None):
    """Serves a WSGI or ASGI ``app`` at ``prefix``; ``interface='wsgi'|'asgi'`` overrides the detection."""
    normalized = "/" + str(prefix).strip("/")
    if normalized == "/_" or normalized.startswith("/_/") or normalized.lower().startswith("/_gust"):
        raise ValueError(f"gust.mount: {prefix!r} is Gust's own surface; mount elsewhere")
    if any(m.prefix == normalized for m in _mounts):
        raise ValueError(f"gust.mount: something is already mounted at {normalized!r}")
    kind = interface or interface_of(app)
    if kind not in ("wsgi", "asgi"):
        raise ValueError(f"gust.mount: interface must be 'wsgi' or 'asgi', not {interface!r}")
    if kind == "asgi":
        from gust import asgi  # noqa: F401 - with the app's import, so a zygote's forks share it
    _mounts.append(Mount(normalized, app, kind))
    _mounts.sort(key=lambda m: len(m.prefix), reverse=True)
    return app


def mounted():
    """Whether the app mounted anything (known once it is imported)."""
    return bool(_mounts)


def find(path):
    """The mount serving ``path`` (decoded, canonical), or None: Gust's handlers and /_/ come first."""
    if not _mounts:
        return None
    first = path.lstrip("/").split("/", 1)[0]
    if first == "_" or first.lower().startswith("_gust"):
        return None
    if "/" + path.strip("/") in gust.registry.handlers:
        return None
    return next((m for m in _mounts if m.contains(path)), None)


# -- Serving one request on the runtime's connection -------------------------------------------

class _Body(io.RawIOBase):
    """The request body as a stream: reads at most Content-Length bytes from the connection."""

    def __init__(self, rfile, length):
        self._rfile = rfile
        self.remaining = length

    def readable(self):
        return True

    def read(self, size=-1):
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._rfile.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size=-1):
        if self.remaining <= 0:
            return b""
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        line = self._rfile.readline(limit)
        self.remaining -= len(line)
        return line

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def drain(self):
        while self.read(65536):
            pass


class _Answer:
    """Writes one answer: the head when the first chunk (or the end) comes, then chunks as they come."""

    def __init__(self, handler):
        self._handler = handler
        self._head_only = handler.command == "HEAD"
        self.status = None
        self.headers = []
        self.started = False
        self._chunked = False

    def start(self, status, headers, whole_body=None):
        from gust.server import _is_header_name, _is_header_value

        # The runtime is the mounted application's HTTP server, and a server refuses CR and LF in
        # an answer's headers (h11, gunicorn): else a client whose input the application puts in a
        # header adds headers of its own, or a second answer, read by gustd as another call's.
        # Raised before anything is sent, so the request is answered with the mount's 500.
        for name, value in headers:
            if not (isinstance(name, str) and _is_header_name(name) and _is_header_value(str(value))):
                raise ValueError(f"the answer's header {name!r}: {value!r} holds a character a header cannot "
                                 "carry (such as CR or LF), or its name is not a token")
        self._handler.send_response(int(status))
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() not in ("connection", "transfer-encoding"):
                self._handler.send_header(name, value)
        no_body = int(status) in (204, 304) or 100 <= int(status) < 200
        if whole_body is not None and "content-length" not in names and not no_body:
            self._handler.send_header("Content-Length", str(len(whole_body)))
        elif "content-length" not in names and not no_body:
            self._chunked = True
            self._handler.send_header("Transfer-Encoding", "chunked")
        self._handler.end_headers()
        self.started = True
        self._handler.wfile.flush()

    def write(self, data):
        if not data or self._head_only:
            return
        if self._chunked:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def finish(self):
        if self._chunked and not self._head_only:
            self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def fail(self, where):
        """A failure in the application: a 500 if nothing was sent, else the connection is cut (gustd sees it)."""
        sys.stderr.write(f"gust: mount {where} raised:\n{gust._failure_text()}")
        sys.stderr.flush()
        if self.started:
            self._handler.close_connection = True
            return
        body = b'{"code": 500, "error": "internal error in mount %s"}' % where.encode()
        self.start(500, [("Content-Type", "application/json")], body)
        self.write(body)
        self.finish()


def serve(handler):
    """Answers the request on ``handler`` (the runtime's BaseHTTPRequestHandler) if a mount takes it.

    Returns False, having read nothing, when no mount does.
    """
    from gust.server import request_path, CALL_HEADER, INTERNAL_HEADER

    path = request_path(handler.path)
    mounted = find(path)
    if mounted is None:
        return False
    body = _Body(handler.rfile, int(handler.headers.get("Content-Length") or 0))
    # gustd's own, not the application's to see: the internal secret and the call id.
    private = (INTERNAL_HEADER.lower(), CALL_HEADER.lower())
    headers = [(k, v) for k, v in handler.headers.items() if k.lower() not in private]
    query = handler.path.split("?", 1)[1] if "?" in handler.path else ""
    if mounted.interface == "asgi" and is_websocket(handler.headers) and handler.command == "GET":
        from gust import asgi

        try:
            asgi.serve_websocket(mounted, path, query, headers, handler)
        except Exception:  # noqa: BLE001 - a failure in the runtime costs this socket
            sys.stderr.write(f"gust: WebSocket at {mounted.prefix} failed:\n{gust._failure_text()}")
            handler.close_connection = True
        return True
    answer = _Answer(handler)
    try:
        if mounted.interface == "wsgi":
            _serve_wsgi(mounted, handler.command, path, query, headers, body, answer)
        else:
            from gust import asgi

            asgi.serve(mounted, handler.command, path, query, headers, body, answer)
    except Exception:  # noqa: BLE001 - the application's failure costs this request, not the instance
        answer.fail(mounted.prefix)
    if not handler.close_connection:
        body.drain()    # the connection carries the next request: leave nothing of this one unread
    return True


def is_websocket(headers):
    """Whether a request's headers ask to switch to the WebSocket protocol."""
    upgrade = (headers.get("Upgrade") or "").lower()
    return "websocket" in [p.strip() for p in upgrade.split(",")] and bool(headers.get("Sec-WebSocket-Key"))


def start():
    """Runs every ASGI mount's lifespan startup (raising if one fails); SIGTERM runs their shutdown."""
    asgi_mounts = [m for m in _mounts if m.interface == "asgi"]
    if asgi_mounts:
        from gust import asgi

        asgi.start(asgi_mounts)


def stop():
    """Runs the lifespan shutdown of every ASGI mount (none ran if gust.asgi was never imported)."""
    asgi = sys.modules.get("gust.asgi")
    if asgi is not None:
        asgi.stop()


def _header(headers, name, default=None):
    return next((v for k, v in headers if k.lower() == name), default)


def _serve_wsgi(mounted, method, path, query, headers, body, answer):
    script_name, path_info = mounted.split(path)
    host = _header(headers, "x-forwarded-host") or _header(headers, "host", "localhost")
    server_name, _, port = host.partition(":")
    scheme = _header(headers, "x-forwarded-proto", "http")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name.encode().decode("latin-1"),
        "PATH_INFO": path_info.encode().decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": port or ("443" if scheme == "https" else "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        # The last entry, which gustd added (its peer): the first is a client's claim behind a proxy.
        "REMOTE_ADDR": (_header(headers, "x-forwarded-for", "") or "").split(",")[-1].strip(),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        elif "HTTP_" + key in environ:
            environ["HTTP_" + key] += "," + value
        else:
            environ["HTTP_" + key] = value

    def start_response(status, response_headers, exc_info=None):
        if exc_info and answer.started:
            raise exc_info[1].with_traceback(exc_info[2])
        answer.status = int(str(status).split(" ", 1)[0])
        answer.headers = list(response_headers)
        return write

    def write(data):
        if not answer.started:
            answer.start(answer.status, answer.headers)
        answer.write(data)

    result = mounted.app(environ, start_response)
    try:
        if isinstance(result, (list, tuple)) and len(result) <= 1:
            whole = b"".join(result)
            if not answer.started:
                answer.start(answer.status, answer.headers, whole)
            answer.write(whole)
        else:
            for chunk in result:
                if chunk and not answer.started:
                    answer.start(answer.status, answer.headers)
                answer.write(chunk)
            if not answer.started:
                answer.start(answer.status, answer.headers, b"")
        answer.finish()
    finally:
        if hasattr(result, "close"):
            result.close()
