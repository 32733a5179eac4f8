"""Calls an app's functions in-process as gustd would, for the app's own tests.

    import unittest
    from gust.testing import Client

    class CatTests(unittest.TestCase):
        def setUp(self):
            self.client = Client('.')           # the app's directory, loaded as gustd loads it
            self.addCleanup(self.client.close)

        def test_buy(self):
            self.assertEqual(self.client.op('food:buy', food='tuna')['food'], 'tuna')

        def test_page(self):
            answer = self.client.get('/hello', query={'name': 'Tom'})
            self.assertEqual((answer.status, answer.text), (200, 'Hello, Tom'))

Every call goes through the runtime's own request handling (the same code that
serves gustd), so arguments, answers and errors are what a deployed app gives.
While a client is open, ``gust.records`` works against an in-memory store
(``client.records``) that runs the app's record hooks as gustd does.
"""

import copy
import datetime
import http.client
import io
import re
import secrets
import sys
import urllib.parse

import gust
from gust import mounts, server

__all__ = ["Client", "Answer", "MemoryRecords"]


class Answer:
    """An HTTP answer: ``status``, ``headers`` (names lower-case), ``body`` (bytes), ``text``, ``json()``."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return server.loads(self.body or b"null")

    def __repr__(self):
        return f"<Answer {self.status} {self.body[:80]!r}>"


class _MemorySocket:
    """The face of a connection the runtime's request loop writes to, kept in memory."""

    def __init__(self):
        self.sent = io.BytesIO()

    def sendall(self, data):
        self.sent.write(data)

    def makefile(self, mode, buffering=None):  # noqa: ARG002 - the socket's signature
        return self.sent


def _serve_in_memory(raw):
    """Serves one request of raw bytes with the runtime's own request loop; the bytes it answered."""
    sock = _MemorySocket()
    server._serve_one(sock, io.BufferedReader(io.BytesIO(raw)))  # noqa: SLF001 - the loop itself, without a socket
    return sock.sent.getvalue()


class _Bytes:
    def __init__(self, data):
        self._data = data

    def makefile(self, mode):
        return io.BytesIO(self._data)


class Client:
    """Calls the functions the app registered (ops, handlers and mounts, schedules, hooks).

    ``root``: the app's directory, loaded the way gustd loads it (its
    ``__init__.py`` or ``main.py``), after forgetting what was registered before.
    Without it, the client serves what is already registered (the test imported the app).
    """

    def __init__(self, root=None):
        if root is not None:
            gust.registry.__init__()
            mounts._mounts.clear()
            server.load_app(str(root))
        if server._internal_token is None:
            server._internal_token = secrets.token_hex(16)
        self.records = MemoryRecords(self)
        self._previous_store = gust.records._store
        gust.records._store = self.records
        self._closed = False
        try:
            mounts.start()
        except BaseException:
            self.close()
            raise

    def close(self):
        """Runs ASGI mounts' shutdown and gives ``gust.records`` back."""
        if not self._closed:
            self._closed = True
            mounts.stop()
            gust.records._store = self._previous_store

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- as gustd calls the runtime --------------------------------------------------------

    def request(self, method, path, query=None, headers=None, body=b"", json=None):
        """Sends one HTTP request to the app (a handler or a mount): an ``Answer``."""
        if json is not None:
            body = server.dumps(json).encode()
            headers = dict({"Content-Type": "application/json"}, **(headers or {}))
        if isinstance(body, str):
            body = body.encode()
        target = urllib.parse.quote(path, safe="/%")
        if query:
            target += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
        return self._send(method.upper(), target, headers or {}, body or b"", internal=False)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def op(self, name, /, **arguments):
        """Calls an op with JSON arguments; its result, or ``gust.Error`` with the code and message a caller gets."""
        return self._internal_call(f"/_gust/ops/{urllib.parse.quote(name, safe=':')}", arguments)

    def schedule(self, name, /, **params):
        """Runs a scheduled function now (with its registered params unless others are given)."""
        self._internal_call(f"/_gust/schedules/{urllib.parse.quote(name, safe='')}", params)

    def hook(self, event, type_, record, original=None, context=None):
        """Calls a record hook; the record it returns (or the one sent), or ``gust.Error`` if it rejects."""
        answer = self._internal_call(
            f"/_gust/hooks/{event}/{type_}", {"record": record, "original": original},
            headers={"X-Gust-Hook-Context": context} if context else {},
        )
        return answer["record"]

    def manifest(self):
        return self._internal_call("/_gust/manifest", None, method="GET")

    def _internal_call(self, target, payload, headers=None, method="POST"):
        body = server.dumps(payload).encode() if payload is not None else b""
        answer = self._send(method, target, dict(headers or {}), body, internal=True)
        value = answer.json()
        if answer.status >= 400:
            raise gust.Error(value.get("error", f"status {answer.status}"), code=value.get("code", answer.status))
        return value

    def _send(self, method, target, headers, body, internal):
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-gust-") or k.lower() == "x-gust-hook-context"}
        if internal:
            headers[server.INTERNAL_HEADER] = server._internal_token
        headers.setdefault("Host", "instance")
        headers["Content-Length"] = str(len(body))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        # The thread-local hook context belongs to the call that made this one (a hook inside an op).
        outer = getattr(gust._hook_context, "value", None)
        try:
            answered = _serve_in_memory(head.encode("latin-1") + body)
        finally:
            gust._hook_context.value = outer
        response = http.client.HTTPResponse(_Bytes(answered), method=method)
        response.begin()
        payload = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)


_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class MemoryRecords:
    """An in-memory record store that answers ``gust.records`` as gustd's does, hooks included.

    ``records.all('cat')`` lists what is stored; ``records.save``/``get``/``find``/``delete``
    are the same calls ``gust.records`` offers, for setting up and checking tests.
    """

    def __init__(self, client):
        self._client = client
        self._types = {}
        self._after = set()   # (type, id) of after-hooks in progress: their writes to that record skip hooks

    def all(self, type_):
        return [copy.deepcopy(r) for r in self._types.get(type_, {}).values()]

    def find(self, type_, **where):
        return gust.records.__class__.find(_Through(self), type_, **where)

    def get(self, type_, id_):
        return gust.records.__class__.get(_Through(self), type_, id_)

    def save(self, type_, record):
        return gust.records.__class__.save(_Through(self), type_, record)

    def delete(self, type_, record_or_id):
        return gust.records.__class__.delete(_Through(self), type_, record_or_id)

    # The records channel's requests (gust/__init__.py's _Records._request).
    def request(self, method, type_, id_=None, query=None, body=None):
        if not _TYPE.match(str(type_)):
            raise gust.Error(f"bad record type {type_!r}: a letter, then letters, digits and _", code=400)
        context = getattr(gust._hook_context, "value", None)
        if body is not None:
            body = server.loads(server.dumps(body))
        if method == "GET" and id_ is None:
            return {"records": self._find(type_, query or {})}
        if method == "GET":
            return copy.deepcopy(self._stored(type_, id_))
        if method in ("POST", "PUT"):
            return self._save(type_, id_, body or {}, context)
        if method == "DELETE":
            self._delete(type_, id_, context)
            return {"deleted": id_}
        raise gust.Error(f"{method} is not a records method", code=405)

    def _stored(self, type_, id_):
        record = self._types.get(type_, {}).get(id_)
        if record is None:
            raise gust.Error(f"no {type_} with id {id_}", code=404)
        return record

    def _find(self, type_, query):
        where = server.loads(query.get("where") or "{}")
        found = [r for r in self._types.get(type_, {}).values() if all(r.get(k) == v for k, v in where.items())]
        order = query.get("order")
        if order:
            field = order.lstrip("-")
            present = sorted((r for r in found if r.get(field) is not None), key=lambda r: r[field], reverse=order.startswith("-"))
            found = present + [r for r in found if r.get(field) is None]
        return copy.deepcopy(found[: int(query.get("limit") or 100)])

    def _hooks_apply(self, event, type_, context, id_):
        if (event, type_) not in gust.registry.hooks:
            return False
        if context and context.startswith("before:"):
            return False   # a before-hook's writes join its write, hook-free
        return not (context and id_ is not None and (type_, id_) in self._after)

    def _save(self, type_, id_, fields, context):
        original = copy.deepcopy(self._stored(type_, id_)) if id_ is not None else None
        record = dict(original or {})
        record.update({k: v for k, v in fields.items() if not k.startswith("_")})
        if id_ is not None:
            record["_id"] = id_
        if self._hooks_apply("before_save", type_, context, id_):
            record = self._client.hook("before_save", type_, record, original, context=f"before:{type_}")
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        stored = {k: v for k, v in record.items() if not k.startswith("_")}
        stored["_id"] = id_ or secrets.token_hex(8)
        stored["_created_at"] = original["_created_at"] if original else now
        stored["_updated_at"] = now
        self._types.setdefault(type_, {})[stored["_id"]] = stored
        if self._hooks_apply("after_save", type_, context, stored["_id"]):
            self._run_after("after_save", type_, stored, original)
        return copy.deepcopy(stored)

    def _delete(self, type_, id_, context):
        original = copy.deepcopy(self._stored(type_, id_))
        if self._hooks_apply("before_delete", type_, context, id_):
            self._client.hook("before_delete", type_, original, original, context=f"before:{type_}")
        del self._types[type_][id_]
        if self._hooks_apply("after_delete", type_, context, id_):
            self._run_after("after_delete", type_, original, original)

    def _run_after(self, event, type_, record, original):
        key = (type_, record["_id"])
        self._after.add(key)
        try:
            self._client.hook(event, type_, copy.deepcopy(record), original, context=f"after:{type_}")
        except gust.Error as error:
            sys.stderr.write(f"{event} {type_} failed; the write stands: {error.message}\n")
        finally:
            self._after.discard(key)


class _Through:
    """gust.records' own methods, sent to a store (so the test's calls read like the app's)."""

    def __init__(self, store):
        self._request = store.request

