"""WebSocket framing (RFC 6455) for the runtime's own connection, standard library only.

gustd forwards a client's handshake (``Upgrade: websocket``) to the instance and,
once the instance answers 101, relays the bytes both ways unchanged; this module
is the instance's end: the handshake's answer key, reading the client's frames
(masked, possibly fragmented, with pings between), writing the server's
(unmasked), and the close handshake. gust/asgi.py drives it for an ASGI
application's ``websocket`` scope.
"""

import base64
import hashlib
import os
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: The largest message (all its fragments) a socket takes from a client; a larger one closes it with 1009.
MAX_MESSAGE = 16 * 1024 * 1024


def accept_key(key):
    """The Sec-WebSocket-Accept answering a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key.strip() + GUID).encode("latin-1")).digest()).decode("ascii")


class ProtocolError(Exception):
    """The peer broke the protocol: the socket closes with ``code``."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode_frame(opcode, payload=b"", fin=True, mask=None):
    """One frame; ``mask`` (4 bytes) for a client's frame, None for a server's."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if mask is None:
        return bytes(head) + bytes(payload)
    return bytes(head) + bytes(mask) + _masked(payload, mask)


def _masked(payload, mask):
    if not payload:
        return b""
    # XOR with the key repeated, as one big integer: fast enough without numpy.
    key = (mask * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")


def close_payload(code, reason=""):
    return struct.pack("!H", code) + reason.encode("utf-8")[:123] if code else b""


def _read_exactly(rfile, size):
    data = rfile.read(size) if size else b""
    while len(data) < size:
        more = rfile.read(size - len(data))
        if not more:
            raise EOFError("the connection closed mid-frame")
        data += more
    return data


def read_frame(rfile, max_payload=MAX_MESSAGE, masked=True):
    """(fin, opcode, payload) of the next frame; EOFError if the connection ends first.

    ``masked``: whether frames must be masked (a server reads a client's)."""
    first = rfile.read(2)
    if not first:
        raise EOFError("the connection closed")
    if len(first) < 2:
        first += _read_exactly(rfile, 1)
    fin, rsv, opcode = first[0] & 0x80, first[0] & 0x70, first[0] & 0x0F
    has_mask, length = first[1] & 0x80, first[1] & 0x7F
    if rsv:
        raise ProtocolError(1002, "reserved bits set without an extension")
    if opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
        raise ProtocolError(1002, f"unknown opcode {opcode}")
    if bool(has_mask) != masked:
        raise ProtocolError(1002, "a client's frames must be masked" if masked else "a server's frames are not masked")
    if opcode >= CLOSE and (not fin or length > 125):
        raise ProtocolError(1002, "a control frame must be whole and at most 125 bytes")
    if length == 126:
        length = struct.unpack("!H", _read_exactly(rfile, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _read_exactly(rfile, 8))[0]
    if length > max_payload:
        raise ProtocolError(1009, f"a frame of {length} bytes is more than the {max_payload} a message may have")
    mask = _read_exactly(rfile, 4) if has_mask else None
    payload = _read_exactly(rfile, length)
    return bool(fin), opcode, (_masked(payload, mask) if mask else payload)


class WebSocket:
    """The server's end of an open socket over ``rfile``/``wfile`` (file objects of the connection).

    ``receive()`` is for one thread; ``send_*`` and ``close`` may come from any (they are locked)."""

    def __init__(self, rfile, wfile, max_message=MAX_MESSAGE):
        self._rfile = rfile
        self._wfile = wfile
        self._max = max_message
        self._lock = threading.Lock()
        self.close_sent = False
        self.close_code = None      # the code the peer closed with, once it did

    def _write(self, data):
        with self._lock:
            self._wfile.write(data)
            self._wfile.flush()

    def send_text(self, text):
        self._write(encode_frame(TEXT, text.encode("utf-8")))

    def send_bytes(self, data):
        self._write(encode_frame(BINARY, bytes(data)))

    def ping(self, data=b""):
        self._write(encode_frame(PING, data))

    def close(self, code=1000, reason=""):
        """Sends a close frame (once); the peer's answer ends ``receive``."""
        with self._lock:
            if self.close_sent:
                return
            self.close_sent = True
            try:
                self._wfile.write(encode_frame(CLOSE, close_payload(code, reason)))
                self._wfile.flush()
            except OSError:
                pass

    def receive(self):
        """The next message: ("text", str), ("bytes", bytes) or ("close", code, reason).

        Answers pings, skips pongs, puts fragments together, and answers a close
        (the socket is over once it returns "close"). A broken protocol closes with
        its code (1002, 1007 bad UTF-8, 1009 too big) and returns "close" too; a
        connection that ends without a close returns ("close", 1006, "")."""
        kind, parts, size = None, [], 0
        try:
            while True:
                fin, opcode, payload = read_frame(self._rfile, self._max)
                if opcode == PING:
                    if not self.close_sent:
                        self._write(encode_frame(PONG, payload))
                    continue
                if opcode == PONG:
                    continue
                if opcode == CLOSE:
                    return self._closed_by_peer(payload)
                if opcode == CONTINUATION:
                    if kind is None:
                        raise ProtocolError(1002, "a continuation frame with no message to continue")
                elif kind is not None:
                    raise ProtocolError(1002, "a new message before the last one ended")
                else:
                    kind = opcode
                size += len(payload)
                if size > self._max:
                    raise ProtocolError(1009, f"a message of more than {self._max} bytes")
                parts.append(payload)
                if fin:
                    data = b"".join(parts)
                    if kind == BINARY:
                        return ("bytes", data)
                    try:
                        return ("text", data.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise ProtocolError(1007, "a text message that is not UTF-8") from None
        except ProtocolError as error:
            self.close(error.code, error.reason)
            self.close_code = error.code
            return ("close", error.code, error.reason)
        except (EOFError, OSError, ValueError):
            self.close_code = 1006
            return ("close", 1006, "")

    def _closed_by_peer(self, payload):
        if len(payload) == 1:
            code, reason = 1002, ""
        elif payload:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                code, reason = 1007, ""
        else:
            code, reason = 1005, ""
        self.close(1000 if code in (1005, 1006) else (code if 1000 <= code < 5000 else 1002))
        self.close_code = code
        return ("close", code, reason)


def client_mask():
    return os.urandom(4)
