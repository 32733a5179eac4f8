"""Serves an app's functions over HTTP/1.1 on the Unix socket $GUST_SOCKET.

Runtime protocol v1 (docs/runtime-protocol.md). Each connection is served by a
thread of its own, but gustd sends one request at a time per instance; the
only exception is a record hook caused by the request in progress (through
gust.records), which arrives on a second connection while that request waits
for it. So user code still runs one thing at a time and need not be thread-safe.
"""

import http.server
import importlib.util
import inspect
import json
import os
import socketserver
import sys
import traceback
import urllib.parse

import gust

PROTOCOL = 1


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
    body = json.dumps({"code": code, "error": message}).encode()
    return _http_status(code), {"Content-Type": "application/json"}, body


def _json(value, status=200):
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


def _call(kind, name, function, /, *args, **kwargs):
    """Runs user code, turning its failures into protocol errors.

    Positional-only, so that an op's own arguments may be called kind, name or function.
    """
    try:
        return None, function(*args, **kwargs)
    except gust.Error as error:
        return _error(error.code, error.message), None
    except Exception:  # noqa: BLE001 - any failure of user code is a 500 with its traceback in the log
        sys.stderr.write(f"gust: {kind} {name} raised:\n{traceback.format_exc()}")
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
        return json.loads(self.body or b"null")


def _render(value):
    if isinstance(value, gust.Response):
        status, headers, body = value.status, dict(value.headers), value.body
        if isinstance(body, str):
            body = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
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
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def dispatch(method, target, headers, body):
    """Answers one request: (status, headers, body)."""
    parsed = urllib.parse.urlsplit(target)
    path = urllib.parse.unquote(parsed.path)
    registry = gust.registry
    if path == "/_gust/health":
        return _json({"ok": True})
    if path == "/_gust/manifest":
        runtime = "python %d.%d.%d" % sys.version_info[:3]
        return _json(dict({"protocol": PROTOCOL, "runtime": runtime}, **registry.manifest()))
    if path.startswith("/_gust/ops/") and method == "POST":
        name = path[len("/_gust/ops/"):]
        function = registry.ops.get(name)
        if function is None:
            return _error(404, f"no op named {name!r}")
        try:
            arguments = _parse_object(body)
        except ValueError:
            return _error(400, "the body must be a JSON object of the op's arguments")
        try:
            inspect.signature(function).bind(**arguments)
        except TypeError as error:
            return _error(400, f"bad arguments for op {name}: {error}")
        failure, result = _call("op", name, function, **arguments)
        if failure:
            return failure
        try:
            return _json(result)
        except TypeError:
            sys.stderr.write(f"gust: op {name} returned a value JSON cannot encode: {result!r}\n")
            return _error(500, f"internal error in op {name}")
    if path.startswith("/_gust/schedules/") and method == "POST":
        name = path[len("/_gust/schedules/"):]
        entry = registry.schedules.get(name)
        if entry is None:
            return _error(404, f"no schedule named {name!r}")
        try:
            params = _parse_object(body) or (entry[2] or {})
        except ValueError:
            return _error(400, "the body must be a JSON object of params")
        function = entry[3]
        failure, _ = _call("schedule", name, function, **params) if params else _call("schedule", name, function)
        return failure or _json({"ok": True})
    if path.startswith("/_gust/hooks/") and method == "POST":
        parts = path[len("/_gust/hooks/"):].split("/", 1)
        function = registry.hooks.get(tuple(parts)) if len(parts) == 2 else None
        if function is None:
            return _error(404, f"no hook {'/'.join(parts)}")
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
        return _json({"record": changed if isinstance(changed, dict) else record})
    if path.startswith("/_gust/"):
        return _error(404, f"no such endpoint {path}")
    routes = registry.handlers.get("/" + path.strip("/"))
    if routes is None:
        return _error(404, f"no handler for {path}")
    function = routes.get(method) or (routes.get("GET") if method == "HEAD" else None)
    if function is None:
        status, response_headers, response_body = _error(405, f"{method} is not allowed on {path}")
        response_headers["Allow"] = ", ".join(sorted(routes))
        return status, response_headers, response_body
    query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
    request = Request(method, path, query, headers, body)
    failure, value = _call("handler", path, function, request)
    return failure or _render(value)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, payload = dispatch(self.command, self.path, dict(self.headers.items()), body)
        except Exception:  # noqa: BLE001 - a bug in the runtime must answer, not drop the connection
            sys.stderr.write(f"gust: {self.command} {self.path} failed in the runtime:\n{traceback.format_exc()}")
            sys.stderr.flush()
            status, headers, payload = _error(500, "internal error in the runtime")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def address_string(self):
        return "gustd"

    def log_message(self, format, *args):  # noqa: A002 - the router logs requests; stderr is for the app
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    socket_path = os.environ.get("GUST_SOCKET")
    if not socket_path:
        raise SystemExit("gust: GUST_SOCKET is not set; the runtime is started by gustd")
    root = os.environ.get("GUST_APP_ROOT") or os.getcwd()
    try:
        load_app(root)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - an app that cannot load must say why and exit
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()
        sys.exit(1)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    with _Server(socket_path, _Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
