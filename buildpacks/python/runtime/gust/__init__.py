"""Gust's Python runtime: register functions with decorators.

    import gust

    @gust.op('food:buy')
    def buy_food(food):
        return {'success': True, 'food': food}

The router starts ``python -m gust.server`` over a release; it imports the app,
which registers its functions here, and serves them (docs/runtime-protocol.md).
"""

import hashlib
import hmac
import re

__all__ = [
    "Error", "Response", "op", "handler", "every", "cron",
    "before_save", "after_save", "before_delete", "after_delete", "verify_signature", "records",
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


_EVERY = re.compile(r"^(?:@every\s+)?((?:\d+[smh])+)$")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _check_every(spec):
    match = _EVERY.match(str(spec).strip())
    if not match or sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", match.group(1))) <= 0:
        raise ValueError(f"{spec!r} is not an interval: write a number with s, m or h, like '30s', '2m' or '@every 1h'")


def _check_cron(spec):
    text = str(spec).strip()
    if text in _CRON_MACROS:
        return
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
    if isinstance(body, str):
        body = body.encode()
    if isinstance(secret, str):
        secret = secret.encode()
    if not header or not str(header).startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), str(header).encode())


class _Records:
    """Planned: the app's record store from inside functions (find, get, save, delete).

    Not available yet: the router does not offer functions a records channel.
    """

    def __getattr__(self, name):
        raise NotImplementedError("gust.records is not available yet; use the HTTP API /_/records from clients")


records = _Records()
