"""Gust's Python runtime: register functions with decorators.

    import gust

    @gust.op('food:buy')
    def buy_food(food):
        return {'success': True, 'food': food}

The router starts ``python -m gust.server`` over a release; it imports the app,
which registers its functions here, and serves them (docs/runtime-protocol.md).
"""

# Only what the decorators need: every app imports this module, and a cold start is held to the app's
# own import (docs/benchmarks.md). What a records call, a signature check or a schedule's check needs
# is imported at its first use; a served instance has most of it already, from gust.server.
import os
import threading

__all__ = [
    "Error", "Response", "op", "handler", "every", "cron",
    "before_save", "after_save", "before_delete", "after_delete", "verify_signature", "records", "mount", "after_fork",
]


class Error(Exception):
    """An error the caller sees as ``{"code": code, "error": message}``."""

    def __init__(self, message, code=400):
        super().__init__(message)
        self.message = str(message)
        self.code = int(code)


class Response:
    """A handler's full answer: a body with a status and headers."""

    def __init__(self, body=b"", status=200, headers=None):
        self.body = body
        self.status = int(status)
        self.headers = dict(headers or {})


class _Registry:
    def __init__(self):
        self.ops = {}
        self.handlers = {}      # path -> {METHOD: function}
        self.schedules = {}     # name -> (kind, spec, params, function)
        self.hooks = {}         # (event, type) -> function

    def manifest(self):
        return {
            "ops": [{"name": name} for name in sorted(self.ops)],
            "handlers": [
                {"path": path, "methods": sorted(methods)} for path, methods in sorted(self.handlers.items())
            ],
            "schedules": [
                dict({"name": name, kind: spec}, **({"params": params} if params is not None else {}))
                for name, (kind, spec, params, _) in sorted(self.schedules.items())
            ],
            "hooks": [
                {"event": event, "type": type_, "name": function.__name__}
                for (event, type_), function in sorted(self.hooks.items())
            ],
        }


registry = _Registry()


def op(name):
    """Registers a function as the op ``name``, called by ``POST /_/functions/NAME``."""
    def register(function):
        if name in registry.ops:
            raise ValueError(f"op {name!r} is registered twice")
        registry.ops[name] = function
        return function
    return register


def handler(path, methods=None):
    """Registers an HTTP handler for ``path`` (``methods`` defaults to ``['GET']``)."""
    normalized = "/" + str(path).strip("/")
    wanted = [m.upper() for m in (methods or ["GET"])]

    def register(function):
        routes = registry.handlers.setdefault(normalized, {})
        for method in wanted:
            routes[method] = function
        return function
    return register


_EVERY = r"^(?:@every\s+)?((?:\d+[smh])+)$"
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _check_every(spec):
    import re

    match = re.match(_EVERY, str(spec).strip())
    if not match or sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", match.group(1))) <= 0:
        raise ValueError(f"{spec!r} is not an interval: write a number with s, m or h, like '30s', '2m' or '@every 1h'")


def _check_cron(spec):
    text = str(spec).strip()
    if text in _CRON_MACROS:
        return
    import re

    fields = text.split()
    if len(fields) not in (5, 6) or not all(re.fullmatch(r"[\d*,/\-]+", f) for f in fields):
        raise ValueError(f"{spec!r} is not a cron expression: 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly/@daily/@weekly/@monthly")


def _schedule(kind, check, spec, function, params):
    def register(fn):
        try:
            check(spec)
        except ValueError as error:
            raise ValueError(f"schedule {fn.__name__}: {error}") from None
        registry.schedules[fn.__name__] = (kind, str(spec), params, fn)
        return fn
    return register(function) if function is not None else register


def every(spec, function=None, params=None):
    """Runs a function every interval: ``@gust.every('2m')`` or ``gust.every('2m', fn)``."""
    return _schedule("every", _check_every, spec, function, params)


def cron(spec, function=None, params=None):
    """Runs a function on a cron schedule (UTC unless the app sets a time zone)."""
    return _schedule("cron", _check_cron, spec, function, params)


def _hook(event):
    def decorator(type_, function=None):
        def register(fn):
            registry.hooks[(event, str(type_))] = fn
            return fn
        return register(function) if function is not None else register
    decorator.__name__ = event
    decorator.__doc__ = f"Registers a {event.replace('_', '-')} hook for records of a type."
    return decorator


before_save = _hook("before_save")
after_save = _hook("after_save")
before_delete = _hook("before_delete")
after_delete = _hook("after_delete")


def verify_signature(body, header, secret):
    """Checks a webhook's ``sha256=<hex>`` HMAC-SHA256 signature (GitHub's form) in constant time."""
    import hashlib
    import hmac

    if isinstance(body, str):
        body = body.encode()
    if isinstance(secret, str):
        secret = secret.encode()
    # An empty key signs what anyone sends: a secret set empty, or not set, verifies nothing.
    if not secret or not header or not str(header).startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), str(header).encode())


def mount(prefix, app, interface=None):
    """Serves a WSGI (Flask, Django) or ASGI (FastAPI, Starlette) ``app`` at ``prefix`` ('/' for the root).

    Gust's handlers win for their exact paths, and ``/_/...`` stays Gust's (gust/mounts.py).
    """
    from . import mounts
    return mounts.mount(prefix, app, interface)


class _Records:
    """The app's record store from inside functions, over gustd's records channel.

        gust.records.find('cat', name='Tom')          # list of records, equality on fields
        gust.records.get('cat', cat_id)               # a record, or None
        gust.records.save('cat', {'name': 'Tom'})     # creates; with '_id', updates (merge)
        gust.records.delete('cat', cat_id)

    Each call is one HTTP request on the Unix socket $GUST_RECORDS_SOCKET,
    authenticated with $GUST_RECORDS_TOKEN (docs/runtime-protocol.md). Inside a
    record hook, the hook's context travels with it, so the hook's own writes
    do not trigger it again. A failure (a before-hook rejecting the write, say)
    raises ``gust.Error`` with the store's code and message.
    """

    def find(self, type_, _order=None, _limit=None, **where):
        import json

        query = {"where": json.dumps(where)}
        if _order:
            query["order"] = _order
        if _limit:
            query["limit"] = str(int(_limit))
        return self._request("GET", type_, query=query)["records"]

    def get(self, type_, id_):
        # No record has no id: without one the channel's path would be the type's first page.
        if id_ is None or str(id_) == "":
            return None
        try:
            return self._request("GET", type_, id_)
        except Error as error:
            if error.code == 404:
                return None
            raise

    def save(self, type_, record):
        record = dict(record)
        id_ = record.get("_id")
        return self._request("PUT" if id_ else "POST", type_, id_, body=record)

    def delete(self, type_, record_or_id):
        id_ = record_or_id.get("_id") if isinstance(record_or_id, dict) else record_or_id
        self._request("DELETE", type_, id_)

    # Where requests go instead of gustd's channel: gust.testing's in-memory store.
    _store = None

    def _request(self, method, type_, id_=None, query=None, body=None):
        if self._store is not None:
            return self._store.request(method, type_, id_, query, body)
        import json
        import urllib.parse

        socket_path = os.environ.get("GUST_RECORDS_SOCKET")
        token = os.environ.get("GUST_RECORDS_TOKEN")
        if not socket_path or not token:
            raise RuntimeError("gust.records works inside a Gust instance: GUST_RECORDS_SOCKET is not set")
        path = "/v1/records/" + urllib.parse.quote(str(type_), safe="")
        if id_ is not None:
            path += "/" + urllib.parse.quote(str(id_), safe="")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        context = getattr(_hook_context, "value", None)
        if context:
            headers["X-Gust-Hook-Context"] = context
        status, payload = _exchange(socket_path, method, path, headers, json.dumps(body).encode() if body is not None else None)
        value = json.loads(payload or b"null")
        if status >= 400:
            error = value if isinstance(value, dict) else {}
            raise Error(error.get("error", f"records {method} failed with status {status}"), code=error.get("code", status))
        return value


def _exchange(socket_path, method, path, headers, body):
    """One HTTP/1.1 request on gustd's records channel (a Unix socket), on a connection of its own:
    the answer's status and body, read with the runtime's own HTTP reader (gust.server, loaded in
    every instance). Not http.client, whose import (the email package and ssl with it) would cost
    every instance's start 15 ms for a channel that speaks one dialect: gustd's answers carry a
    Content-Length, or are chunked, or end with the connection."""
    import socket

    from gust import server

    lines = [f"{method} {path} HTTP/1.1", "Host: gustd", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(socket_path)
        connection.sendall(request)
        with connection.makefile("rb") as answer:
            try:
                head = server._read_head(answer)  # noqa: SLF001 - the runtime's reader, bounded
                parts = head[0].split(None, 2) if head else []
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                    shown = head[0][:80] if head else "it ended before its head"
                    raise Error(f"records {method}: gustd's answer is not HTTP ({shown!r})", code=502)
                status = int(parts[1])
                if status in (204, 304):  # no body, whatever the head says
                    return status, b""
                lowered = {}
                for field in head[1]:
                    name, _, value = field.decode("latin-1").partition(":")
                    lowered[name.strip().lower()] = value.strip()
                if "transfer-encoding" in lowered or "content-length" in lowered:
                    return status, server._read_body(answer, lowered)  # noqa: SLF001
                return status, answer.read()
            except (server._BadRequest, ValueError, ConnectionError) as error:  # noqa: SLF001
                raise Error(f"records {method}: gustd's answer is malformed ({error})", code=502) from None


def _failure_text():
    """The exception being handled, with its traceback: traceback (and the tokenize, linecache and
    textwrap it imports) is imported on the first failure, not by every start of an instance."""
    import traceback

    return traceback.format_exc()


# What runs in each instance before it serves (gust.after_fork), in the order registered.
_after_fork = []


def after_fork(function):
    """Registers ``function()`` to run once in each instance before it serves.

    Gust forks a Python app's instances from a zygote that imported the app
    once (docs/functions.md). What cannot be shared between processes (a
    database connection, a thread, a client with a pool of sockets) belongs
    here, not at import: it then runs in every instance, right after the fork
    (the instance's own ``GUST_INSTANCE``, records token and output already in
    place), or right after the import in an instance started without a zygote.
    An exception stops the instance, with its traceback in the app's log.
    """
    _after_fork.append(function)
    return function


# The hook context of the request this thread serves (set by the server for hook requests).
_hook_context = threading.local()

records = _Records()
