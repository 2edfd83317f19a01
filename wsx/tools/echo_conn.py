"""One echo server connection, sans-I/O apart from its socket (see :mod:`.echo_server`).

:class:`EchoConnection` takes the bytes a client sent and queues its
answers in ``wbuf``: the upgrade handshake (the core's
:class:`~wsx.core.handshake.ServerHandshake`: validated, answered ``101`` or
refused with the status of the fault), then frames, through the core's
:class:`~wsx.core.protocol.Protocol` on the server's side (masked frames,
UTF-8 checked as it arrives, the size limit, close rules), echoed, ponged
or closed. The server that owns it does the I/O:
:class:`~wsx.tools.echo_server.EchoServer` on one :mod:`selectors` loop,
:class:`wsx.testing.Server` on a thread per connection with a script of
faults.
"""

from __future__ import annotations

import socket
from typing import Protocol as Interface

from ..core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PONG,
    OP_TEXT,
    Frame,
    encode_close,
    encode_frame,
)
from ..core.handshake import Headers, Refusal, Request, ServerHandshake
from ..core.protocol import Event, Protocol
from ..core.side import Side
from ..errors import FrameError

__all__ = ["EchoConnection", "EchoHost"]


class EchoHost(Interface):
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
    (:mod:`wsx.testing`) overrides them, :meth:`_upgrade` and
    :meth:`_keep`, to misbehave.
    """

    def __init__(self, server: EchoHost, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.wbuf = bytearray()
        self.upgraded = False
        self.closing = False  # a close frame was sent: nothing more is read or echoed
        self.reading = True
        # Set once everything is sent after ``closing``: the write side is shut
        # and the rest of the input is read and discarded until EOF or then.
        self.drain_deadline: float | None = None
        self.handshake = ServerHandshake(subprotocols=server.subprotocols)
        limit = server.max_message_size
        self.protocol = Protocol(max_message_size=limit, side=Side.SERVER)

    # -- input -----------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Handle bytes from the client; queue what must be sent."""
        if self.closing:
            return  # after our close frame, the rest is discarded
        if not self.upgraded:
            data = self._handshake(data)
            if not data:
                return
        try:
            frames = self.protocol.parser.feed(data)
        except FrameError as exc:
            self._answer(exc.frames)  # the frames before the broken one count
            if not self.closing:
                self.fail(exc.code, exc.message)
            return
        self._answer(frames)

    def _handshake(self, data: bytes) -> bytes:
        """Read the request; once upgraded, return the bytes after it (frames)."""
        try:
            request = self.handshake.receive_data(data)
            if request is None:
                return b""
            self.server._record_request(request.target, request.headers)
            response = self._upgrade(request)
        except Refusal as refusal:
            self._refuse(refusal)
            return b""
        self.upgraded = True
        self.wbuf += response
        self.server._log(f"{self.peer}: connected ({request.target})")
        return request.leftover

    def _upgrade(self, request: Request) -> bytes:
        """The ``101`` answer to ``request`` (``Refusal`` for one that is not an upgrade).

        The subprotocol selected is the first the client offers that the
        server accepts (the client's order).
        """
        chosen = next((p for p in request.subprotocols if p in self.server.subprotocols), None)
        return self.handshake.accept(request, subprotocol=chosen).response

    def _refuse(self, refusal: Refusal) -> None:
        self.server._log(f"{self.peer}: refused with {refusal.status}: {refusal.detail}")
        self.wbuf += refusal.response_bytes()
        self.closing = True

    def _answer(self, frames: list[Frame]) -> None:
        """The frames of one read: those :meth:`_keep` lets through go to the protocol, at once.

        One ``receive_frames`` per read, as the protocol expects: its check of
        a text frame still arriving runs once, after the whole frames.
        """
        kept: list[Frame] = []
        for frame in frames:
            if self.closing:
                break  # after our close frame, the rest is discarded
            if self._keep(frame.opcode, frame.fin, frame.payload):
                kept.append(frame)
                if frame.opcode == OP_CLOSE:
                    break  # nothing after the client's close counts
        if self.closing:
            return
        for event in self.protocol.receive_frames(kept):
            if self.closing:
                return
            self._event(event)

    def _keep(self, opcode: int, fin: bool, payload: bytes) -> bool:
        """Whether a frame from the client goes to the protocol (a scripted server may say no)."""
        return True

    def _event(self, shape: Event) -> None:
        event = (shape, b"") if isinstance(shape, str) else shape  # "ping": ("ping", b"")
        kind = event[0]
        if kind == "ping":
            self.emit(OP_PONG, event[1])
        elif kind == "text" or kind == "binary":
            opcode = OP_TEXT if kind == "text" else OP_BINARY
            message = event[1].encode("utf-8") if kind == "text" else event[1]
            self.server._record_message(opcode, message)
            self.echo(opcode, message)
        elif kind == "close":
            code, reason = event[1], event[2]
            self.server._record_close(code, reason)
            detail = "no status code" if code is None else (
                f"{code} {reason!r}" if reason else str(code))
            self.server._log(f"{self.peer}: closed ({detail})")
            self.emit(OP_CLOSE, encode_close(code, reason))  # the reason echoed too
            self.closing = True
        elif kind == "error":
            self.fail(event[1].code, event[1].message)

    def echo(self, opcode: int, message: bytes) -> None:
        """Answer a complete text or binary message: the same message, as one frame."""
        self.emit(opcode, message)

    def emit(self, opcode: int, payload: bytes) -> None:
        """Queue one frame (FIN set, unmasked: a server's) for the client."""
        self.wbuf += encode_frame(opcode, payload, masked=Side.SERVER.masks)

    def fail(self, code: int, message: str) -> None:
        """Send a close frame with ``code`` and stop reading (the socket closes once flushed)."""
        if self.closing or not self.upgraded:
            self.closing = True
            return
        reason = message.encode("utf-8")[:123].decode("utf-8", "ignore")
        self.server._log(f"{self.peer}: closing with {code}: {message}")
        self.emit(OP_CLOSE, encode_close(code, reason))
        self.closing = True
