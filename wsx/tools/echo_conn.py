"""One echo server connection, sans-I/O apart from its socket (see :mod:`.echo_server`).

:class:`EchoConnection` takes the bytes a client sent and queues its
answers in ``wbuf``: the upgrade handshake (validated here, answered ``101``
or refused), then frames parsed by wsx's own parser in its server-role mode
(``PyFrameParser(masked=True)``), echoed, ponged or closed. The server that
owns it does the I/O: :class:`~wsx.tools.echo_server.EchoServer` on one
:mod:`selectors` loop, :class:`wsx.testing.Server` on a thread per
connection with a script of faults.
"""

from __future__ import annotations

import base64
import binascii
import socket
from typing import Protocol

from ..core.frames import (
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    PyFrameParser,
    encode_close,
    encode_frame,
    parse_close,
)
from ..core.handshake import Headers, accept_key, parse_header_list
from ..core.utf8 import is_valid_utf8
from ..errors import CloseCode, FrameError
from .echo_http import HTTPRefusal, has_token, parse_request

__all__ = ["EchoConnection", "EchoHost"]

_MAX_HEAD = 16384  # bytes of request head accepted before answering 431


class EchoHost(Protocol):
    """What an :class:`EchoConnection` needs of its server (records and limits)."""

    subprotocols: tuple[str, ...]
    max_message_size: int | None

    def _record_request(self, target: str, headers: Headers) -> None: ...
    def _record_close(self, code: int | None, reason: str) -> None: ...
    def _record_message(self, opcode: int, message: bytes) -> None: ...
    def _log(self, line: str) -> None: ...


class EchoConnection:
    """One client connection: the handshake, then frames (sans-I/O apart from ``sock``).

    Everything it sends goes through :meth:`emit` (one frame) and every
    message it answers through :meth:`echo`: a scripted server
    (:mod:`wsx.testing`) overrides them, and :meth:`_frame`, to misbehave.
    """

    def __init__(self, server: EchoHost, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.upgraded = False
        self.closing = False  # a close frame was sent: nothing more is read or echoed
        self.reading = True
        # Set once everything is sent after ``closing``: the write side is shut
        # and the rest of the input is read and discarded until EOF or then.
        self.drain_deadline: float | None = None
        # Message in progress: opcode (0 when none) and the payload pieces.
        self.msg_opcode = 0
        self.msg_parts: list[bytes] = []
        limit = server.max_message_size
        self.parser = PyFrameParser(max_frame_size=limit, max_message_size=limit, masked=True)

    # -- input -----------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Handle bytes from the client; queue what must be sent."""
        if self.closing:
            return  # after our close frame, the rest is discarded
        self.rbuf += data
        if not self.upgraded:
            self._handshake()
            if not self.upgraded:
                return
        try:
            self._frames()
        except FrameError as exc:
            self.fail(exc.code, exc.message)

    def _handshake(self) -> None:
        end = self.rbuf.find(b"\r\n\r\n")
        if end == -1:
            if self.rbuf[:1] == b"\x16":  # a TLS handshake record: a wss:// client
                self._refuse(HTTPRefusal(
                    400, "Bad Request",
                    "this is a plain ws:// server: the client started a TLS handshake (wss://)"))
            elif len(self.rbuf) > _MAX_HEAD:
                self._refuse(HTTPRefusal(
                    431, "Request Header Fields Too Large",
                    f"the request head is longer than {_MAX_HEAD} bytes"))
            return
        head = bytes(self.rbuf[:end])
        del self.rbuf[: end + 4]
        try:
            response = self._upgrade(head)
        except HTTPRefusal as refusal:
            self._refuse(refusal)
            return
        self.upgraded = True
        self.wbuf += response
        self.server._log(f"{self.peer}: connected ({head.split(b' ', 2)[1].decode('latin-1')})")

    def _upgrade(self, head: bytes) -> bytes:
        method, target, version, headers = parse_request(head)
        self.server._record_request(target, headers)
        hint = "this is a WebSocket echo server: connect with a WebSocket client"
        if method != "GET":
            raise HTTPRefusal(400, "Bad Request", f"method {method!r} is not GET; {hint}")
        if version != "HTTP/1.1":
            raise HTTPRefusal(400, "Bad Request", f"{version!r} is not HTTP/1.1; {hint}")
        if not has_token(headers, "Upgrade", "websocket"):
            raise HTTPRefusal(
                400, "Bad Request",
                f"Upgrade header is {headers.get('Upgrade')!r}, expected 'websocket'; {hint}")
        if not has_token(headers, "Connection", "upgrade"):
            raise HTTPRefusal(
                400, "Bad Request",
                f"Connection header is {headers.get('Connection')!r}, expected 'Upgrade'; {hint}")
        ws_version = headers.get("Sec-WebSocket-Version")
        if ws_version != "13":
            raise HTTPRefusal(
                426, "Upgrade Required",
                f"Sec-WebSocket-Version is {ws_version!r}, only 13 is supported",
                "Sec-WebSocket-Version: 13\r\n")
        key = headers.get("Sec-WebSocket-Key", "")
        try:
            raw_key = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raw_key = b""
        if len(raw_key) != 16:
            raise HTTPRefusal(
                400, "Bad Request", f"Sec-WebSocket-Key {key!r} is not 16 bytes in base64")
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(key)}",
        ]
        offered = parse_header_list(headers.get("Sec-WebSocket-Protocol", ""))
        chosen = next((p for p in offered if p in self.server.subprotocols), None)
        if chosen is not None:
            lines.append(f"Sec-WebSocket-Protocol: {chosen}")
        # Sec-WebSocket-Extensions is not answered: every extension is declined.
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _refuse(self, refusal: HTTPRefusal) -> None:
        self.server._log(f"{self.peer}: refused with {refusal.status}: {refusal.detail}")
        self.wbuf += refusal.response()
        self.closing = True
        self.rbuf.clear()

    def _frames(self) -> None:
        """Parse the complete frames in ``rbuf`` (client frames: masked) and answer them.

        The frame rules (and their close codes) are wsx's own parser's, in its
        server-role mode: ``wsx.core.frames.PyFrameParser(masked=True)``.
        """
        data = bytes(self.rbuf)
        self.rbuf.clear()
        try:
            frames = self.parser.feed(data)
        except FrameError as exc:
            self._answer(exc.frames)  # the frames before the broken one count
            if not self.closing:
                raise
            return
        self._answer(frames)

    def _answer(self, frames: list[Frame]) -> None:
        for opcode, fin, _rsv, payload in frames:
            if self.closing:
                return  # after the close frame, the rest is discarded
            self._frame(opcode, fin, payload)

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == OP_PING:
            self.emit(OP_PONG, payload)
        elif opcode == OP_PONG:
            pass
        elif opcode == OP_CLOSE:
            code, reason = parse_close(payload)  # FrameError for a bad payload
            self.server._record_close(code, reason)
            detail = f"{code} {reason!r}" if reason else str(code)
            if code is None:
                detail = "no status code"
            self.server._log(f"{self.peer}: closed ({detail})")
            self.emit(OP_CLOSE, encode_close(code, reason))
            self.closing = True
        else:
            if opcode != OP_CONTINUATION:
                self.msg_opcode = opcode
            self.msg_parts.append(payload)
            if not fin:
                return
            message = b"".join(self.msg_parts)
            op = self.msg_opcode
            self.msg_opcode, self.msg_parts = 0, []
            if op == OP_TEXT and not is_valid_utf8(message):
                raise FrameError(CloseCode.INVALID_DATA, "text message is not valid UTF-8")
            self.server._record_message(op, message)
            self.echo(op, message)

    def echo(self, opcode: int, message: bytes) -> None:
        """Answer a complete text or binary message: the same message, as one frame."""
        self.emit(opcode, message)

    def emit(self, opcode: int, payload: bytes) -> None:
        """Queue one unmasked frame (FIN set) for the client."""
        self.wbuf += encode_frame(opcode, payload, masked=False)

    def fail(self, code: int, message: str) -> None:
        """Send a close frame with ``code`` and stop reading (the socket closes once flushed)."""
        if self.closing or not self.upgraded:
            self.closing = True
            return
        reason = message.encode("utf-8")[:123].decode("utf-8", "ignore")
        self.server._log(f"{self.peer}: closing with {code}: {message}")
        self.emit(OP_CLOSE, encode_close(code, reason))
        self.closing = True
