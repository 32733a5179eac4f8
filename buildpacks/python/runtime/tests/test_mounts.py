"""gust.mount: WSGI and ASGI applications beside the app's functions, in-process and over a real socket.

Plain WSGI/ASGI callables stand in for Flask and FastAPI (the end-to-end tests push the real ones).
"""

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import tempfile
import threading
import unittest

import gust
from gust import asgi, mounts, server
from gust.testing import Client

WAIT = 10  # seconds: a bound on every wait, never a timing assertion


def echo_wsgi(environ, start_response):
    body = environ["wsgi.input"].read()
    seen = {
        "script_name": environ["SCRIPT_NAME"], "path_info": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
        "method": environ["REQUEST_METHOD"], "body": body.decode(), "token": environ.get("HTTP_X_TOKEN"),
        "internal": environ.get("HTTP_X_GUST_INTERNAL"), "content_type": environ.get("CONTENT_TYPE"),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def tearDownModule():
    """Stops the ASGI event loop and its executor's threads, and puts back SIGTERM's default, which
    would otherwise outlive these tests (the zygote's tests count threads and SIGTERM forks)."""
    if asgi._stopping_on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asgi._stopping_on_sigterm = False
    loop = asgi._loop
    if loop is None:
        return
    loop.call_soon_threadsafe(loop.stop)
    for thread in threading.enumerate():
        if thread.name == "gust-asgi":
            thread.join(5)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asgi._loop = None


class Echo:
    """An ASGI application (an object whose __call__ is a coroutine function, as Starlette's is)."""

    def __init__(self):
        self.events = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hello"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = {
            "path": scope["path"], "root_path": scope["root_path"], "query": scope["query_string"].decode(),
            "method": scope["method"], "body": body.decode(), "state": scope["state"].get("greeting"),
            "headers": sorted(k.decode() for k, _ in scope["headers"]),
        }
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


class MountTestCase(unittest.TestCase):
    def setUp(self):
        self._saved = gust.registry
        gust.registry = gust._Registry()
        saved_mounts = list(mounts._mounts)
        mounts._mounts.clear()
        self.addCleanup(lambda: (mounts._mounts.clear(), mounts._mounts.extend(saved_mounts)))
        stderr = contextlib.redirect_stderr(io.StringIO())
        self.stderr = stderr.__enter__()
        self.addCleanup(stderr.__exit__, None, None, None)

    def tearDown(self):
        gust.registry = self._saved

    def client(self):
        client = Client()
        self.addCleanup(client.close)
        return client


class DetectionTests(unittest.TestCase):
    def test_wsgi_and_asgi_are_told_apart(self):
        class Flaskish:
            def __call__(self, environ, start_response):
                return []

        async def asgi_function(scope, receive, send):
            pass
        self.assertEqual(mounts.interface_of(echo_wsgi), "wsgi")
        self.assertEqual(mounts.interface_of(Flaskish()), "wsgi")
        self.assertEqual(mounts.interface_of(asgi_function), "asgi")
        self.assertEqual(mounts.interface_of(Echo()), "asgi")
        with self.assertRaises(TypeError):
            mounts.interface_of("not an app")


class WSGITests(MountTestCase):
    def test_a_root_mount_gets_every_path_with_an_empty_script_name(self):
        gust.mount("/", echo_wsgi)
        answer = self.client().post("/users/7", query={"q": "1"}, body="hi", headers={"X-Token": "t", "Content-Type": "text/plain"})
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.json(), {
            "script_name": "", "path_info": "/users/7", "query": "q=1", "method": "POST", "body": "hi",
            "token": "t", "internal": None, "content_type": "text/plain",
        })

    def test_a_prefix_mount_sees_its_prefix_in_script_name(self):
        gust.mount("/api/", echo_wsgi)
        client = self.client()
        seen = client.get("/api/users").json()
        self.assertEqual((seen["script_name"], seen["path_info"]), ("/api", "/users"))
        seen = client.get("/api").json()
        self.assertEqual((seen["script_name"], seen["path_info"]), ("/api", ""))
        self.assertEqual(client.get("/apiary").status, 404)   # a prefix is whole segments

    def test_the_longest_prefix_wins(self):
        gust.mount("/", echo_wsgi)
        gust.mount("/v2", Echo())
        client = self.client()
        self.assertEqual(client.get("/v2/x").json()["root_path"], "/v2")
        self.assertEqual(client.get("/v1/x").json()["path_info"], "/v1/x")

    def test_gusts_handlers_and_internal_paths_stay_gusts(self):
        gust.mount("/", echo_wsgi)
        gust.handler("/hello")(lambda request: "from gust")
        client = self.client()
        self.assertEqual(client.get("/hello/").text, "from gust")
        self.assertEqual(client.get("/_gust/manifest").status, 404)       # no secret: it does not exist
        self.assertEqual(client.get("/_/functions/x").status, 404)
        self.assertEqual(client.get("/%5Fgust/health").status, 404)
        self.assertEqual(client.manifest()["handlers"], [{"path": "/hello", "methods": ["GET"]}])

    def test_the_internal_secret_never_reaches_the_application(self):
        gust.mount("/", echo_wsgi)
        client = self.client()
        answer = client._send("GET", "/x", {"X-Gust-Internal": server._internal_token}, b"", internal=False)
        self.assertIsNone(answer.json()["internal"])

    def test_gustds_own_headers_never_reach_the_application_as_gustd_sends_them(self):
        # The test client leaves X-Gust-* out as gustd does for a client's; gustd itself sends the
        # secret (to /_gust only) and the call id, which the runtime keeps from the application.
        def gusts_own(environ, start_response):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"internal": environ.get("HTTP_X_GUST_INTERNAL"), "call": environ.get("HTTP_X_GUST_CALL")}).encode()]

        gust.mount("/", gusts_own)
        self.client()
        raw = (f"GET /x HTTP/1.1\r\nHost: instance\r\nX-Gust-Internal: {server._internal_token}\r\n"
               "X-Gust-Call: 77\r\nContent-Length: 0\r\n\r\n").encode()
        response = http.client.HTTPResponse(gust.testing._Bytes(gust.testing._serve_in_memory(raw)), method="GET")
        response.begin()
        seen = json.loads(response.read())
        self.assertEqual((seen["internal"], seen["call"]), (None, None))

    def test_a_failing_application_is_a_500_and_the_next_request_is_served(self):
        calls = []

        def broken(environ, start_response):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            start_response("200 OK", [])
            return [b"ok"]
        gust.mount("/", broken)
        client = self.client()
        answer = client.get("/")
        self.assertEqual((answer.status, answer.json()["error"]), (500, "internal error in mount /"))
        self.assertIn("boom", self.stderr.getvalue())
        self.assertEqual(client.get("/").text, "ok")

    def test_a_header_that_would_split_the_answer_is_a_500_and_sends_nothing_of_it(self):
        # The runtime is the mounted app's HTTP server, and servers refuse CR and LF in an answer's
        # headers (h11, gunicorn): an app that echoes a query into a header must not let a client
        # add a Set-Cookie, or a second answer that gustd would read as another call's.
        import urllib.parse

        def echo(environ, start_response):
            value = urllib.parse.unquote(environ["QUERY_STRING"].partition("=")[2])
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Echo", value)])
            return [b"ok"]

        async def echo_asgi(scope, receive, send):
            value = urllib.parse.unquote(scope["query_string"].decode().partition("=")[2])
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", value.encode("latin-1"))]})
            await send({"type": "http.response.body", "body": b"ok"})

        gust.mount("/w", echo)
        gust.mount("/a", echo_asgi)
        client = self.client()
        for prefix in ("/w", "/a"):
            with self.subTest(prefix=prefix):
                self.assertEqual(client.get(prefix + "/", query="echo=fine").headers.get("x-echo"), "fine")
                answer = client.get(prefix + "/", query="echo=a%0D%0ASet-Cookie:%20sid=attacker%0D%0A%0D%0AHTTP/1.1%20200%20OK")
                self.assertEqual(answer.status, 500, answer)
                self.assertNotIn("set-cookie", answer.headers)
                self.assertNotIn(b"attacker", answer.body)
                self.assertEqual(client.get(prefix + "/", query="echo=again").headers.get("x-echo"), "again")

    def test_remote_addr_is_the_address_gustd_added_not_one_a_client_put_first(self):
        # gustd appends its peer to X-Forwarded-For (a trusted proxy's list) or sends its peer
        # alone: the last entry is the one no client can choose; the first is whatever a client
        # behind a trusted proxy claimed.
        def remote(environ, start_response):
            start_response("200 OK", [])
            return [environ["REMOTE_ADDR"].encode()]

        gust.mount("/", remote)
        client = self.client()
        self.assertEqual(client.get("/", headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.7"}).text, "10.0.0.7")
        self.assertEqual(client.get("/", headers={"X-Forwarded-For": "10.0.0.8"}).text, "10.0.0.8")

    def test_mounting_over_gusts_surface_is_refused(self):
        for prefix in ("/_", "/_/x", "/_gust", "/_GUST/x"):
            with self.assertRaises(ValueError, msg=prefix):
                gust.mount(prefix, echo_wsgi)


class ASGITests(MountTestCase):
    def test_path_root_path_body_and_lifespan_state(self):
        app = Echo()
        gust.mount("/api", app)
        client = self.client()
        self.assertEqual(app.events, ["lifespan.startup"])
        answer = client.put("/api/items/3", query="a=b", body=b"x" * 200_000)
        self.assertEqual(answer.status, 201)
        seen = answer.json()
        self.assertEqual((seen["path"], seen["root_path"], seen["query"]), ("/api/items/3", "/api", "a=b"))
        self.assertEqual((seen["method"], len(seen["body"]), seen["state"]), ("PUT", 200_000, "hello"))
        self.assertNotIn("x-gust-internal", seen["headers"])
        client.close()
        self.assertEqual(app.events, ["lifespan.startup", "lifespan.shutdown"])

    def test_an_application_without_lifespan_still_serves(self):
        async def plain(scope, receive, send):
            assert scope["type"] == "http", "no lifespan here"
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain"})
        gust.mount("/", plain)
        self.assertEqual(self.client().get("/").text, "plain")

    def test_a_failed_startup_fails_the_load(self):
        async def refuses(scope, receive, send):
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})
        gust.mount("/", refuses)
        with self.assertRaisesRegex(RuntimeError, "no database"):
            Client()


class OverASocketTests(MountTestCase):
    """The runtime's real server on a Unix socket: answers and bodies stream."""

    def serve(self):
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "gust.sock")
        listener = server.listen(path)
        threading.Thread(target=server.serve_on, args=(listener,), daemon=True).start()
        self.addCleanup(lambda: (server.stop_listening(listener), os.unlink(path), os.rmdir(directory)))
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(WAIT)
        connection.connect(path)
        self.addCleanup(connection.close)
        return connection

    def read_until(self, connection, marker, seen=b""):
        while marker not in seen:
            chunk = connection.recv(65536)
            if not chunk:
                break
            seen += chunk
        return seen

    def check_first_chunk_arrives_before_the_rest(self, release):
        connection = self.serve()
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        first = self.read_until(connection, b"first")
        self.assertIn(b"Transfer-Encoding: chunked", first)
        self.assertNotIn(b"second", first)
        release.set()   # only now may the application go on
        rest = self.read_until(connection, b"0\r\n\r\n", first)
        self.assertIn(b"second", rest)
        # The connection serves the next request (gustd keeps it).
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        self.assertIn(b"first", self.read_until(connection, b"first"))

    def test_a_wsgi_generator_streams(self):
        release = threading.Event()

        def streaming(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"first"
            release.wait(WAIT)
            yield b"second"
        gust.mount("/", streaming)
        self.check_first_chunk_arrives_before_the_rest(release)

    def test_an_asgi_response_streams(self):
        release = threading.Event()

        async def streaming(scope, receive, send):
            if scope["type"] != "http":
                raise RuntimeError("no lifespan")
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            import asyncio
            await asyncio.get_running_loop().run_in_executor(None, release.wait, WAIT)
            await send({"type": "http.response.body", "body": b"second"})
        gust.mount("/", streaming)
        mounts.start()
        self.check_first_chunk_arrives_before_the_rest(release)

    def test_the_request_body_reaches_the_application_as_it_arrives(self):
        def reads_half(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"got " + environ["wsgi.input"].read(5)
            yield b" then " + environ["wsgi.input"].read()
        gust.mount("/", reads_half)
        connection = self.serve()
        connection.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        # The application answered from the first half: the second is not sent yet.
        self.assertIn(b"got hello", self.read_until(connection, b"got hello"))
        connection.sendall(b"world")
        self.assertIn(b"then world", self.read_until(connection, b"then world"))


if __name__ == "__main__":
    unittest.main()


class ProcessTests(unittest.TestCase):
    """The runtime as gustd starts it: an ASGI app's lifespan runs before it serves and when SIGTERM stops it."""

    def test_lifespan_startup_before_serving_and_shutdown_on_sigterm(self):
        import signal
        import subprocess
        import sys
        import time
        import shutil
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        events = os.path.join(directory, "events.txt")
        with open(os.path.join(directory, "main.py"), "w") as file:
            file.write(f'''
import gust

async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    while True:
        message = await receive()
        with open({events!r}, "a") as out:
            out.write(message["type"] + "\\n")
        if message["type"] == "lifespan.startup":
            await send({{"type": "lifespan.startup.complete"}})
        else:
            await send({{"type": "lifespan.shutdown.complete"}})
            return

gust.mount("/", app)
''')
        socket_path = os.path.join(directory, "gust.sock")
        runtime = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        process = subprocess.Popen(
            [sys.executable, "-m", "gust.server"], cwd=directory, stderr=subprocess.PIPE,
            env=dict(os.environ, GUST_SOCKET=socket_path, GUST_APP_ROOT=directory, PYTHONPATH=runtime))
        try:
            deadline = time.monotonic() + WAIT
            while not os.path.exists(socket_path) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(os.path.exists(socket_path), process.stderr.read().decode() if process.poll() is not None else "")
            with open(events) as file:
                self.assertEqual(file.read(), "lifespan.startup\n")   # before the socket listened
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(WAIT), 0)
            with open(events) as file:
                self.assertEqual(file.read(), "lifespan.startup\nlifespan.shutdown\n")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stderr.close()
