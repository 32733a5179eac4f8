#!/usr/bin/env python3
"""A log drain's receiver for Gust's end-to-end tests.

    drain_receiver.py http|syslog PORT_FILE OUT_FILE [PORT]

Listens on 127.0.0.1 (PORT, or a free one written to PORT_FILE) and appends what it
receives to OUT_FILE, one message per line: for `http`, each NDJSON line of each POST
body (answering 204); for `syslog`, each RFC 5424 message of an octet-counted TCP stream
(RFC 6587), with its length prefix removed.
"""
import http.server
import socketserver
import sys
import threading

mode, port_file, out_file = sys.argv[1:4]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
lock = threading.Lock()


def record(lines):
    with lock, open(out_file, "a", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")


class Ingest(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record([line for line in body.decode("utf-8").split("\n") if line])
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Syslog(socketserver.StreamRequestHandler):
    def handle(self):
        buffer = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            messages = []
            while b" " in buffer:
                length, rest = buffer.split(b" ", 1)
                size = int(length)
                if len(rest) < size:
                    break
                messages.append(rest[:size].decode("utf-8"))
                buffer = rest[size:]
            record(messages)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server(("127.0.0.1", port), Ingest if mode == "http" else Syslog)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402

os.replace(port_file + ".tmp", port_file)
server.serve_forever()
