"""Gust's entrypoint in an OCI image of a release (docs/oci.md).

    python3 -I /gust/entrypoint.py serve            # the default command
    python3 -I /gust/entrypoint.py schedule NAME    # runs one schedule once, then exits

Why a front of its own: gustd never lets a caller reach an instance's
internal surface (`/_gust/...`: the manifest, schedules, hooks) and maps the
public `/_/functions/NAME` onto it. In a container there is no gustd, so this
small process takes its place for the one app: it starts the release's runtime
exactly as gustd does (`.gust/start`, a Unix socket, a random internal secret),
and serves on $PORT what gustd serves for the app, deciding on the path as
`Sources/GustDaemon/Gateway/RequestPath.swift` does, so no spelling of an
internal path gets through. It also relays `gust.records` to the Gust server
over HTTPS (GUST_RECORDS_URL, GUST_RECORDS_TOKEN), keeping the app token out
of the runtime's environment. Python 3 standard library only: every stack has
Python, also for Node apps.
"""

import contextlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

APP_DIR = os.environ.get("GUST_APP_DIR", "/app")
APP = os.environ.get("GUST_APP", "app")
RELEASE = os.environ.get("GUST_RELEASE", "")


def _number(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"gust: {name} must be a number, not {os.environ.get(name)!r}")


FUNCTION_TIMEOUT = _number("GUST_FUNCTION_TIMEOUT", 15)
START_TIMEOUT = _number("GUST_START_TIMEOUT", 60)
MAX_BODY = int(_number("GUST_MAX_BODY", 10 * 1024 * 1024))
NODE_CONCURRENCY = max(1, int(_number("GUST_CONCURRENCY", 10)))
# A client connection that sends nothing for this long is closed (gustd's --idle-timeout): each holds a thread.
IDLE_TIMEOUT = _number("GUST_IDLE_TIMEOUT", 60)

RECORDS_HELP = ("set GUST_RECORDS_URL to the app's https:// address on its Gust server (https://APP.DOMAIN or "
                "https://DOMAIN/apps/APP) and GUST_RECORDS_TOKEN to an app token (`gust tokens create APP`)")


def log(message):
    print(f"gust: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The path, read as gustd's gateway reads it (RequestPath.swift)

_UNESCAPED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_MAXIMUM_DECODINGS = 8


def percent_decoded(text):
    """%XX escapes decoded as UTF-8; a malformed escape stays as sent, invalid UTF-8 becomes U+FFFD."""
    if "%" not in text:
        return text
    data = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    index = 0
    while index < len(data):
        if data[index] == 0x25 and index + 2 < len(data) and data[index + 1] in _HEX and data[index + 2] in _HEX:
            out.append(_HEX[data[index + 1]] << 4 | _HEX[data[index + 2]])
            index += 3
        else:
            out.append(data[index])
            index += 1
    return out.decode("utf-8", "replace")


def _segments(decoded, backslash_is_slash=False):
    if backslash_is_slash:
        decoded = decoded.replace("\\", "/")
    return [s for s in decoded.split("/") if s and s != "."]


def resolved(segments):
    """`..` removes the segment before it, never climbing above the root."""
    out = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    return out


class RequestPath:
    """A request's path decoded once, as segments with dot segments resolved."""

    def __init__(self, raw):
        decoded = percent_decoded(raw)
        parts = _segments(decoded)
        self.segments = resolved(parts)
        self.trailing = bool(self.segments) and (decoded.endswith("/") or (parts[-1:] == [".."]))

    @property
    def decoded(self):
        return "/" + "/".join(self.segments) + ("/" if self.trailing else "")

    def encoded(self, drop=0):
        """The canonical target: each segment percent-encoded but unreserved characters and !$&'()*+,;=:@."""
        segments = self.segments[drop:]
        text = "/" + "/".join("".join(chr(b) if b in _UNESCAPED else "%%%02X" % b for b in s.encode("utf-8", "surrogateescape"))
                              for s in segments)
        return text + ("/" if self.trailing and segments else "")

    @property
    def reaches_reserved_surface(self):
        """Whether any reading (decoded once or more, any case, `\\` as `/`) is `/_gust…` or `/_/…` beyond the public three."""
        reading = self.decoded
        for _ in range(_MAXIMUM_DECODINGS):
            if _is_reserved(resolved(_segments(reading, backslash_is_slash=True))):
                return True
            following = percent_decoded(reading)
            if following == reading:
                return False
            reading = following
        return True


def _is_reserved(segments):
    if not segments:
        return False
    first = segments[0].lower()
    if first.encode("utf-8", "surrogateescape").startswith(b"_gust"):
        return True
    if first != "_":
        return False
    second = segments[1] if len(segments) > 1 else None
    if second == "functions":
        return len(segments) < 3
    return second not in ("records", "health")


# ---------------------------------------------------------------------------
# The runtime: the release's own `.gust/start`, supervised


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("instance", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Runtime:
    """The app's runtime process: started as gustd starts an instance, restarted when it dies or hangs.

    Each runtime is a generation. `restart` is the one way from a generation to the next, whoever notices first
    (its watcher, a call that timed out or found it gone), so one death starts one runtime, never two.
    """

    def __init__(self, workdir, records_socket, records_token):
        self.workdir = workdir
        self.socket_path = os.path.join(workdir, "instance.sock")
        self.records_socket = records_socket
        self.records_token = records_token
        self.secret = None
        self.process = None
        self.manifest = None
        self.ready = threading.Event()
        self.lock = threading.Lock()  # guards generation, process, secret, stopping and the ready flag's changes
        self.generation = 0
        self.stopping = False
        self.calls = None

    def environment(self):
        env = dict(os.environ)
        for name in ("GUST_RECORDS_URL", "GUST_RECORDS_TOKEN"):
            env.pop(name, None)
        env.update({
            "GUST_SOCKET": self.socket_path,
            "GUST_INTERNAL_TOKEN": self.secret,
            "GUST_INSTANCE": socket.gethostname(),
            "GUST_RECORDS_SOCKET": self.records_socket,
            "GUST_RECORDS_TOKEN": self.records_token,
            "HOME": env.get("HOME", APP_DIR),
        })
        env.setdefault("LANG", "C.UTF-8")
        return env

    def start(self):
        """Starts the first runtime and waits until it serves its manifest; raises RuntimeError if it cannot."""
        with self.lock:
            self.generation += 1
            generation = self.generation
        manifest = self._launch(generation)
        if manifest is None:
            raise RuntimeError("the entrypoint stopped while the app was starting")
        return manifest

    def _launch(self, generation):
        """Starts the runtime of `generation` and waits until it serves its manifest.

        Returns the manifest, or None when that generation was stopped or replaced meanwhile (whoever replaced
        it killed its process); raises RuntimeError when the runtime itself cannot start.
        """
        with self.lock:
            if self.stopping or generation != self.generation:
                return None
            self.secret = secrets.token_hex(32)
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass
            self.process = subprocess.Popen(
                [os.path.join(APP_DIR, ".gust", "start")], cwd=APP_DIR, env=self.environment(),
                stdin=subprocess.DEVNULL, start_new_session=True)
            process = self.process
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                if not self._current(generation):
                    return None
                raise RuntimeError(f"the app did not start: its runtime exited with status {process.returncode}")
            try:
                status, _, body = self.request("GET", "/_gust/manifest", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if not self._current(generation):
                return None
            if time.monotonic() > deadline:
                self.kill(process)
                raise RuntimeError(f"the app did not start within {START_TIMEOUT:g} s (GUST_START_TIMEOUT)")
            time.sleep(0.005)
        manifest = json.loads(body)
        with self.lock:
            if self.stopping or generation != self.generation:
                return None
            self.manifest = manifest
            if self.calls is None:
                node = str(manifest.get("runtime", "")).startswith("node")
                self.calls = threading.BoundedSemaphore(NODE_CONCURRENCY if node else 1)
            self.ready.set()
        threading.Thread(target=self._watch, args=(process, generation), daemon=True).start()
        return manifest

    def _current(self, generation):
        with self.lock:
            return not self.stopping and generation == self.generation

    def serving(self, deadline):
        """The generation of the runtime that serves now, waiting for one until `deadline`; None if none by then."""
        while True:
            if not self.ready.wait(timeout=max(0.0, deadline - time.monotonic())):
                return None
            with self.lock:
                if self.ready.is_set():
                    return self.generation

    def _watch(self, process, generation):
        process.wait()
        self.restart(generation, f"the runtime exited with status {process.returncode}")

    def _launch_or_exit(self, generation):
        try:
            self._launch(generation)
        except RuntimeError as error:
            log(str(error))
            os._exit(1)

    def has_exited(self, generation):
        """Whether the runtime of `generation` has ended (or been replaced already)."""
        with self.lock:
            process = self.process if generation == self.generation else None
        return process is None or process.poll() is not None

    def restart(self, generation, why):
        """Kills the runtime of `generation` and starts the next, unless that happened already."""
        with self.lock:
            if self.stopping or generation != self.generation:
                return
            self.generation += 1
            successor = self.generation
            process = self.process
            self.ready.clear()
        log(f"{why}; starting the runtime again")
        self.kill(process)
        threading.Thread(target=self._launch_or_exit, args=(successor,), daemon=True).start()

    @staticmethod
    def kill(process):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

    def stop(self):
        with self.lock:
            self.stopping = True
            process = self.process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=3)
            except (ProcessLookupError, PermissionError):
                pass
            except subprocess.TimeoutExpired:
                self.kill(process)

    def connection(self, timeout):
        return UnixHTTPConnection(self.socket_path, timeout)

    def request(self, method, target, body=None, timeout=FUNCTION_TIMEOUT):
        """One internal request with the secret: (status, headers, body)."""
        connection = self.connection(timeout)
        try:
            connection.request(method, target, body=body, headers={"X-Gust-Internal": self.secret})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


# ---------------------------------------------------------------------------
# The records relay: gust.records over HTTPS to the Gust server


def records_target():
    """(scheme, host, port, base path) of GUST_RECORDS_URL, or an error message."""
    url, token = os.environ.get("GUST_RECORDS_URL", ""), os.environ.get("GUST_RECORDS_TOKEN", "")
    if not url or not token:
        return None, f"gust.records has no record store in this container: {RECORDS_HELP}."
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https" or not parsed.hostname:
        return None, (f"GUST_RECORDS_URL must be an https:// address (the app token would cross the network in "
                      f"clear), not {url!r}: {RECORDS_HELP}.")
    return (parsed.hostname, parsed.port or 443, parsed.path.rstrip("/")), None


def relay_records(method, rest, body, token, content_type):
    """Sends `/_/records` + rest to the Gust server: (status, headers, body)."""
    target, problem = records_target()
    if target is None:
        return 503, [("Content-Type", "application/json")], _json_body({"code": 503, "error": problem})
    host, port, base = target
    headers = {"X-Auth-Token": token, "Content-Type": content_type or "application/json"}
    connection = http.client.HTTPSConnection(host, port, timeout=30, context=ssl.create_default_context())
    try:
        connection.request(method, base + "/_/records" + rest, body=body, headers=headers)
        response = connection.getresponse()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() in ("content-type", "allow")]
        return response.status, kept, response.read()
    except (OSError, http.client.HTTPException) as error:
        message = f"gust.records could not reach {os.environ['GUST_RECORDS_URL']}: {error}"
        return 502, [("Content-Type", "application/json")], _json_body({"code": 502, "error": message})
    finally:
        connection.close()


class RecordsChannel(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The runtime's GUST_RECORDS_SOCKET, as gustd's: `/v1/records/...` with the runtime's own bearer secret."""
    daemon_threads = True


def _records_handler(runtime_token):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {runtime_token}".encode()):
                return self._answer(401, [], _json_body({"code": 401, "error": "not this instance's records token"}))
            target = self.path
            if not target.startswith("/v1/records/"):
                return self._answer(404, [], _json_body({"code": 404, "error": "records live at /v1/records/TYPE[/ID]"}))
            status, headers, payload = relay_records(
                self.command, target[len("/v1/records"):], body, os.environ.get("GUST_RECORDS_TOKEN", ""),
                self.headers.get("Content-Type"))
            self._answer(status, headers, payload)

        def _answer(self, status, headers, payload):
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            if not any(name.lower() == "content-type" for name, _ in headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


# ---------------------------------------------------------------------------
# The public surface on $PORT

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
               "trailer", "transfer-encoding", "upgrade", "host", "date", "content-length"}
# What proxies say about the client and the URL it asked for, believed from a trusted proxy only:
# gustd's list (Sources/GustDaemon/Gateway/ForwardedHeaders.swift, `proxyClaims`; a test there holds
# the two the same).
PROXY_CLAIMS = frozenset({
    "x-forwarded-host", "forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server",
    "x-forwarded-ssl", "x-forwarded-scheme", "x-forwarded", "forwarded-for", "x-original-url", "x-rewrite-url",
    "x-original-host", "true-client-ip", "x-client-ip", "x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip",
})


def _folds_onto_own(lower):
    """Whether a name with `_` reads, `_` taken as `-` (as WSGI's environ and CGI take it), as one the
    entrypoint sets or believes only from a trusted proxy."""
    folded = lower.replace("_", "-")
    return folded.startswith("x-gust-") or folded in ("x-forwarded-for", "x-forwarded-proto", "x-request-id") \
        or folded in PROXY_CLAIMS


_REQUEST_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@+=/")
_request_counter = iter(range(1, 1 << 62))
_request_prefix = secrets.token_hex(8) + "-"
TRUSTED_PROXIES = {a.strip() for a in os.environ.get("GUST_TRUSTED_PROXIES", "").split(",") if a.strip()}


def _json_body(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class BodyTooLarge(Exception):
    pass


class BadFraming(Exception):
    """A length or chunk size that is not digits: `int` reads `-1` and `+5`, and a read of -1 bytes
    is everything until the client closes, past GUST_MAX_BODY."""


_DIGITS = frozenset(b"0123456789")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _framing_number(text, base):
    digits = text.encode("latin-1", "replace") if isinstance(text, str) else text
    if not digits or len(digits) > 15 or not set(digits) <= (_DIGITS if base == 10 else _HEX_DIGITS):
        raise BadFraming()
    return int(digits, base)


class PublicServer(http.server.ThreadingHTTPServer):
    """$PORT on every address: IPv6 and IPv4 on one socket, or IPv4 alone where the kernel has no IPv6."""
    daemon_threads = True
    address_family = socket.AF_INET6

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class PublicServer4(PublicServer):
    address_family = socket.AF_INET


def public_server(port, handler):
    try:
        return PublicServer(("::", port), handler)
    except OSError:
        return PublicServer4(("0.0.0.0", port), handler)


def public_handler(runtime):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "gust"
        sys_version = ""
        # Every read from the client waits this long at most; a request's body has the same bound per read.
        timeout = IDLE_TIMEOUT if IDLE_TIMEOUT > 0 else None

        def log_message(self, *_):
            pass

        def _serve(self):
            sent_id = self.headers.get("X-Request-Id")
            if sent_id and len(sent_id) <= 128 and set(sent_id) <= _REQUEST_ID_CHARACTERS:
                self.request_id = sent_id
            else:
                self.request_id = _request_prefix + format(next(_request_counter), "x")
            try:
                self._route()
            except BodyTooLarge:
                self.close_connection = True
                self._error(413, f"The request body is larger than {MAX_BODY} bytes, the most this app accepts (GUST_MAX_BODY).")
            except BadFraming:
                self.close_connection = True
                self._error(400, "The request's Content-Length or chunk size is not a number in digits.")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _route(self):
            target = self.path
            if not target.startswith("/"):
                self.close_connection = True
                return self._error(400, "The request target must be a path.")
            raw_path, _, query = target.partition("?")
            path = RequestPath(raw_path)
            if path.reaches_reserved_surface:
                return self._error(404, f"No endpoint {path.decoded}.")
            segments = path.segments
            if segments[:2] == ["_", "records"]:
                body = self._body()
                status, headers, payload = relay_records(
                    self.command, path.encoded(drop=2) + (f"?{query}" if query else ""), body,
                    self.headers.get("X-Auth-Token", ""), self.headers.get("Content-Type"))
                return self._answer(status, headers, payload)
            if path.decoded == "/_/health":
                return self._health()
            if segments[:2] == ["_", "functions"]:
                if self.command != "POST":
                    return self._error(405, "Call an op with POST.", [("Allow", "POST")])
                return self._call("/_gust/ops" + path.encoded(drop=2), streams=False)
            if segments[:1] == ["_"]:
                return self._error(404, f"No endpoint {path.decoded}.")
            return self._call(path.encoded() + (f"?{query}" if "?" in target else ""), streams=True)

        def _body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = bytearray()
                while True:
                    size = _framing_number(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(body)
                    if len(body) + size > MAX_BODY:
                        raise BodyTooLarge()
                    body += self.rfile.read(size)
                    self.rfile.readline(1024)
            sent = self.headers.get("Content-Length")
            length = _framing_number(sent.strip(), 10) if sent is not None else 0
            if length > MAX_BODY:
                raise BodyTooLarge()
            return self.rfile.read(length) if length else b""

        def _forwarded_headers(self):
            peer = self.client_address[0]
            if peer.startswith("::ffff:"):
                peer = peer[len("::ffff:"):]
            trusted = peer in TRUSTED_PROXIES
            headers, sent_for, sent_proto = [], [], None
            for name, value in self.headers.items():
                lower = name.lower()
                if lower in _HOP_BY_HOP or lower.startswith("x-gust-") or lower == "x-request-id":
                    continue
                if "_" in lower and _folds_onto_own(lower):
                    continue
                if lower == "x-forwarded-for":
                    if trusted:
                        sent_for.append(value)
                elif lower == "x-forwarded-proto":
                    if trusted:
                        sent_proto = value.lower()
                elif lower in PROXY_CLAIMS:
                    if trusted:
                        headers.append((name, value))
                else:
                    headers.append((name, value))
            sent_for.append(peer)
            headers.append(("X-Forwarded-For", ", ".join(sent_for)))
            headers.append(("X-Forwarded-Proto", sent_proto if sent_proto in ("http", "https") else "http"))
            headers.append(("X-Request-Id", self.request_id))
            return headers

        def _call(self, target, streams):
            body = self._body()
            deadline = time.monotonic() + FUNCTION_TIMEOUT
            while True:
                generation = runtime.serving(deadline)
                if generation is None or runtime.calls is None:
                    return self._error(503, "The app is starting; try again.")
                if not runtime.calls.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return self._error(504, f"The function did not answer within {FUNCTION_TIMEOUT:g}s.")
                connection = runtime.connection(timeout=max(0.001, deadline - time.monotonic()))
                try:
                    connection.connect()
                    break
                except (socket.timeout, TimeoutError):
                    connection.close()
                    runtime.calls.release()
                    runtime.restart(generation, f"the runtime took no call within {FUNCTION_TIMEOUT:g}s")
                    return self._error(504, f"The function did not answer within {FUNCTION_TIMEOUT:g}s.")
                except OSError:
                    # Its socket is gone or refuses: the runtime died, and nothing was sent, so the call waits
                    # for the next runtime rather than failing.
                    connection.close()
                    runtime.calls.release()
                    runtime.restart(generation, "the runtime stopped taking calls")
            try:
                headers = self._forwarded_headers()
                if target.startswith("/_gust/"):
                    headers.append(("X-Gust-Internal", runtime.secret))
                if body or self.command in ("POST", "PUT", "PATCH"):
                    headers.append(("Content-Length", str(len(body))))
                connection.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                connection.putheader("Host", "instance")
                for name, value in headers:
                    connection.putheader(name, value)
                try:
                    connection.endheaders(body if body else None)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused before the body was whole (a 400, a 431): the answer is read below
                response = connection.getresponse()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                if streams and response.chunked:
                    return self._relay_chunks(response, kept, deadline)
                payload = response.read()
            except (socket.timeout, TimeoutError):
                runtime.restart(generation, f"a call to {target.split('?')[0]} ran past {FUNCTION_TIMEOUT:g}s")
                return self._error(504, f"The function did not answer within {FUNCTION_TIMEOUT:g}s.")
            except (OSError, http.client.HTTPException):
                # Started again only when it died: a runtime that closed one call's connection (a
                # request it refused, and then no answer read) serves the next as before.
                if runtime.has_exited(generation):
                    runtime.restart(generation, "the runtime closed a call's connection")
                    return self._error(502, "The function's process died while answering; the next request starts a new one.")
                return self._error(502, "The function's process closed the call's connection without an answer.")
            finally:
                connection.close()
                runtime.calls.release()
            return self._answer(response.status, kept, payload)

        def _relay_chunks(self, response, headers, deadline):
            # A client that takes the answer slower than it comes holds the runtime's call (one at a time
            # for Python): as gustd does, the answer is given up at the call's time limit, the runtime kept.
            self.close_connection = True
            self.connection.settimeout(max(0.001, deadline - time.monotonic()))
            self.send_response_only(response.status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("X-Request-Id", self.request_id)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            while True:
                piece = response.read1(65536)  # a timeout here is the function's: the caller restarts the runtime
                if not piece:
                    break
                try:
                    self.connection.settimeout(max(0.001, deadline - time.monotonic()))
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                except OSError:
                    return  # the client left, or took too long: its business, never the runtime's
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass

        def _health(self):
            if not runtime.ready.is_set():
                return self._answer(503, [], _json_body({"app": APP, "release": RELEASE, "state": "starting", "code": 503,
                                                         "error": "the app is starting"}))
            try:
                status, _, _ = runtime.request("GET", "/_gust/health", timeout=5)
            except (OSError, http.client.HTTPException) as error:
                status = str(error)
            if status != 200:
                return self._answer(503, [], _json_body({"app": APP, "release": RELEASE, "state": "crashing", "code": 503,
                                                         "error": f"the runtime does not answer its health check ({status})"}))
            return self._answer(200, [], _json_body({"app": APP, "release": RELEASE, "state": "running", "instances": 1}))

        def _error(self, status, message, headers=()):
            self._answer(status, list(headers), _json_body({"code": status, "error": message}))

        def _answer(self, status, headers, payload):
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            if not any(name.lower() == "content-type" for name, _ in headers) and payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("X-Request-Id", self.request_id)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    return Handler


# ---------------------------------------------------------------------------
# The two commands


@contextlib.contextmanager
def everything_started():
    """The records channel and the runtime, in a private directory: (runtime, channel). The directory
    (the sockets') goes at the end: a restarted container keeps its /tmp, and each start would leave one."""
    workdir = tempfile.mkdtemp(prefix="gust-")
    try:
        runtime_token = secrets.token_hex(32)
        channel = RecordsChannel(os.path.join(workdir, "records.sock"), _records_handler(runtime_token))
        threading.Thread(target=channel.serve_forever, daemon=True).start()
        yield Runtime(workdir, channel.server_address, runtime_token), channel
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def serve():
    port = int(os.environ.get("PORT", "8080"))
    with everything_started() as (runtime, channel):
        return serve_with(port, runtime, channel)


def serve_with(port, runtime, channel):
    try:
        manifest = runtime.start()
    except RuntimeError as error:
        log(str(error))
        return 1
    server = public_server(port, public_handler(runtime))
    finished = threading.Event()

    def shut_down(*_):
        if not finished.is_set():
            finished.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    log(f"{APP} {RELEASE} ({manifest.get('runtime', 'unknown runtime')}) serves on port {port}")
    server.serve_forever()
    server.server_close()
    runtime.stop()
    channel.server_close()
    return 0


def run_schedule(name):
    with everything_started() as (runtime, channel):
        return run_schedule_with(name, runtime, channel)


def run_schedule_with(name, runtime, channel):
    try:
        manifest = runtime.start()
    except RuntimeError as error:
        log(str(error))
        return 1
    try:
        names = [s.get("name") for s in manifest.get("schedules", [])]
        if name not in names:
            log(f"{APP} {RELEASE} has no schedule {name!r}; it has: {', '.join(names) or 'none'}")
            return 1
        started = time.monotonic()
        try:
            status, _, body = runtime.request("POST", "/_gust/schedules/" + urllib.parse.quote(name, safe=""), body=b"",
                                              timeout=FUNCTION_TIMEOUT)
        except (socket.timeout, TimeoutError):
            log(f"schedule {name} did not finish within {FUNCTION_TIMEOUT:g}s (GUST_FUNCTION_TIMEOUT)")
            return 1
        except (OSError, http.client.HTTPException) as error:
            log(f"schedule {name} failed: the runtime closed the connection ({error})")
            return 1
        took = time.monotonic() - started
        if status != 200:
            log(f"schedule {name} failed ({status}): {body.decode(errors='replace')}")
            return 1
        log(f"schedule {name} ran in {took:.3f}s")
        return 0
    finally:
        runtime.stop()
        channel.server_close()


def main(argv):
    command = argv[0] if argv else "serve"
    if command == "serve" and len(argv) <= 1:
        return serve()
    if command == "schedule" and len(argv) == 2:
        return run_schedule(argv[1])
    print("usage: entrypoint.py serve | schedule NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
