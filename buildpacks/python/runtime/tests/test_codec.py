"""gust.codec against the json package: the same values and the same errors, both ways.

    python3 -m unittest discover -s buildpacks/python/runtime/tests -t buildpacks/python/runtime
"""

import collections
import importlib
import json
import math
import sys
import unittest

from gust import codec


def _as_json_reads(body):
    return json.loads(body, parse_constant=codec._refuse_constant, parse_float=codec._finite_float)


def _outcome(function, value):
    try:
        return "value", function(value)
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return "error", type(error), str(error)


BODIES = [
    b"{}", b"[]", b"null", b"true", b"false", b"0", b"-0", b"3", b"-12.5e3", b"1.5", b"1e400", b"-1e400",
    b"123456789012345678901234567890", b'"text"', b'"\\u00e9\\ud83d\\ude00"', '"é😀"'.encode(),
    b' \t\r\n{"a": [1, 2, {"b": null}], "c": "d"} \n', b'{"a": 1, "a": 2}', b'{"x": NaN}', b"Infinity",
    b"-Infinity", b"{nope", b"[1, 2] x", b"[1, 2]]", b"", b"   ", b"\xff\xfe", b"\xef\xbb\xbf{}",
    '{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le"), '{"a": 1}'.encode("utf-32"),
    b'"\xed\xa0\x80"', b'"\xc3"', b'"tab\there"', b"[1,]", b"{'a': 1}", b"[" * 100 + b"]" * 100,
    bytearray(b'{"a": true}'), "  [1, 2.5]  ", '{"s": "\\n"}', "\ufeff{}", "", "01", b"\x00",
]


class CodecTests(unittest.TestCase):
    def test_every_body_reads_as_the_json_package_reads_it(self):
        for body in BODIES:
            with self.subTest(body=body):
                self.assertEqual(_outcome(codec.loads, body), _outcome(_as_json_reads, body))

    def test_a_malformed_body_is_a_value_error_that_says_where(self):
        with self.assertRaises(ValueError) as raised:
            codec.loads(b'{"a": 1} trailing')
        self.assertIn("Extra data", str(raised.exception))

    def test_a_body_nested_past_the_recursion_limit_is_a_value_error(self):
        # The json package raises RecursionError, which no caller's `except ValueError` takes: each
        # such body was a 500 with a traceback in the app's log instead of a 400.
        for body in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
            with self.assertRaises(ValueError):
                codec.loads(body)

    def test_a_body_that_is_not_text_is_refused_as_json_refuses_it(self):
        for body in [None, 3, ["x"]]:
            with self.subTest(body=body):
                self.assertEqual(_outcome(codec.loads, body), _outcome(_as_json_reads, body))

    def test_every_value_writes_as_the_json_package_writes_it(self):
        circular_list, circular_dict = [], {}
        circular_list.append(circular_list)
        circular_dict["self"] = circular_dict

        class Text(str):
            pass

        class Number(int):
            pass

        values = [
            None, True, False, 0, -1, 2 ** 70, 0.1, -0.0, 1e16, 1.5e-7, "plain", "é😀\n\"\\", Text("sub"),
            Number(5), [1, [2, [3]]], (1, 2), {"a": 1, "b": [None]}, {1: "int", 2.5: "float", True: "bool",
                                                                      None: "none"},
            collections.OrderedDict([("z", 1), ("a", 2)]), {"nested": {"deep": [{"x": "y"}]}},
            math.nan, math.inf, [-math.inf], {1, 2}, object(), {(1, 2): "tuple key"}, b"bytes",
            circular_list, circular_dict, "\ud800",
        ]
        for value in values:
            with self.subTest(value=value):
                self.assertEqual(_outcome(codec.dumps, value), _outcome(lambda v: json.dumps(v, allow_nan=False), value))

    def test_after_a_failed_write_the_next_one_of_the_same_value_still_works(self):
        shared = [1, 2]
        with self.assertRaises(TypeError):
            codec.dumps([shared, {3}])
        self.assertEqual(codec.dumps([shared, shared]), "[[1, 2], [1, 2]]")

    def test_in_a_process_without_json_it_reads_and_writes_without_importing_it(self):
        # Where nothing imported json, _json's scanner cannot raise its error (it looks for
        # json.decoder among the imported modules): a malformed body must still be a ValueError.
        import os
        import subprocess

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        probe = (
            "import sys\n"
            "from gust import codec\n"
            "seen = [codec.loads(b'{\"a\": [1, 2.5, null]}'), codec.dumps({'b': 'é'}), 'json' in sys.modules]\n"
            "try:\n"
            "    codec.loads(b'{nope')\n"
            "except ValueError as error:\n"
            "    seen.append(type(error).__name__)\n"
            "print(repr(seen))\n"
        )
        result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, PYTHONPATH=root))
        self.assertEqual(result.stdout.strip(), repr([{"a": [1, 2.5, None]}, '{"b": "\\u00e9"}', False, "JSONDecodeError"]),
                         result.stderr)

    def test_without_the_c_accelerator_it_is_the_json_package(self):
        saved = sys.modules.get("_json")
        sys.modules["_json"] = None  # makes `import _json` fail, as on an interpreter without it
        try:
            lean = importlib.reload(codec)
            self.assertIsNone(lean._scan)
            self.assertEqual(lean.loads(b'{"a": [1.5]}'), {"a": [1.5]})
            self.assertEqual(lean.dumps({"a": [1.5]}), '{"a": [1.5]}')
            with self.assertRaises(ValueError):
                lean.loads(b"NaN")
        finally:
            if saved is None:
                del sys.modules["_json"]
            else:
                sys.modules["_json"] = saved
            importlib.reload(codec)


if __name__ == "__main__":
    unittest.main()
