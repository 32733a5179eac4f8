"""gust.records against a real Unix-socket HTTP server standing in for gustd's records channel."""

import http.server
import json
import os
import shutil
import socketserver
import tempfile
import threading
import unittest

import gust
from gust import server


class _Channel(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class RecordsClientTests(unittest.TestCase):
    def setUp(self):
        self.seen = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                seen.append((self.command, self.path, self.headers.get("Authorization"), self.headers.get("X-Gust-Hook-Context"), body))
                if self.path.endswith("/missing"):
                    status, answer = 404, {"code": 404, "error": "No cat record"}
                elif body == {"name": ""}:
                    status, answer = 400, {"code": 123, "error": "Missing cat name"}
                elif self.command == "GET" and "?" in self.path:
                    status, answer = 200, {"records": [{"_id": "a", "name": "Tom"}]}
                else:
                    status, answer = 200, dict(body or {}, _id="a")
                payload = json.dumps(answer).encode()
                if "empty" in self.path:  # no body and no length, the connection kept open regardless
                    self.send_response(204)
                    self.end_headers()
                    self.close_connection = False
                    return
                self.send_response(status)
                if "chunked" in self.path:  # an answer in pieces, as a streaming server sends it
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (payload[:3], payload[3:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                elif "unframed" in self.path:  # no length: the answer ends with the connection
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args):
                pass

        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "records.sock")
        self.channel = _Channel(path, Handler)
        threading.Thread(target=self.channel.serve_forever, daemon=True).start()
        self.addCleanup(self.channel.server_close)
        self.addCleanup(self.channel.shutdown)
        os.environ["GUST_RECORDS_SOCKET"] = path
        os.environ["GUST_RECORDS_TOKEN"] = "secret"
        self.addCleanup(os.environ.pop, "GUST_RECORDS_SOCKET")
        self.addCleanup(os.environ.pop, "GUST_RECORDS_TOKEN")

    def test_getting_no_id_or_an_empty_one_is_none_and_asks_the_channel_nothing(self):
        # `/v1/records/cat` and `/v1/records/cat/` are the type's first page: a get with an id an
        # op took from its arguments (`args.get("id")`) handed every record to whoever called it.
        for missing in (None, ""):
            self.assertIsNone(gust.records.get("cat", missing), repr(missing))
        self.assertEqual(self.seen, [])

    def test_verbs_map_to_the_channel_with_the_instance_secret(self):
        self.assertEqual(gust.records.find("cat", name="Tom", _order="-age", _limit=5), [{"_id": "a", "name": "Tom"}])
        self.assertEqual(gust.records.save("cat", {"name": "Tom"})["_id"], "a")
        gust.records.save("cat", {"_id": "a", "age": 4})
        self.assertIsNone(gust.records.get("cat", "missing"))
        gust.records.delete("cat", {"_id": "a"})
        methods = [(method, path.split("?")[0]) for method, path, *_ in self.seen]
        self.assertEqual(methods, [
            ("GET", "/v1/records/cat"), ("POST", "/v1/records/cat"), ("PUT", "/v1/records/cat/a"),
            ("GET", "/v1/records/cat/missing"), ("DELETE", "/v1/records/cat/a"),
        ])
        self.assertIn("where=%7B%22name%22%3A+%22Tom%22%7D", self.seen[0][1])
        self.assertIn("order=-age", self.seen[0][1])
        self.assertTrue(all(auth == "Bearer secret" for _, _, auth, _, _ in self.seen))

    def test_answers_chunked_or_ended_by_the_connection_are_read_whole(self):
        self.assertEqual(gust.records.get("cat", "chunked"), {"_id": "a"})
        self.assertEqual(gust.records.get("cat", "unframed"), {"_id": "a"})
        answered = []
        thread = threading.Thread(target=lambda: answered.append(gust.records.get("cat", "empty")), daemon=True)
        thread.start()
        thread.join(5)
        self.assertEqual(answered, [None], "a 204 has no body to wait for, even on a connection left open")
        self.assertIsNone(gust.records.get("cat", "missing"))

    def test_an_answer_that_is_not_http_is_a_clear_error(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "records.sock")
        import socket
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        self.addCleanup(listener.close)

        def answer_garbage():
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"SSH-2.0-not-gustd\r\n")
            connection.close()
        threading.Thread(target=answer_garbage, daemon=True).start()
        os.environ["GUST_RECORDS_SOCKET"] = path
        with self.assertRaises(gust.Error) as raised:
            gust.records.get("cat", "a")
        self.assertEqual(raised.exception.code, 502)
        self.assertIn("not HTTP", raised.exception.message)

    def test_a_rejected_write_raises_gust_error_with_its_code(self):
        with self.assertRaises(gust.Error) as raised:
            gust.records.save("cat", {"name": ""})
        self.assertEqual((raised.exception.code, raised.exception.message), (123, "Missing cat name"))

    def test_writes_inside_a_hook_carry_its_context(self):
        saved = gust.registry
        gust.registry = gust._Registry()
        self.addCleanup(setattr, gust, "registry", saved)

        @gust.after_save("cat")
        def touch(record, original):
            gust.records.save("cat", {"_id": record["_id"], "seen": True})

        server.take_internal_token({server.INTERNAL_TOKEN_VARIABLE: "internal"})
        self.addCleanup(server.take_internal_token, {})
        status, _, _ = server.dispatch("POST", "/_gust/hooks/after_save/cat",
                                       {"X-Gust-Hook-Context": "ctx-1", "X-Gust-Internal": "internal"},
                                       json.dumps({"record": {"_id": "a"}}).encode())
        self.assertEqual(status, 200)
        self.assertEqual(self.seen[-1][3], "ctx-1")
        gust.records.get("cat", "a")
        self.assertIsNone(self.seen[-1][3], "outside the hook, no context")


if __name__ == "__main__":
    unittest.main()
