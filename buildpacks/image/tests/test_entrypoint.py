"""The image's entrypoint (buildpacks/image/entrypoint.py) as a real process, outside any container.

    python3 -m unittest discover -s buildpacks/image/tests -t buildpacks/image

Each test builds a slug of the protocol fixture app (buildpacks/protocol-tests/apps) with a
`.gust/start` as the buildpacks write it, starts the entrypoint over it on a free loopback port, and
reads it as a caller would: protocol-tests/run.py --url (the shared cases, read publicly, and every
spelling of the internal surface). The container tests (Tests/EndToEndTests/OCIImageTests.swift)
run the same against `podman run` of an exported image.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = os.path.dirname(HERE)
BUILDPACKS = os.path.dirname(IMAGE)
ENTRYPOINT = os.path.join(IMAGE, "entrypoint.py")
PROTOCOL_TESTS = os.path.join(BUILDPACKS, "protocol-tests")
sys.path.insert(0, IMAGE)
sys.path.insert(0, PROTOCOL_TESTS)

import entrypoint  # noqa: E402
import run as protocol  # noqa: E402

STARTS = {
    "python": '#!/bin/sh\nslug="$(cd "$(dirname "$0")/.." && pwd)"\nexport PYTHONPATH="$slug/.gust/runtime" PYTHONUNBUFFERED=1 '
              'PYTHONDONTWRITEBYTECODE=1 GUST_APP_ROOT="$slug"\nexec python3 -m gust.server\n',
    "node": '#!/bin/sh\nslug="$(cd "$(dirname "$0")/.." && pwd)"\nexport NODE_PATH="$slug/.gust/runtime" GUST_APP_ROOT="$slug"\n'
            'exec node "$slug/.gust/runtime/gust/server.js"\n',
}


def make_slug(runtime, directory):
    """The fixture app as a slug: the app, the runtime in .gust/runtime and .gust/start."""
    slug = os.path.join(directory, f"slug-{runtime}")
    shutil.copytree(os.path.join(PROTOCOL_TESTS, "apps", runtime), slug)
    shutil.copytree(os.path.join(BUILDPACKS, runtime, "runtime", "gust"), os.path.join(slug, ".gust", "runtime", "gust"),
                    ignore=shutil.ignore_patterns("__pycache__", "tests", "test"))
    start = os.path.join(slug, ".gust", "start")
    with open(start, "w") as file:
        file.write(STARTS[runtime])
    os.chmod(start, 0o755)
    return slug


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Entrypoint:
    """entrypoint.py ARGS over a slug; stop() kills it by PID."""

    def __init__(self, slug, args, env=None, directory=None):
        self.port = free_port()
        self.log_path = os.path.join(directory, f"entrypoint-{self.port}.log")
        # Its own temporary directory, to see what it leaves there.
        self.temporary = os.path.join(directory, f"tmp-{self.port}")
        os.makedirs(self.temporary)
        environment = dict(os.environ, GUST_APP_DIR=slug, GUST_APP="fixture", GUST_RELEASE="v1", PORT=str(self.port),
                           TMPDIR=self.temporary)
        for name in ("GUST_RECORDS_URL", "GUST_RECORDS_TOKEN"):
            environment.pop(name, None)
        environment.update(env or {})
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-I", ENTRYPOINT, *args], env=environment, cwd=slug,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the entrypoint exited with {self.process.returncode}: {self.output()}")
            try:
                status, _, _ = protocol.request(self.url, "GET", "/_/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the entrypoint did not answer within {timeout} s: {self.output()}")

    def wait(self, timeout=30):
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.stop()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as file:
            return file.read().decode(errors="replace")

    def stop(self):
        # The runtime runs in a session of its own (the entrypoint kills its group on a time-out), so killing
        # the entrypoint's group alone would leave it running: SIGTERM first (the entrypoint stops its runtime),
        # then SIGKILL to every group left, the runtimes' included, by the PIDs seen before.
        runtimes = descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for pid in [self.process.pid] + runtimes:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait(timeout=10)
        self.log.close()


def descendants(pid):
    """Every process below ``pid``, by /proc (children before grandchildren)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop(0)
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as file:
                children = [int(word) for word in file.read().split()]
        except OSError:
            children = []
        found += children
        frontier += children
    return found


class RequestPathTests(unittest.TestCase):
    """The same spellings as Tests/GustDaemonTests/RequestPathTests.swift: the front decides as gustd does."""

    def test_reserved_spellings_are_refused(self):
        for raw in ["/_gust/manifest", "/%5fgust/manifest", "/%5Fgust/manifest", "/_GUST/manifest", "/%5F%47UST/manifest",
                    "//_gust/manifest", "/./_gust/manifest", "/x/../_gust/manifest", "/x/%2e%2e/_gust/manifest",
                    "/%2E%2E/_gust/manifest", "/%255fgust/manifest", "/%25255Fgust/manifest", "/x/%252e%252e/_gust/manifest",
                    "/%5c_gust/manifest", "/_gust%2fschedules%2fpurge", "/_gust", "/_gustx", "/_", "/_/", "/_/functions",
                    "/_/functions/", "/_/schedules/purge", "/%5f/records/../schedules", "/_/functions/../../_gust/ops/x",
                    "/_/%66unctions/../x", "/_gust%CC%8C/manifest"]:
            self.assertTrue(entrypoint.RequestPath(raw).reaches_reserved_surface, raw)

    def test_ordinary_paths_pass(self):
        for raw in ["/", "/hello", "/cat/feed/", "/caf%C3%A9", "/100%25", "/a%2Fb", "/_/functions/food:buy", "/_/records/cat/1",
                    "/_/health", "/x_gust", "/gust/_gust", "/bad%zz"]:
            self.assertFalse(entrypoint.RequestPath(raw).reaches_reserved_surface, raw)

    def test_the_target_is_canonical(self):
        for raw, decoded, target in [("/hello", "/hello", "/hello"), ("//cat///feed/", "/cat/feed/", "/cat/feed/"),
                                     ("/a/./b/../c", "/a/c", "/a/c"), ("/../../x", "/x", "/x"),
                                     ("/caf%C3%A9", "/café", "/caf%C3%A9"), ("/100%25", "/100%", "/100%25"),
                                     ("/%25255f", "/%255f", "/%25255f"), ("/a%2Fb", "/a/b", "/a/b"),
                                     ("/q%3Fx%23y", "/q?x#y", "/q%3Fx%23y"), ("/back%5Cslash", "/back\\slash", "/back%5Cslash"),
                                     ("/bad%zz", "/bad%zz", "/bad%25zz"), ("/food:buy", "/food:buy", "/food:buy")]:
            path = entrypoint.RequestPath(raw)
            self.assertEqual(path.decoded, decoded, raw)
            self.assertEqual(path.encoded(), target, raw)


class EntrypointTests(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="gust-entrypoint-test-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def serve(self, runtime, env=None):
        front = Entrypoint(make_slug(runtime, self.directory), ["serve"], env, self.directory)
        self.addCleanup(front.stop)
        front.wait_ready()
        return front

    def test_the_public_surface_answers_the_protocol_cases_and_refuses_the_internal_one(self):
        for runtime in ("python", "node"):
            with self.subTest(runtime=runtime):
                front = self.serve(runtime)
                with open(os.path.join(PROTOCOL_TESTS, "cases.json")) as file:
                    document = json.load(file)
                passed, failed = protocol.run_against_url(front.url, runtime, document["cases"], document["internal_spellings"],
                                                          document["reserved_paths"])
                self.assertEqual(failed, 0, front.output())
                self.assertGreater(passed, 150)
                # The app's own output reaches the container's log untagged (no caller sends call ids here).
                status, _, _ = protocol.request(front.url, "POST", "/_/functions/say", b'{"word": "purr"}')
                self.assertEqual(status, 200)
                deadline = time.monotonic() + 5
                while "said purr" not in front.output().split("\n") and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertIn("said purr", front.output().split("\n"))

    def test_health_names_the_app_and_release(self):
        front = self.serve("python")
        status, _, body = protocol.request(front.url, "GET", "/_/health")
        self.assertEqual((status, json.loads(body)), (200, {"app": "fixture", "release": "v1", "state": "running", "instances": 1}))

    def test_records_without_a_store_fail_with_what_to_set(self):
        front = self.serve("python")
        status, _, body = protocol.request(front.url, "GET", "/_/records/cat")
        self.assertEqual(status, 503)
        self.assertIn("GUST_RECORDS_URL", json.loads(body)["error"])
        self.assertIn("GUST_RECORDS_TOKEN", json.loads(body)["error"])

    def test_records_refuse_a_plain_http_store(self):
        front = self.serve("python", {"GUST_RECORDS_URL": "http://gust.example/apps/cats", "GUST_RECORDS_TOKEN": "t"})
        status, _, body = protocol.request(front.url, "GET", "/_/records/cat")
        self.assertEqual(status, 503)
        self.assertIn("https://", json.loads(body)["error"])

    def test_a_dead_runtime_is_started_again(self):
        front = self.serve("python")
        status, _, body = protocol.request(front.url, "GET", "/inside")
        self.assertEqual(status, 200)
        pids = subprocess.run(["pgrep", "-P", str(front.process.pid)], capture_output=True, text=True).stdout.split()
        self.assertEqual(len(pids), 1, pids)
        os.kill(int(pids[0]), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        self.assertEqual(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[:1], (200,))

    def test_calls_racing_a_dead_runtime_start_one_runtime_and_the_entrypoint_lives(self):
        # Calls that find the runtime dead before its watcher does each asked for a restart, and two starts
        # ran at once: one killed the other's runtime, whose start then ended the whole entrypoint.
        front = self.serve("python")
        pids = subprocess.run(["pgrep", "-P", str(front.process.pid)], capture_output=True, text=True).stdout.split()
        self.assertEqual(len(pids), 1, pids)
        answers = []

        def call_for_two_seconds():
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    answers.append(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0])
                except OSError as error:
                    answers.append(repr(error))

        callers = [threading.Thread(target=call_for_two_seconds) for _ in range(4)]
        for caller in callers:
            caller.start()
        os.kill(int(pids[0]), signal.SIGKILL)
        for caller in callers:
            caller.join()
        self.assertIsNone(front.process.poll(), front.output())
        self.assertEqual(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0], 200, front.output())
        self.assertEqual(len(descendants(front.process.pid)), 1, front.output())
        self.assertEqual(front.output().count("again"), 1, front.output())
        # Only a call the dead runtime had already taken may fail; the others wait for the new one.
        self.assertLessEqual(sum(1 for answer in answers if answer != 200), 1, (answers, front.output()))

    def test_a_call_past_the_time_limit_is_a_504_and_the_runtime_starts_again(self):
        slug = make_slug("python", self.directory)
        with open(os.path.join(slug, "__init__.py"), "a") as file:
            file.write("\n\nimport time as _time\n\n@gust.op('nap')\ndef nap():\n    _time.sleep(30)\n")
        front = Entrypoint(slug, ["serve"], {"GUST_FUNCTION_TIMEOUT": "1"}, self.directory)
        self.addCleanup(front.stop)
        front.wait_ready()
        status, _, body = protocol.request(front.url, "POST", "/_/functions/nap", b"{}")
        self.assertEqual(status, 504, body)
        self.assertIn("did not answer within 1s", json.loads(body)["error"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        self.assertEqual(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0], 200, front.output())
        self.assertIn("ran past 1s; starting the runtime again", front.output())

    def raw(self, front, head, body=b"", timeout=20):
        """Sends `head` then `body` on one connection; the status line and the JSON after it, or None."""
        with socket.create_connection(("127.0.0.1", front.port), timeout=timeout) as client:
            client.sendall(head)
            try:
                client.sendall(body)
            except OSError:
                pass  # refused before the body was whole: what was answered is still there to read
            answer = b""
            while True:
                try:
                    piece = client.recv(65536)
                except OSError:
                    break
                if not piece:
                    break
                answer += piece
        return answer

    def test_a_length_that_is_not_digits_is_refused_before_the_body_is_read(self):
        # int("-1") read a body of -1 bytes: everything until the client closed, past GUST_MAX_BODY.
        front = self.serve("python", {"GUST_MAX_BODY": "1000"})
        for head in (b"POST /_/functions/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                     b"POST /_/functions/echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
                     b"POST /_/functions/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"):
            with self.subTest(head=head):
                answer = self.raw(front, head, b"x" * 200_000, timeout=5)
                self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:200])
        self.assertEqual(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0], 200)

    def test_what_proxies_say_of_the_client_reaches_the_app_from_a_trusted_proxy_only(self):
        # As gustd drops them (ForwardedHeaders.proxyClaims, and any spelling with `_`): a client's
        # X-Forwarded-Host became the WSGI SERVER_NAME, the host a password-reset link names.
        slug = make_slug("python", self.directory)
        with open(os.path.join(slug, "__init__.py"), "a") as file:
            file.write("\n\n@gust.handler('seen')\ndef seen(request):\n    return {k.lower(): v for k, v in request.headers.items()}\n")
        front = Entrypoint(slug, ["serve"], None, self.directory)
        self.addCleanup(front.stop)
        front.wait_ready()
        claims = {"X-Forwarded-Host": "evil.example", "X_Forwarded_For": "6.6.6.6", "X_Forwarded_Proto": "https",
                  "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6;host=evil.example", "X-Forwarded-Prefix": "/evil",
                  "X-Original-URL": "/admin", "True-Client-IP": "6.6.6.6", "X_Request_Id": "forged", "X_Gust_Call": "7"}
        status, _, body = protocol.request(front.url, "GET", "/seen", headers={**claims, "X-Token": "kept"})
        self.assertEqual(status, 200, body)
        seen = json.loads(body)
        self.assertEqual(seen.get("x-token"), "kept")
        for name in claims:
            self.assertNotIn(name.lower(), seen, body)
        self.assertEqual(seen.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(seen.get("x-forwarded-proto"), "http")

    def test_a_client_that_reads_no_answer_holds_the_app_for_its_time_limit_at_most(self):
        # One client that never read a streamed answer held the one call of a Python runtime for good:
        # every other call was a 504. As in gustd, the answer is given up at the call's time limit,
        # and the runtime (not at fault) is kept.
        slug = make_slug("python", self.directory)
        with open(os.path.join(slug, "__init__.py"), "a") as file:
            file.write("\n\ndef _endless(environ, start_response):\n    start_response('200 OK', [])\n"
                       "    while True:\n        yield b'x' * 65536\n\ngust.mount('/endless', _endless)\n")
        front = Entrypoint(slug, ["serve"], {"GUST_FUNCTION_TIMEOUT": "2"}, self.directory)
        self.addCleanup(front.stop)
        front.wait_ready()
        runtimes = descendants(front.process.pid)
        reader = socket.create_connection(("127.0.0.1", front.port), timeout=30)
        self.addCleanup(reader.close)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")  # and reads nothing
        time.sleep(0.5)
        status, _, body = protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')
        self.assertEqual(status, 200, body)
        self.assertEqual(descendants(front.process.pid), runtimes, "the runtime was started again")

    def test_a_request_the_runtime_refuses_early_does_not_start_it_again(self):
        # The Python runtime reads at most 100 fields and answers more with a 400 before the body: the
        # entrypoint's write of the body then failed, and it killed and started the runtime again.
        front = self.serve("python")
        runtimes = descendants(front.process.pid)
        fields = b"".join(b"X-H%d: v\r\n" % n for n in range(97))  # within the entrypoint's 100, past the runtime's with its own
        body = b"{" + b" " * 3_000_000 + b"}"
        head = b"POST /_/functions/echo HTTP/1.1\r\nHost: x\r\n" + fields + b"Content-Length: %d\r\n\r\n" % len(body)
        answer = self.raw(front, head, body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 4"), answer[:300])
        self.assertEqual(protocol.request(front.url, "POST", "/_/functions/echo", b'{"a": 1}')[0], 200)
        self.assertEqual(descendants(front.process.pid), runtimes, front.output())
        self.assertNotIn("starting the runtime again", front.output())

    def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(self):
        front = self.serve("python", {"GUST_IDLE_TIMEOUT": "1"})
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as idle:
            idle.sendall(b"GET /_/health HTTP/1.1\r\nHost: x\r\n")  # a head never finished
            started = time.monotonic()
            self.assertEqual(idle.recv(65536), b"", "closed without an answer")
            self.assertLess(time.monotonic() - started, 8)

    def test_the_working_directory_goes_when_the_entrypoint_ends(self):
        # The records channel's and the runtime's sockets live in a directory of the entrypoint's own; a
        # container restarted keeps its /tmp, and each start would leave one more.
        slug = make_slug("python", self.directory)
        front = Entrypoint(slug, ["serve"], directory=self.directory)
        self.addCleanup(front.stop)
        front.wait_ready()
        self.assertEqual(len([n for n in os.listdir(front.temporary) if n.startswith("gust-")]), 1, os.listdir(front.temporary))
        front.process.terminate()
        self.assertEqual(front.process.wait(timeout=20), 0, front.output())
        self.assertEqual(os.listdir(front.temporary), [], front.output())
        ran = Entrypoint(slug, ["schedule", "meow"], directory=self.directory)
        self.assertEqual(ran.wait(), 0, ran.output())
        self.assertEqual(os.listdir(ran.temporary), [], ran.output())

    def test_schedule_runs_one_schedule_once_and_exits(self):
        slug = make_slug("python", self.directory)
        ran = Entrypoint(slug, ["schedule", "meow"], directory=self.directory)
        self.assertEqual(ran.wait(), 0, ran.output())
        self.assertIn("schedule meow ran", ran.output())
        missing = Entrypoint(slug, ["schedule", "purr"], directory=self.directory)
        self.assertEqual(missing.wait(), 1, missing.output())
        self.assertIn("has no schedule 'purr'; it has: meow", missing.output())


if __name__ == "__main__":
    unittest.main()
