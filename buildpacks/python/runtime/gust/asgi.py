"""ASGI mounts (FastAPI, Starlette): one event loop on a thread of its own, requests and the lifespan protocol.

gust/mounts.py routes a request here and writes the answer; each request runs as
a coroutine on the loop while the connection's thread waits for it, so a Python
instance still serves one request at a time.
"""

import asyncio
import socket as _socket
import signal
import sys
import threading
import traceback
import urllib.parse


def _header(headers, name, default=None):
    return next((v for k, v in headers if k.lower() == name), default)


_loop = None
_loop_lock = threading.Lock()


def _event_loop():
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="gust-asgi", daemon=True).start()
        return _loop


def _run(coroutine, timeout=None):
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop()).result(timeout)


def serve(mounted, method, path, query, headers, body, answer):
    """Serves one HTTP request with an ASGI mount, on the event loop; returns when it is answered."""
    _run(_request(mounted, method, path, query, headers, body, answer))


async def _request(mounted, method, path, query, headers, body, answer):
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    scheme = _header(headers, "x-forwarded-proto", "http")
    host = _header(headers, "x-forwarded-host") or _header(headers, "host", "localhost")
    server_name, _, port = host.partition(":")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": urllib.parse.quote(path).encode(),
        "root_path": "" if mounted.prefix == "/" else mounted.prefix,
        "query_string": query.encode("latin-1"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": None,
        "server": (server_name, int(port) if port.isdigit() else (443 if scheme == "https" else 80)),
        "state": dict(mounted.state),
    }

    async def receive():
        if body.remaining > 0:
            chunk = await loop.run_in_executor(None, body.read, 65536)
            return {"type": "http.request", "body": chunk, "more_body": body.remaining > 0}
        if not getattr(receive, "ended", False):
            receive.ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        kind = message["type"]
        if kind == "http.response.start":
            answer.status = message["status"]
            answer.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif kind == "http.response.body":
            chunk, more = message.get("body", b""), message.get("more_body", False)
            if not answer.started:
                await loop.run_in_executor(None, answer.start, answer.status, answer.headers, None if more else chunk)
            await loop.run_in_executor(None, answer.write, chunk)
            if not more:
                await loop.run_in_executor(None, answer.finish)
                done.set()

    try:
        await mounted.app(scope, receive, send)
    finally:
        done.set()
    if not answer.started:
        raise RuntimeError(f"the ASGI application at {mounted.prefix} returned without answering")


def serve_websocket(mounted, path, query, headers, exchange):
    """Serves one WebSocket handshake with an ASGI mount's ``websocket`` scope; returns when the socket is over.

    ``exchange`` is the runtime's request (its rfile, wfile and sock); the connection
    is closed afterwards."""
    _run(_websocket(mounted, path, query, headers, exchange))
    exchange.close_connection = True


async def _websocket(mounted, path, query, headers, exchange):
    from gust.websocket import WebSocket, accept_key

    loop = asyncio.get_running_loop()
    forwarded = _header(headers, "x-forwarded-proto", "http")
    host = _header(headers, "x-forwarded-host") or _header(headers, "host", "localhost")
    server_name, _, port = host.partition(":")
    offered = _header(headers, "sec-websocket-protocol") or ""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "wss" if forwarded == "https" else "ws",
        "path": path,
        "raw_path": urllib.parse.quote(path).encode(),
        "root_path": "" if mounted.prefix == "/" else mounted.prefix,
        "query_string": query.encode("latin-1"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": None,
        "server": (server_name, int(port) if port.isdigit() else (443 if forwarded == "https" else 80)),
        "subprotocols": [p.strip() for p in offered.split(",") if p.strip()],
        "state": dict(mounted.state),
    }
    socket = WebSocket(exchange.rfile, exchange.wfile)
    state = {"phase": "connecting", "connect_sent": False, "code": 1006, "reading": None}

    def write_head(lines):
        exchange.wfile.write(("".join(line + "\r\n" for line in lines) + "\r\n").encode("latin-1"))
        exchange.wfile.flush()

    async def receive():
        if not state["connect_sent"]:
            state["connect_sent"] = True
            return {"type": "websocket.connect"}
        if state["phase"] in ("connecting", "denied", "closed"):
            return {"type": "websocket.disconnect", "code": state["code"]}
        state["reading"] = loop.run_in_executor(None, socket.receive)
        message = await state["reading"]
        state["reading"] = None
        if message[0] == "text":
            return {"type": "websocket.receive", "text": message[1]}
        if message[0] == "bytes":
            return {"type": "websocket.receive", "bytes": message[1]}
        state["phase"], state["code"] = "closed", message[1]
        return {"type": "websocket.disconnect", "code": message[1], "reason": message[2]}

    async def send(message):
        kind = message["type"]
        phase = state["phase"]
        if kind == "websocket.accept":
            if phase != "connecting":
                raise RuntimeError(f"websocket.accept on a socket that is {phase}")
            from gust.server import _is_header_name, _is_header_value

            lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                     "Sec-WebSocket-Accept: " + accept_key(_header(headers, "sec-websocket-key", ""))]
            if message.get("subprotocol"):
                if not _is_header_value(message["subprotocol"]):
                    raise ValueError(f"websocket.accept with the subprotocol {message['subprotocol']!r}, which a header cannot carry")
                lines.append("Sec-WebSocket-Protocol: " + message["subprotocol"])
            for name, value in message.get("headers", []):
                name, value = name.decode("latin-1"), value.decode("latin-1")
                if not (_is_header_name(name) and _is_header_value(value)):  # as an answer's (mounts._Answer.start)
                    raise ValueError(f"websocket.accept with the header {name!r}: {value!r}, which a header cannot carry")
                lines.append(f"{name}: {value}")
            await loop.run_in_executor(None, write_head, lines)
            state["phase"] = "open"
        elif kind == "websocket.send":
            if phase != "open":
                raise RuntimeError(f"websocket.send on a socket that is {phase}")
            if message.get("bytes") is not None:
                await loop.run_in_executor(None, socket.send_bytes, message["bytes"])
            else:
                await loop.run_in_executor(None, socket.send_text, message.get("text") or "")
        elif kind == "websocket.close":
            if phase == "connecting":
                await loop.run_in_executor(None, _deny, write_head)
                state["phase"], state["code"] = "denied", message.get("code", 1000)
            elif phase == "open":
                await loop.run_in_executor(None, socket.close, message.get("code", 1000), message.get("reason") or "")
                state["phase"] = "closing"
        else:
            raise RuntimeError(f"gust: unsupported ASGI message {kind!r} in a websocket scope")

    failed = None
    try:
        await mounted.app(scope, receive, send)
    except Exception as error:  # noqa: BLE001 - the application's failure closes its socket with 1011
        failed = error
        sys.stderr.write(f"gust: mount {mounted.prefix} raised on a WebSocket:\n{traceback.format_exc()}")
        sys.stderr.flush()
    if state["phase"] == "connecting":
        await loop.run_in_executor(None, _deny, write_head)      # returned without accepting: refused
    elif state["phase"] in ("open", "closing"):
        # The close handshake: ours (if the application did not close), then the peer's answer, briefly.
        await loop.run_in_executor(None, socket.close, 1011 if failed else 1000, "")
        reading = state["reading"] or loop.run_in_executor(None, _until_closed, socket)
        try:
            await asyncio.wait_for(asyncio.shield(reading), 2)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - the peer never answered: cut
            pass
    try:
        exchange.sock.shutdown(_socket.SHUT_RDWR)   # frees a read still waiting in a thread
    except OSError:
        pass


def _deny(write_head):
    write_head(["HTTP/1.1 403 Forbidden", "Content-Type: application/json", "Content-Length: 0", "Connection: close"])


def _until_closed(socket):
    while socket.receive()[0] != "close":
        pass


async def _lifespan(mounted, events):
    """Runs the lifespan protocol for one ASGI mount: startup, then shutdown when told."""
    queue = asyncio.Queue()
    outcome = {}
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def receive():
        return await queue.get()

    async def send(message):
        kind = message["type"]
        if kind.startswith("lifespan.startup."):
            outcome["startup"] = message
            started.set()
        elif kind.startswith("lifespan.shutdown."):
            outcome["shutdown"] = message
            stopped.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": mounted.state}

    async def run():
        try:
            await mounted.app(scope, receive, send)
        except Exception:  # noqa: BLE001 - an app without lifespan support raises on the scope: allowed
            if "startup" not in outcome:
                outcome["unsupported"] = traceback.format_exc()
        finally:
            started.set()
            stopped.set()

    task = asyncio.ensure_future(run())
    await queue.put({"type": "lifespan.startup"})
    await started.wait()
    message = outcome.get("startup")
    if message and message["type"] == "lifespan.startup.failed":
        raise RuntimeError(f"the ASGI application at {mounted.prefix} failed to start: {message.get('message', '')}")
    events.append((queue, stopped, task))


def start(mounts):
    """Runs the lifespan startup of each ASGI mount (raising if one fails) and arranges their shutdown on SIGTERM."""
    if not mounts:
        return
    for mounted in mounts:
        _run(_lifespan(mounted, _lifespans))
    global _stopping_on_sigterm
    if not _stopping_on_sigterm and threading.current_thread() is threading.main_thread():
        _stopping_on_sigterm = True
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum, frame):
            stop()
            if callable(previous):
                previous(signum, frame)
            raise SystemExit(0)
        signal.signal(signal.SIGTERM, on_term)


_lifespans = []
_stopping_on_sigterm = False


def stop(timeout=2):
    """Runs the lifespan shutdown of every ASGI mount (each waits at most ``timeout`` seconds)."""
    async def shutdown(queue, stopped):
        await queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(stopped.wait(), timeout)
        except asyncio.TimeoutError:
            sys.stderr.write("gust: an ASGI application did not finish its shutdown in time\n")
    while _lifespans:
        queue, stopped, _ = _lifespans.pop()
        _run(shutdown(queue, stopped))
