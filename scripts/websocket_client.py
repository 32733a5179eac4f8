#!/usr/bin/env python3
"""A WebSocket client speaking RFC 6455 with Python's standard library, for the
end-to-end tests (Tests/EndToEndTests/WebSocketTests.swift) and for trying an
app's sockets by hand:

    scripts/websocket_client.py ws://127.0.0.1:8080/apps/chat/ws text:hello close:1000

It does the handshake (printing the answer's status and headers as one JSON
line), then runs each action in turn, printing one JSON line per message it
receives:

    text:STRING    sends STRING, prints the next message
    bytes:N        sends N random bytes, prints the next message's length and whether it is the same
    ping:STRING    sends a ping, prints the pong
    close:CODE     sends a close, prints the peer's close (its code)
    wait           prints what arrives until the connection closes (a close's code, or eof)
    sleep:SECONDS  keeps the socket open that long, sending nothing

--header NAME:VALUE adds a header; --opened FILE is created once the socket is
open; --connect ADDRESS connects there instead of to the URL's host (which still
names the server: Host, and SNI over TLS); wss:// connects with TLS without
checking the certificate (a test's own).
"""

import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "buildpacks", "python", "runtime"))
from gust.websocket import BINARY, CLOSE, PING, PONG, TEXT, accept_key, encode_frame, read_frame  # noqa: E402


def connect(url, headers, timeout, address=None):
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = socket.create_connection((address or parts.hostname, port), timeout=timeout)
    if parts.scheme == "wss":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=parts.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"] + headers
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    rfile = sock.makefile("rb")
    status = rfile.readline().decode("latin-1").split(" ", 2)
    answer = {}
    while True:
        line = rfile.readline().decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        answer[name.strip().lower()] = value.strip()
    code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
    body = b""
    if code != 101 and answer.get("content-length", "").isdigit():
        body = rfile.read(int(answer["content-length"]))
    print(json.dumps({"status": code, "headers": answer, "body": body.decode("utf-8", "replace"),
                      "accepted": code == 101 and answer.get("sec-websocket-accept") == accept_key(key)}), flush=True)
    return sock, rfile, code


def next_message(rfile, wfile):
    """The next data or close frame, answering pings; a dict for the output."""
    while True:
        try:
            fin, opcode, payload = read_frame(rfile, 1 << 30, masked=False)
        except (EOFError, OSError):
            return {"eof": True}
        if opcode == PING:
            wfile.write(encode_frame(PONG, payload, mask=os.urandom(4)))
            wfile.flush()
            continue
        if opcode == PONG:
            return {"pong": payload.decode("utf-8", "replace")}
        if opcode == CLOSE:
            return {"close": struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005,
                    "reason": payload[2:].decode("utf-8", "replace")}
        if opcode == TEXT:
            return {"text": payload.decode("utf-8")}
        return {"bytes": len(payload), "payload": payload}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("actions", nargs="*")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--opened")
    parser.add_argument("--connect")
    parser.add_argument("--timeout", type=float, default=30)
    options = parser.parse_args()
    sock, rfile, status = connect(options.url, options.header, options.timeout, options.connect)
    if status != 101:
        return 0
    if options.opened:
        open(options.opened, "w").close()
    wfile = sock.makefile("wb")

    def send(opcode, payload):
        wfile.write(encode_frame(opcode, payload, mask=os.urandom(4)))
        wfile.flush()

    for action in options.actions:
        kind, _, argument = action.partition(":")
        if kind == "text":
            send(TEXT, argument.encode())
            print(json.dumps(next_message(rfile, wfile)), flush=True)
        elif kind == "bytes":
            data = os.urandom(int(argument))
            send(BINARY, data)
            got = next_message(rfile, wfile)
            if "payload" in got:
                got["same"] = got.pop("payload") == data
            print(json.dumps(got), flush=True)
        elif kind == "ping":
            send(PING, argument.encode())
            print(json.dumps(next_message(rfile, wfile)), flush=True)
        elif kind == "close":
            send(CLOSE, struct.pack("!H", int(argument)))
            print(json.dumps(next_message(rfile, wfile)), flush=True)
        elif kind == "sleep":
            time.sleep(float(argument))
        elif kind == "wait":
            while True:
                got = next_message(rfile, wfile)
                got.pop("payload", None)
                print(json.dumps(got), flush=True)
                if "close" in got or "eof" in got:
                    break
        else:
            raise SystemExit(f"unknown action {action!r}")
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
