"""WebSockets in the Python runtime: RFC 6455 framing (gust/websocket.py) and an ASGI
application's ``websocket`` scope served over the runtime's real socket (gust/asgi.py).

A plain ASGI callable stands in for FastAPI (the end-to-end tests push the real one, through gustd).
"""

import io
import os
import socket
import struct
import tempfile
import threading
import unittest

import gust
from gust import mounts, server, websocket
from gust.websocket import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, WebSocket, encode_frame, read_frame

from tests.test_mounts import MountTestCase, tearDownModule  # noqa: F401 - stops the ASGI loop after the module

WAIT = 10
MASK = b"\x01\x02\x03\x04"


def client_frame(opcode, payload=b"", fin=True):
    return encode_frame(opcode, payload, fin=fin, mask=MASK)


class FramingTests(unittest.TestCase):
    def test_the_accept_key_of_the_rfc_example(self):
        self.assertEqual(websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_frames_of_every_length_form_read_back(self):
        for size in (0, 5, 125, 126, 65535, 65536, 70000):
            payload = os.urandom(size)
            fin, opcode, got = read_frame(io.BytesIO(client_frame(BINARY, payload)))
            self.assertEqual((fin, opcode, got), (True, BINARY, payload), size)

    def test_a_masked_frame_is_unmasked_and_a_server_frame_is_not_masked(self):
        wire = client_frame(TEXT, b"Hello")
        self.assertEqual(wire[1] & 0x80, 0x80)
        self.assertNotIn(b"Hello", wire)
        self.assertEqual(encode_frame(TEXT, b"Hello"), b"\x81\x05Hello")   # RFC 6455 5.7

    def test_an_unmasked_client_frame_is_a_protocol_error(self):
        with self.assertRaises(websocket.ProtocolError) as raised:
            read_frame(io.BytesIO(encode_frame(TEXT, b"hi")))
        self.assertEqual(raised.exception.code, 1002)

    def test_reserved_bits_and_long_control_frames_are_protocol_errors(self):
        rsv = bytes([0xC1]) + client_frame(TEXT, b"x")[1:]
        for wire in (rsv, client_frame(PING, b"x" * 126), client_frame(PING, b"x", fin=False)):
            with self.assertRaises(websocket.ProtocolError):
                read_frame(io.BytesIO(wire))

    def socket_reading(self, wire, max_message=websocket.MAX_MESSAGE):
        out = io.BytesIO()
        return WebSocket(io.BytesIO(wire), out, max_message), out

    def test_fragments_make_one_message_and_pings_between_are_answered(self):
        wire = (client_frame(TEXT, b"Hel", fin=False) + client_frame(PING, b"p") + client_frame(CONTINUATION, b"lo", fin=False)
                + client_frame(CONTINUATION, b"!"))
        ws, out = self.socket_reading(wire)
        self.assertEqual(ws.receive(), ("text", "Hello!"))
        self.assertEqual(out.getvalue(), encode_frame(PONG, b"p"))

    def test_a_close_is_answered_with_its_code(self):
        ws, out = self.socket_reading(client_frame(PONG) + client_frame(CLOSE, struct.pack("!H", 1001) + b"bye"))
        self.assertEqual(ws.receive(), ("close", 1001, "bye"))
        self.assertEqual(out.getvalue(), encode_frame(CLOSE, struct.pack("!H", 1001)))

    def test_a_message_over_the_limit_closes_with_1009(self):
        ws, out = self.socket_reading(client_frame(BINARY, b"x" * 10, fin=False) + client_frame(CONTINUATION, b"x" * 10), max_message=15)
        self.assertEqual(ws.receive()[:2], ("close", 1009))
        fin, opcode, payload = read_frame(io.BytesIO(out.getvalue()), masked=False)
        self.assertEqual((opcode, payload[:2]), (CLOSE, struct.pack("!H", 1009)))

    def test_text_that_is_not_utf8_closes_with_1007(self):
        ws, _ = self.socket_reading(client_frame(TEXT, b"\xff\xfe"))
        self.assertEqual(ws.receive()[:2], ("close", 1007))

    def test_a_continuation_without_a_message_closes_with_1002(self):
        ws, _ = self.socket_reading(client_frame(CONTINUATION, b"x"))
        self.assertEqual(ws.receive()[:2], ("close", 1002))

    def test_a_connection_that_ends_is_1006(self):
        ws, _ = self.socket_reading(client_frame(TEXT, b"abc")[:3])
        self.assertEqual(ws.receive(), ("close", 1006, ""))


async def echo_socket(scope, receive, send):
    """Accepts, echoes every message (text upper-cased), closes with 4000 on 'bye'; refuses /private."""
    if scope["type"] != "websocket":
        raise RuntimeError("no lifespan, no http")
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"].endswith("/private"):
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"].upper() + " " + scope["path"] + " " + scope["root_path"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class ASGIWebSocketTests(MountTestCase):
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

    def handshake(self, connection, path, extra=""):
        connection.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = connection.recv(1)
            if not chunk:
                break
            head += chunk
        return head.decode("latin-1")

    def frame(self, connection):
        return read_frame(connection.makefile("rb", buffering=0), masked=False)

    def test_an_accept_whose_header_would_split_the_handshake_sends_none_of_it(self):
        import urllib.parse

        async def echoing_accept(scope, receive, send):
            await receive()  # websocket.connect
            value = urllib.parse.unquote(scope["query_string"].decode().partition("=")[2])
            await send({"type": "websocket.accept", "headers": [(b"x-echo", value.encode("latin-1"))]})

        gust.mount("/ws", echoing_accept)
        connection = self.serve()
        head = self.handshake(connection, "/ws/x?echo=a%0D%0AX-Injected:%201")
        self.assertNotIn("X-Injected", head)
        self.assertFalse(head.startswith("HTTP/1.1 101 "), head)
        self.assertEqual(connection.recv(1), b"", "the runtime ended the connection")
        # The coroutine's failure holds the runtime's end of the socket in a reference cycle until a
        # collection (the zygote's tests count the sockets this process has open).
        import gc

        gc.collect()

    def test_an_asgi_socket_is_accepted_echoes_and_closes(self):
        gust.mount("/ws", echo_socket)
        connection = self.serve()
        head = self.handshake(connection, "/ws/echo", "Sec-WebSocket-Protocol: chat, other\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 101 "), head)
        self.assertIn("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head)
        self.assertIn("Sec-WebSocket-Protocol: chat", head)
        connection.sendall(client_frame(TEXT, b"hel", fin=False) + client_frame(CONTINUATION, b"lo"))
        self.assertEqual(self.frame(connection), (True, TEXT, b"HELLO /ws/echo /ws"))
        big = os.urandom(300_000)
        connection.sendall(client_frame(BINARY, big))
        self.assertEqual(self.frame(connection), (True, BINARY, big))
        connection.sendall(client_frame(PING, b"are you there"))
        self.assertEqual(self.frame(connection), (True, PONG, b"are you there"))
        connection.sendall(client_frame(TEXT, b"bye"))
        self.assertEqual(self.frame(connection), (True, CLOSE, struct.pack("!H", 4000) + b"asked"))
        connection.sendall(client_frame(CLOSE, struct.pack("!H", 4000)))
        self.assertEqual(connection.recv(10), b"", "the runtime closes the connection after the close handshake")

    def test_an_application_that_closes_before_accepting_refuses_with_403(self):
        gust.mount("/ws", echo_socket)
        head = self.handshake(self.serve(), "/ws/private")
        self.assertTrue(head.startswith("HTTP/1.1 403 "), head)

    def test_a_client_that_leaves_is_a_disconnect_1006(self):
        seen = threading.Event()
        codes = []

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            codes.append((await receive())["code"])
            seen.set()
        gust.mount("/", app)
        connection = self.serve()
        self.assertIn("101", self.handshake(connection, "/x"))
        connection.shutdown(socket.SHUT_RDWR)
        self.assertTrue(seen.wait(WAIT))
        self.assertEqual(codes, [1006])

    def test_a_websocket_to_the_internal_surface_reaches_no_mount(self):
        gust.mount("/", echo_socket)
        head = self.handshake(self.serve(), "/_gust/health")
        self.assertTrue(head.startswith("HTTP/1.1 404 "), head)


if __name__ == "__main__":
    unittest.main()
