"""JSON as the runtime reads and writes it, through the json package's own C parts.

`import json` imports `re` (and with it `enum`) for a pure-Python parser that CPython does
not use when its C accelerator `_json` is there: about 5 ms of every cold start on the
machine it was measured on, against 0.1 ms for `_json` (docs/benchmarks.md, "The runtime's
own imports out of a cold start"). This module calls `_json`'s scanner and encoder with
what json.loads and json.dumps would pass them, so values and errors come out the same
(tests/test_codec.py holds it to the json package). Whatever the fast path does not take
is read or written by the json package itself: a body not in UTF-8, a malformed one (whose
error `_json` can raise only once json.decoder is imported), an interpreter without `_json`.
"""

try:
    import _json
except ImportError:  # an interpreter without CPython's accelerator: the json package, as before
    _json = None

_WHITESPACE = " \t\n\r"  # what JSON allows around a value (json.decoder.WHITESPACE)
_INFINITIES = (float("inf"), float("-inf"))  # compared with, rather than math.isfinite: math is one more library to load


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if value in _INFINITIES or value != value:  # a numeral too large for a float (JSON has no NaN numeral)
        raise ValueError(f"{text} is too large for a JSON number")
    return value


class _Reading:
    """The settings _json's scanner reads off a json.JSONDecoder: strict strings, exact integers,
    no NaN or Infinity, dicts as they come."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_int = int
    parse_float = staticmethod(_finite_float)
    parse_constant = staticmethod(_refuse_constant)


_scan = _json.make_scanner(_Reading()) if _json is not None else None


def _unencodable(value):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _json_package_loads(body):
    import json

    return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(body):
    """JSON as gustd and the Node runtime read it: exact integers, no NaN or Infinity (ValueError)."""
    if _scan is not None:
        try:
            if isinstance(body, str):
                text = body
            # What json.loads would read as UTF-8: a first byte that is ASCII (so no byte-order mark)
            # and no NUL in the first two (UTF-16 and UTF-32 have one there).
            elif isinstance(body, (bytes, bytearray)) and body and 0 < body[0] < 0x80 and (len(body) == 1 or body[1]):
                text = body.decode("utf-8", "surrogatepass")
            else:
                text = None
            if text is not None:
                value, end = _scan(text, len(text) - len(text.lstrip(_WHITESPACE)))
                if end == len(text) or not text[end:].lstrip(_WHITESPACE):
                    return value
        except Exception:  # noqa: BLE001 - read again below, by the json package, which names the error
            pass
    try:
        return _json_package_loads(body)
    except RecursionError:
        # A body that nests past the interpreter's recursion limit (`[` a hundred thousand times) is
        # a body the app cannot take, a 400 like any other, not an error of the runtime's.
        raise ValueError("the JSON nests deeper than Python reads") from None


def dumps(value):
    """JSON that every parser reads: ValueError for NaN or an infinity rather than invalid JSON."""
    if _json is None:
        import json

        return json.dumps(value, allow_nan=False)
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    # A new encoder each time, as json.dumps makes one: its table of containers being written
    # (for the circular-reference check) is left with entries by a write that failed.
    encode = _json.make_encoder({}, _unencodable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, False)
    return "".join(encode(value, 0))
