"""The limit: a blocking socket that sends one pre-encoded masked frame again and again.

No WebSocket library: a hand-written upgrade request, then the same masked
binary frame (encoded once) is written per message, and echoes are counted
by bytes (every echo is a server frame of known length), never parsed.
Whatever a real client does costs at least this much.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from urllib.parse import urlsplit

import _common


def server_frame_len(size: int) -> int:
    if size < 126:
        return 2 + size
    if size < 65536:
        return 4 + size
    return 10 + size


def client_frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x82, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x82, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, n)
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")
    return header + key + masked


def connect(url: str) -> tuple[socket.socket, bytes]:
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    sock.sendall(req.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("server closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"upgrade refused: {head[:80]!r}")
    return sock, rest


class Raw:
    def __init__(self, sock: socket.socket, leftover: bytes, size: int) -> None:
        self.sock = sock
        self.pending = len(leftover)  # bytes of echoes received, not yet counted
        self.echo_len = server_frame_len(size)
        self.buf = bytearray(1 << 20)

    def batch(self, frame: bytes, n: int, window: int) -> None:
        sock, buf, echo_len = self.sock, self.buf, self.echo_len
        sendall, recv_into = sock.sendall, sock.recv_into
        sent = min(window, n)
        sendall(frame * sent) if sent > 1 else sendall(frame)
        received = 0
        got = self.pending
        while received < n:
            k = recv_into(buf)
            if not k:
                raise SystemExit("server closed")
            got += k
            done, got = divmod(got, echo_len)
            received += done
            more = min(done, n - sent)
            if more > 0:
                sendall(frame * more) if more > 1 else sendall(frame)
                sent += more
        self.pending = got


def main() -> None:
    args = _common.parse_args()
    window = _common.window(args)
    frame = client_frame(_common.payload(args.size))
    sock, leftover = connect(args.url)
    raw = Raw(sock, leftover, args.size)
    raw.batch(frame, args.warmup, window)
    meter = _common.Meter()
    meter.start()
    raw.batch(frame, args.count, window)
    meter.stop()
    sock.close()
    _common.emit("raw-socket", args, meter)


if __name__ == "__main__":
    main()
