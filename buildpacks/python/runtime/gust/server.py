"""Serves an app's functions over HTTP/1.1 on the Unix socket $GUST_SOCKET.

Runtime protocol v2 (docs/runtime-protocol.md). Each connection is served by a
thread of its own (the first by the main thread), but gustd sends one request
at a time per instance; the only exception is a record hook caused by the
request in progress (through gust.records), which arrives on a second
connection while that request waits for it. So user code still runs one thing
at a time and need not be thread-safe.
"""

import _thread
import contextvars
import errno
import importlib.util
import os
import sys
import threading
import time

import gust
from gust import codec, mounts, unix

try:
    # hmac.compare_digest itself, without the import of hmac (and with it hashlib and OpenSSL,
    # 2 ms of every cold start) for the one comparison the runtime makes.
    from _operator import _compare_digest as _compare_digest
except ImportError:  # an interpreter without CPython's _operator
    from hmac import compare_digest as _compare_digest

PROTOCOL = 2

# Protocol 2: gustd names each call in this header, and every line the call
# prints starts with RS + id + US, so gustd credits it to the call's function
# even while calls overlap. The id of the call this code runs for:
CALL_HEADER = "X-Gust-Call"
_call_id = contextvars.ContextVar("gust_call_id", default=None)
_CALL_ID_DIGITS = 20


class _Pending(threading.local):
    """A thread's unfinished line; a class default, so reading it where the thread never
    wrote is a plain lookup rather than a caught AttributeError (most of a trivial call's cost
    of ending the call, measured)."""
    text = ""


class CallTaggedStream:
    """sys.stdout / sys.stderr as the runtime installs them: lines written
    while a call runs (in its thread or context) start with the call's tag.
    A line is tagged once it is complete, so print()'s pieces stay one line;
    what a call leaves unfinished is ended with its call (end_call). Threads
    an app starts itself carry no call, and their lines go out as written.
    Everything else is the wrapped stream's."""

    def __init__(self, stream):
        self._stream = stream
        self._pending = _Pending()

    def write(self, text):
        call = _call_id.get()
        if call is None:
            return self._stream.write(text)
        data = self._pending.text + text
        end = data.rfind("\n")
        if end < 0:
            self._pending.text = data
            return len(text)
        self._pending.text = data[end + 1:]
        tag = "\x1e" + call + "\x1f"
        self._stream.write("".join(tag + line + "\n" for line in data[:end].split("\n")))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def end_call(self):
        """Sends what the call left without a newline, as a line of its own."""
        rest = self._pending.text
        if rest:
            self._pending.text = ""
            self.write(rest + "\n")
        self._stream.flush()

    def flush(self):
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def tag_output():
    """Installs CallTaggedStream over sys.stdout and sys.stderr (once)."""
    if not isinstance(sys.stdout, CallTaggedStream):
        sys.stdout = CallTaggedStream(sys.stdout)
    if not isinstance(sys.stderr, CallTaggedStream):
        sys.stderr = CallTaggedStream(sys.stderr)


def run_call(call_id, function, *args):
    """Runs function(*args) as the call call_id (a header's value; ignored unless digits)."""
    if not call_id or len(call_id) > _CALL_ID_DIGITS or not (call_id.isascii() and call_id.isdigit()):
        return function(*args)
    token = _call_id.set(call_id)
    try:
        return function(*args)
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, CallTaggedStream):
                stream.end_call()
        _call_id.reset(token)


# The internal surface (/_gust/...) answers only requests carrying this
# instance's secret in this header; gustd passes the secret in the environment.
INTERNAL_HEADER = "X-Gust-Internal"
INTERNAL_TOKEN_VARIABLE = "GUST_INTERNAL_TOKEN"
_internal_token = None


def take_internal_token(environ=os.environ):
    """Moves the secret from the environment into the runtime, so app code and its children never see it."""
    global _internal_token
    _internal_token = environ.pop(INTERNAL_TOKEN_VARIABLE, None) or None


def _is_gustd(headers):
    """Whether the request carries this instance's secret (compared in constant time)."""
    sent = next((v for k, v in headers.items() if k.lower() == INTERNAL_HEADER.lower()), None)
    if _internal_token is None or sent is None:
        return False
    return _compare_digest(sent.encode(), _internal_token.encode())


def request_path(target):
    """The target's path decoded once, without empty or '.' segments, '..' resolved at most to the root.

    Read the same way as gustd's RequestPath, so both agree on what is internal.
    The query is not looked at: a target such as '//host/x' is a path, not a URL.
    """
    if target.startswith("/") and "%" not in target and "?" not in target and "//" not in target and "/." not in target:
        return target  # nothing to decode, drop or resolve: what _resolved_path gives, and most calls' case
    return _resolved_path(target)


def _resolved_path(target):
    """request_path the long way, for every target."""
    import urllib.parse  # with ipaddress, 1.7 ms of a cold start: only for a path with an escape (warm())

    decoded = urllib.parse.unquote(target.split("?", 1)[0])
    segments = []
    for segment in decoded.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    trailing = "/" if segments and (decoded.endswith("/") or decoded.endswith("/..")) else ""
    return "/" + "/".join(segments) + trailing


def _is_internal(path):
    first = path.lstrip("/").split("/", 1)[0]
    return first.lower().startswith("_gust")


# JSON as gustd and the Node runtime read it (exact integers, no NaN or Infinity), without the
# json package's import on a cold start's path (gust.codec).
loads = codec.loads
dumps = codec.dumps


def load_app(root):
    """Imports the app the way Python would: a package if the root has __init__.py, else main.py."""
    sys.path.insert(0, root)
    init = os.path.join(root, "__init__.py")
    main = os.path.join(root, "main.py")
    if os.path.exists(init):
        spec = importlib.util.spec_from_file_location("app", init, submodule_search_locations=[root])
    elif os.path.exists(main):
        spec = importlib.util.spec_from_file_location("main", main)
    else:
        raise SystemExit("gust: no __init__.py or main.py at the top of the app: add one that imports your functions")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _http_status(code):
    """An app's own error codes (LeanCloud style, e.g. 123) travel in the body; the status must be a real error."""
    return code if 400 <= code <= 599 else 400


def _error(code, message):
    body = dumps({"code": code, "error": message}).encode()
    return _http_status(code), {"Content-Type": "application/json"}, body


def _json(value, status=200):
    return status, {"Content-Type": "application/json"}, dumps(value).encode()


def _result(kind, name, value, render=None):
    """Encodes what user code returned; a value JSON cannot carry is a 500 that says so (and is logged)."""
    try:
        return (render or _json)(value)
    except TypeError as error:
        sys.stderr.write(f"gust: {kind} {name} returned a value JSON cannot encode ({error}): {value!r}\n")
        sys.stderr.flush()
        return _error(500, f"internal error in {kind} {name}")
    except ValueError:
        sys.stderr.write(f"gust: {kind} {name} returned NaN or an infinity, which JSON cannot carry: {value!r}\n")
        sys.stderr.flush()
        return _error(500, f"{kind} {name} returned NaN or an infinity, which JSON cannot carry")


def _call(kind, name, function, /, *args, **kwargs):
    """Runs user code, turning its failures into protocol errors.

    Positional-only, so that an op's own arguments may be called kind, name or function.
    """
    try:
        return None, function(*args, **kwargs)
    except gust.Error as error:
        return _error(error.code, error.message), None
    except Exception:  # noqa: BLE001 - any failure of user code is a 500 with its traceback in the log
        sys.stderr.write(f"gust: {kind} {name} raised:\n{gust._failure_text()}")
        sys.stderr.flush()
        return _error(500, f"internal error in {kind} {name}"), None


class Request:
    """What an HTTP handler receives."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self):
        return loads(self.body or b"null")


def _render(value):
    if isinstance(value, gust.Response):
        status, headers, body = value.status, dict(value.headers), value.body
        if isinstance(body, str):
            body = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif isinstance(body, (dict, list)):
            body = dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        return status, headers, body or b""
    if isinstance(value, bytes):
        return 200, {"Content-Type": "application/octet-stream"}, value
    if isinstance(value, (dict, list)):
        return _json(value)
    if value is None:
        return 204, {}, b""
    return 200, {"Content-Type": "text/plain; charset=utf-8"}, str(value).encode()


def _parse_object(body):
    if not body:
        return {}
    value = loads(body)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _health(name, headers, body):
    return _json({"ok": True})


def _manifest(name, headers, body):
    runtime = "python %d.%d.%d" % sys.version_info[:3]
    return _json(dict({"protocol": PROTOCOL, "runtime": runtime}, **gust.registry.manifest()))


_PLAIN_FUNCTION = type(_health)
_VAR_KEYWORDS = 0x08  # CO_VARKEYWORDS: the function takes **kwargs


def _unbindable(function, arguments):
    """Why ``function(**arguments)`` cannot be called, as ``inspect.signature(function).bind`` says it, or None.

    Read from a plain function's code object, without importing inspect (the runtime's largest
    import after asyncio, and it is paid by every cold start); anything else (a decorated
    function, a callable object, a partial) asks inspect."""
    if type(function) is not _PLAIN_FUNCTION or hasattr(function, "__wrapped__") or hasattr(function, "__signature__"):
        import inspect

        try:
            inspect.signature(function).bind(**arguments)
        except TypeError as error:
            return str(error)
        return None
    code = function.__code__
    positional, keyword_only = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[:positional + keyword_only]
    with_default = set(names[positional - len(function.__defaults__ or ()):positional]) | set(function.__kwdefaults__ or ())
    for index, parameter in enumerate(names):
        if parameter in arguments:
            if index < code.co_posonlyargcount:
                return f"{parameter!r} parameter is positional only, but was passed as a keyword"
        elif parameter not in with_default:
            return f"missing a required argument: {parameter!r}"
    if not code.co_flags & _VAR_KEYWORDS:
        unexpected = next((key for key in arguments if key not in names), None)
        if unexpected is not None:
            return f"got an unexpected keyword argument {unexpected!r}"
    return None


def _op(name, headers, body):
    function = gust.registry.ops.get(name)
    if function is None:
        return _error(404, f"no op named {name!r}")
    try:
        arguments = _parse_object(body)
    except ValueError:
        return _error(400, "the body must be a JSON object of the op's arguments")
    refused = _unbindable(function, arguments)
    if refused:
        return _error(400, f"bad arguments for op {name}: {refused}")
    failure, result = _call("op", name, function, **arguments)
    return failure or _result("op", name, result)


def _schedule(name, headers, body):
    entry = gust.registry.schedules.get(name)
    if entry is None:
        return _error(404, f"no schedule named {name!r}")
    try:
        params = _parse_object(body) or (entry[2] or {})
    except ValueError:
        return _error(400, "the body must be a JSON object of params")
    function = entry[3]
    failure, _ = _call("schedule", name, function, **params) if params else _call("schedule", name, function)
    return failure or _json({"ok": True})


def _hook(name, headers, body):
    parts = name.split("/", 1)
    function = gust.registry.hooks.get(tuple(parts)) if len(parts) == 2 else None
    if function is None:
        return _error(404, f"no hook {name}")
    try:
        payload = _parse_object(body)
    except ValueError:
        return _error(400, "the body must be a JSON object")
    record, original = payload.get("record"), payload.get("original")
    # Writes the hook makes through gust.records carry its context, so they do not trigger it again.
    gust._hook_context.value = next((v for k, v in headers.items() if k.lower() == "x-gust-hook-context"), None)
    try:
        failure, changed = _call("hook", f"{parts[0]} {parts[1]}", function, record, original)
    finally:
        gust._hook_context.value = None
    if failure:
        return failure
    return _result("hook", f"{parts[0]} {parts[1]}", {"record": changed if isinstance(changed, dict) else record})


# The internal surface: (method, prefix) -> endpoint(name after the prefix, headers, body).
# A prefix ending in "/" takes a name; the others match the whole path.
_INTERNAL = {
    ("GET", "/_gust/health"): _health,
    ("GET", "/_gust/manifest"): _manifest,
    ("POST", "/_gust/ops/"): _op,
    ("POST", "/_gust/schedules/"): _schedule,
    ("POST", "/_gust/hooks/"): _hook,
}


def _internal(method, path, headers, body):
    for (endpoint_method, prefix), endpoint in _INTERNAL.items():
        if prefix.endswith("/") and path.startswith(prefix) and len(path) > len(prefix):
            name = path[len(prefix):]
        elif path == prefix:
            name = ""
        else:
            continue
        if method == endpoint_method or (method == "HEAD" and endpoint_method == "GET"):
            return endpoint(name, headers, body)
    return _error(404, f"no such endpoint {path}")


# Header names are HTTP tokens; values hold no control characters but tab (RFC 9110, 5.5).
# Checked as sets of characters rather than by `re`, whose import a cold start would pay.
_TOKEN_CHARACTERS = frozenset("!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")
_CONTROL_CHARACTERS = frozenset(chr(c) for c in [*range(0x09), *range(0x0a, 0x20), 0x7f])


def _is_header_name(name):
    return bool(name) and _TOKEN_CHARACTERS.issuperset(name)


def _is_header_value(value):
    return _CONTROL_CHARACTERS.isdisjoint(value)


def _checked_headers(path, response):
    """A handler's answer, or a 500 naming the header it cannot send (one with CR or LF would split the answer)."""
    status, headers, body = response
    for key, value in headers.items():
        if not (isinstance(key, str) and _is_header_name(key) and _is_header_value(str(value))):
            sys.stderr.write(f"gust: handler {path} returned a header that cannot be sent: {key!r}: {value!r}\n")
            sys.stderr.flush()
            return _error(500, f"handler {path} returned the header {key!r}, whose name or value holds a "
                               "character a header cannot carry (such as CR or LF)")
    return response


# Headers of gustd's protocol with the runtime, never shown to a handler.
_PRIVATE_HEADERS = (INTERNAL_HEADER.lower(), CALL_HEADER.lower())


def dispatch(method, target, headers, body, path=None):
    """Answers one request: (status, headers, body). `path` is request_path(target), when the caller has it."""
    if path is None:
        path = request_path(target)
    if _is_internal(path):
        if not _is_gustd(headers):
            # Only gustd holds the secret; to anyone else the internal surface does not exist.
            return _error(404, f"no handler for {path}")
        return _internal(method, path, headers, body)
    routes = gust.registry.handlers.get("/" + path.strip("/"))
    if routes is None:
        return _error(404, f"no handler for {path}")
    function = routes.get(method) or (routes.get("GET") if method == "HEAD" else None)
    if function is None:
        status, response_headers, response_body = _error(405, f"{method} is not allowed on {path}")
        response_headers["Allow"] = ", ".join(sorted(routes))
        return status, response_headers, response_body
    query_text = target.split("?", 1)[1] if "?" in target else ""
    query = _query(query_text) if query_text else {}
    visible = {k: v for k, v in headers.items() if k.lower() not in _PRIVATE_HEADERS}
    request = Request(method, path, query, visible, body)
    failure, value = _call("handler", path, function, request)
    if failure:
        return failure
    rendered = _result("handler", path, value, _render)
    # Only a gust.Response carries headers of the handler's own; the runtime's are safe.
    return _checked_headers(path, rendered) if isinstance(value, gust.Response) else rendered


def answer(method, target, headers, body, call_id=None, path=None):
    """Answers one request as the socket does: (status, headers, body), a runtime failure a 500."""
    try:
        return run_call(call_id, dispatch, method, target, headers, body, path)
    except Exception:  # noqa: BLE001 - a bug in the runtime must answer, not drop the connection
        sys.stderr.write(f"gust: {method} {target} failed in the runtime:\n{gust._failure_text()}")
        sys.stderr.flush()
        return _error(500, "internal error in the runtime")


def _query(text):
    """A handler's query parameters, the last of each name; urllib.parse comes with the first (warm())."""
    import urllib.parse

    return {key: values[-1] for key, values in urllib.parse.parse_qs(text, keep_blank_values=True).items()}


# The reason phrase of each status an answer has given. http.HTTPStatus's table (an enum of 60 members
# built at import) is read at the first other status than 200 (warm()), not by every start.
_REASONS = {200: "OK"}


def _reason(status):
    reason = _REASONS.get(status)
    if reason is None:
        import http

        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        _REASONS[status] = reason
    return reason


def warm():
    """Imports what only some calls need (a query, an escaped path, a status other than 200).
    A zygote runs it once it has forked and then been idle a moment: off a cold start's path,
    and before the forks that follow, which then share it instead of each importing it."""
    import urllib.parse  # noqa: F401

    _reason(404)


_MAX_LINE = 65536
_MAX_HEADERS = 100


class _BadRequest(Exception):
    pass


def _read_line(rfile):
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _BadRequest("line too long")
    return line


def _read_head(rfile):
    """A request's line and header lines, as bytes without their line ends; None at the
    connection's end. gustd writes a request in one piece, so its head is mostly whole in the
    read buffer already: then it is taken with one read and one split, else line by line (a
    head split across reads, blank lines before it, a line ended by a bare LF)."""
    buffered = rfile.peek(1)  # what the buffer holds, after one read if it held nothing
    end = buffered.find(b"\r\n\r\n")
    if end > 0 and not buffered.startswith((b"\r\n", b"\n")) and buffered.count(b"\n", 0, end) == buffered.count(b"\r\n", 0, end):
        lines = rfile.read(end + 4)[:end].split(b"\r\n")
        if len(lines) > _MAX_HEADERS + 1:
            raise _BadRequest("too many headers")
        return lines[0], lines[1:]  # each shorter than the buffer, so within _MAX_LINE
    line = _read_line(rfile)
    while line in (b"\r\n", b"\n"):  # tolerated between requests (RFC 9112, 2.2)
        line = _read_line(rfile)
    if not line:
        return None
    fields = []
    for _ in range(_MAX_HEADERS + 1):
        field = _read_line(rfile)
        if field in (b"\r\n", b"\n"):
            return line, fields
        if not field:
            return None
        fields.append(field)
    raise _BadRequest("too many headers")


def _read_body(rfile, lowered):
    """The body by Content-Length, or chunked (the protocol sends lengths; chunked is taken for tools)."""
    encoding = lowered.get("transfer-encoding")
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise _BadRequest("unsupported transfer encoding")
        parts = []
        while True:
            size = int(_read_line(rfile).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while _read_line(rfile) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline()
    length = lowered.get("content-length")
    if not length:
        return b""
    count = int(length)
    if count < 0:
        raise _BadRequest("negative length")
    body = rfile.read(count)
    if len(body) < count:
        raise ConnectionError("body cut short")
    return body


def serve_connection(sock):
    """HTTP/1.1 on one connection, as lean as the protocol allows: gustd sends well-formed
    requests with a Content-Length and keeps the connection, so a request is a line, its
    headers split at the first colon, and its body; the answer leaves in one write.
    (http.server parses headers with the email package and formats a date per answer,
    most of what a trivial call cost: docs/benchmarks.md.) Closes the connection at its end."""
    if mounts.mounted() and not hasattr(sock, "makefile"):
        # A mounted framework's requests write through a socket.socket's makefile, and a writer it
        # leaves in a thread keeps that socket open until it is done with it, where a descriptor
        # the runtime closed could be reused by the next connection. So an app with mounts serves
        # each connection on a socket.socket (`socket` imported here, by an app that mounts a
        # framework, which imports it anyway; not by every cold start).
        import socket

        sock = socket.socket(fileno=sock.detach())
    rfile = unix.reader(sock)
    try:
        while _serve_one(sock, rfile):
            pass
    except (ConnectionError, OSError):
        pass
    except Exception:  # noqa: BLE001 - a bug in the runtime ends this connection, not the instance
        sys.stderr.write(f"gust: a connection failed in the runtime:\n{gust._failure_text()}")
        sys.stderr.flush()
    finally:
        rfile.close()
        try:
            sock.shutdown(unix.SHUT_WR)  # the end, even where a mount's writer still holds the socket
        except OSError:
            pass
        sock.close()


def _serve_one(sock, rfile):
    """Serves one request; False once the connection should close."""
    try:
        head = _read_head(rfile)
        if head is None:
            return False
        line, fields = head
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest("bad request line")
        method, target, version = parts
        headers, lowered = {}, {}
        for field in fields:
            name, colon, value = field.decode("latin-1").partition(":")
            if not colon or not name or name != name.strip():
                raise _BadRequest("bad header")
            headers[name] = lowered[name.lower()] = value.strip()
        connection = lowered.get("connection", "").lower()
        close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        path = request_path(target)  # read once, for the mounts and for dispatch
        if mounts.find(path) is not None:
            exchange = _MountExchange(sock, method, target, headers, lowered, rfile, close)
            run_call(lowered.get("x-gust-call"), mounts.serve, exchange)
            exchange.wfile.flush()
            return not exchange.close_connection
        body = _read_body(rfile, lowered)
    except (_BadRequest, ValueError):
        status, response_headers, payload = _error(400, "bad request")
        _send(sock, "GET", status, response_headers, payload, close=True)
        return False
    status, response_headers, payload = answer(method, target, headers, body, lowered.get("x-gust-call"), path)
    _send(sock, method, status, response_headers, payload, close)
    return not close


# How an answer is framed is the runtime's: a handler's own would give it two lengths, or a length
# and chunks, which gustd refuses (and replaces the instance for).
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


def _send(sock, method, status, headers, payload, close):
    head = [f"HTTP/1.1 {status} {_reason(status)}\r\n"]
    for key, value in headers.items():
        if key.lower() in _FRAMING:
            continue
        head.append(f"{key}: {value}\r\n")
    head.append(f"Content-Length: {len(payload)}\r\n")
    if close:
        head.append("Connection: close\r\n")
    head.append("\r\n")
    data = "".join(head).encode("latin-1", "replace")
    sock.sendall(data if method == "HEAD" else data + payload)


class _Headers:
    """A request's headers as a mount reads them: in order, looked up by any case."""

    def __init__(self, headers, lowered):
        self._headers = headers
        self._lowered = lowered

    def get(self, name, default=None):
        return self._lowered.get(name.lower(), default)

    def items(self):
        return self._headers.items()


class _MountExchange:
    """One request handed to a mounted application (gust.mounts.serve): the face of
    http.server's request handler that mounts write to, over the lean loop's socket, so
    a streamed answer leaves chunk by chunk while the application still runs."""

    def __init__(self, sock, method, target, headers, lowered, rfile, close):
        self.command = method
        self.path = target
        self.headers = _Headers(headers, lowered)
        self.rfile = rfile
        self.wfile = sock.makefile("wb", buffering=65536)
        self.sock = sock
        self.close_connection = close
        self._head = []

    def send_response(self, status):
        self._head.append(f"HTTP/1.1 {status} {_reason(status)}\r\n")

    def send_header(self, name, value):
        self._head.append(f"{name}: {value}\r\n")

    def end_headers(self):
        if self.close_connection:
            self._head.append("Connection: close\r\n")
        self._head.append("\r\n")
        self.wfile.write("".join(self._head).encode("latin-1", "replace"))
        self._head = []


def listen(socket_path):
    """A listening socket at `socket_path` (a file left there is replaced)."""
    return unix.listen(socket_path)


def serve_on(listener):
    """Serves every connection on `listener` until it is shut down (stop_listening): the first
    in this thread, the others each in a thread of its own. The first is gustd's, opened as soon
    as the instance is up, so its first call waits for no thread to start (1.3 ms in a fresh
    fork here: docs/benchmarks.md); the thread that accepts the others (a record hook's, opened
    while a call waits for it) starts while the first is served."""
    connection = _accept(listener)
    if connection is None:
        return
    # A bare thread: threading.Thread.start() would wait here until the new thread runs (0.4 ms
    # of a cold start's first call, traced); this one is not waited for, and joined through a lock.
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_accept_forever, (listener, done))
    serve_connection(connection)
    done.acquire()


def stop_listening(listener):
    """Ends serve_on's accepting (a blocked accept() wakes up) and closes the listener."""
    try:
        listener.shutdown(unix.SHUT_RDWR)
    except OSError:
        pass
    listener.close()


def _accept_forever(listener, done):
    try:
        while (connection := _accept(listener)) is not None:
            threading.Thread(target=serve_connection, args=(connection,), daemon=True).start()
    finally:
        done.release()


def _accept(listener):
    """The next connection; None once the listener is shut down or closed. Out of descriptors
    (or any other failure of one connection), it waits a little and accepts again."""
    while True:
        try:
            return unix.accept(listener)
        except OSError as error:
            if error.errno in (errno.EINVAL, errno.EBADF):
                return None
            time.sleep(0.05)


def load_or_exit(root):
    """Imports the app; one that cannot load says why (its traceback on stderr) and exits 1."""
    try:
        load_app(root)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - an app that cannot load must say why and exit
        sys.stderr.write(gust._failure_text())
        sys.stderr.flush()
        sys.exit(1)


def serve(socket_path, listener=None):
    """Runs the app's gust.after_fork functions, then serves on `listener` (a bound, listening
    socket handed over by the zygote) or on a new socket at `socket_path`, until killed."""
    tag_output()
    for function in gust._after_fork:
        function()
    mounts.start()  # an ASGI mount's lifespan runs in each instance, after the fork
    serve_on(listener if listener is not None else listen(socket_path))


def inherited_listener(environ=os.environ):
    """The listening socket gustd bound and handed over as descriptor GUST_LISTEN_FD (taken out of
    the environment, and not passed on to the app's own subprocesses), or None: a gustd that did
    not bind one, and the runtime binds GUST_SOCKET itself."""
    fd = environ.pop("GUST_LISTEN_FD", None)
    if not fd:
        return None
    return unix.adopt(int(fd))


def main():
    if os.environ.get("GUST_ZYGOTE_FD"):
        from gust import zygote  # gustd asked for a zygote (docs/runtime-protocol.md, "Zygotes")
        return zygote.main()
    socket_path = os.environ.get("GUST_SOCKET")
    listener = inherited_listener()
    if not socket_path and listener is None:
        raise SystemExit("gust: GUST_SOCKET is not set; the runtime is started by gustd")
    take_internal_token()
    load_or_exit(os.environ.get("GUST_APP_ROOT") or os.getcwd())
    serve(socket_path, listener)


if __name__ == "__main__":
    main()
