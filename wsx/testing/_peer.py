"""One connection of a :class:`wsx.testing.Server`: the echo, bent by the server's faults.

A :class:`Peer` is an :class:`~wsx.tools.echo_conn.EchoConnection` (the
sans-I/O echo: handshake, frames, close) with a thread of its own that does
its I/O on a :mod:`selectors` loop. The server's faults act at three points:

* what it sends: :meth:`Peer.emit` drops frames while the server stalls,
  splits messages into fragments and delays them (a queue of frames, each
  due at a time, sent in order);
* what it answers: :meth:`Peer._keep` records every frame, and does not
  answer pings while pongs are dropped;
* when it reads: not at all while the server has stopped reading.

Actions (:meth:`wsx.testing.Server.close`, ``reset``...) run on the
connection's thread through :meth:`Peer.post`; the server checks their
arguments before, so that an action cannot fail on that thread.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

from ..core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    encode_close,
    encode_frame,
    parse_close,
)
from ..core.http import REASONS, Refusal, Request
from ..errors import FrameError
from ..tools.echo_conn import EchoConnection, EchoHost
from ._records import ReceivedFrame

__all__ = ["Peer", "PeerHost", "HandshakeScript", "KINDS"]

#: Frame kinds by opcode, as :class:`ReceivedFrame` names them.
KINDS = {OP_CONTINUATION: "continuation", OP_TEXT: "text", OP_BINARY: "binary",
         OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}

_READ_SIZE = 262144


class HandshakeScript(NamedTuple):
    """How to answer one upgrade request (see :meth:`wsx.testing.Server.handshake`)."""

    status: int
    headers: tuple[tuple[str, str | None], ...]
    body: str
    delay: float


class PeerHost(EchoHost, Protocol):
    """What a :class:`Peer` needs of its server (:class:`wsx.testing.Server`): faults, records."""

    echo: bool
    close_timeout: float
    _stalled: bool
    _pongs_dropped: bool
    _reading_stopped: bool
    _fragments: int
    _delay: float

    def _record_frame(self, frame: ReceivedFrame) -> None: ...
    def _take_handshake(self) -> HandshakeScript | None: ...
    def _connected(self, peer: Peer) -> None: ...
    def _ended(self, peer: Peer) -> None: ...


class Peer(EchoConnection):
    """One client connection of a scripted server, on a thread of its own."""

    server: PeerHost

    def __init__(self, server: PeerHost, sock: socket.socket, peer: str, number: int) -> None:
        super().__init__(server, sock, peer)
        self.number = number  # 1, 2, ...: in the order of the upgrades
        self.outbox: deque[tuple[float, bytes]] = deque()  # (due, frame bytes), in order
        self.hold_until = 0.0  # nothing is sent before (a delayed handshake answer)
        self.commands: deque[tuple[Callable[[], object], threading.Event]] = deque()
        self.close_received = False
        self.close_queued = False  # our close frame is queued: no frame after it
        self.eof = False
        self.ended = False
        self.half_close_asked = False
        self.write_closed = False
        self.close_deadline: float | None = None  # our close frame sent: wait until then
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.thread = threading.Thread(target=self._run, name=f"wsx-testing:{peer}", daemon=True)

    # -- what is sent ----------------------------------------------------
    def emit(self, opcode: int, payload: bytes) -> None:
        """The echo's answers (messages, pongs, close): dropped while the server stalls."""
        if not self.server._stalled:
            self.queue(opcode, payload)

    def echo(self, opcode: int, message: bytes) -> None:
        """Echo a message, unless the server only records them (``echo=False``)."""
        if self.server.echo:
            self.emit(opcode, message)

    def queue(self, opcode: int, payload: bytes) -> None:
        """Queue a message (fragmented and delayed as the server says) or a control frame.

        Nothing is queued after a close frame (use :meth:`queue_raw` for that).
        """
        if self.write_closed or self.ended or self.close_queued:
            return
        self.close_queued = opcode == OP_CLOSE
        server = self.server
        due = time.monotonic()
        if opcode in (OP_TEXT, OP_BINARY):
            due += server._delay
            data = b"".join(_fragments(opcode, payload, server._fragments))
        else:
            data = encode_frame(opcode, payload, masked=False)
        self.outbox.append((due, data))

    def queue_raw(self, data: bytes) -> None:
        """Queue bytes as they are (a broken frame, say), after what is queued already."""
        if not (self.write_closed or self.ended):
            self.outbox.append((time.monotonic(), data))

    def send_close(self, payload: bytes) -> None:
        """Start the close handshake with a close frame's ``payload`` (nothing if closing).

        The payload is the server's to check: ``encode_close``
        made it (from :meth:`wsx.testing.Server.close`).
        """
        if self.closing or not self.upgraded:
            return
        self.queue(OP_CLOSE, payload)
        self.closing = True

    # -- what is received ------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes from the client; after our own close frame, only recorded (up to its close)."""
        if not (self.closing and self.upgraded and not self.close_received):
            super().receive(data)
            return
        try:
            frames = self.protocol.parser.feed(data)
        except FrameError as exc:
            frames = exc.frames
            self.close_received = True  # nothing more can be parsed
        for opcode, fin, _rsv, payload in frames:
            if not self.close_received:
                self._keep(opcode, fin, payload)  # recorded; nothing is answered now

    def _keep(self, opcode: int, fin: bool, payload: bytes) -> bool:
        """Record every frame; keep it from the echo as the server's faults say."""
        server = self.server
        server._record_frame(ReceivedFrame(KINDS.get(opcode, str(opcode)), payload, fin,
                                           self.number))
        if opcode == OP_CLOSE and (self.closing or server._stalled):
            self.close_received = True  # not answered: we sent ours, or we are stalled
            try:
                code, reason = parse_close(payload)
            except FrameError:
                code, reason = None, ""
            server._record_close(code, reason)
            return False
        if opcode == OP_PING and server._pongs_dropped:
            return False
        if opcode == OP_CLOSE:
            self.close_received = True  # the echo answers it
        return True

    def _upgrade(self, request: Request) -> bytes:
        script = self.server._take_handshake()
        response = super()._upgrade(request)  # a request that is not an upgrade stays refused
        if script is None:
            return response
        if script.delay > 0:
            self.hold_until = time.monotonic() + script.delay
        if script.status != 101:
            headers = [(k, v) for k, v in script.headers if v is not None]
            raise Refusal(script.status, script.body or _phrase(script.status), headers)
        return _with_headers(response, script.headers)

    # -- actions (from other threads) ------------------------------------
    def post(self, action: Callable[[], object], timeout: float = 5.0, *,
             wait: bool = True) -> bool:
        """Run ``action`` on the connection's thread; True once it ran (False: it ended).

        With ``wait=False``, or on the connection's own thread (in a ``log``
        callback, which cannot wait for itself), it is queued, and True
        returned at once: it runs once the thread's current step is done.
        """
        done = threading.Event()
        self.commands.append((action, done))
        self.wake()
        if not wait or threading.current_thread() is self.thread:
            return True
        deadline = time.monotonic() + timeout
        while not done.wait(0.05):
            if self.ended or not self.thread.is_alive() or time.monotonic() > deadline:
                return done.is_set()
        return True

    def wake(self) -> None:
        """Make the thread look at the server's faults and its commands again."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def reset(self) -> None:
        """End the connection with a TCP reset (RST), now (on the connection's thread)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.ended = True

    def half_close(self) -> None:
        """Shut the write side (a FIN, no close frame) once what is queued is sent."""
        self.half_close_asked = True

    def going_away(self, timeout: float) -> None:
        """The server stops: close with 1001, and give the client ``timeout`` s to answer."""
        if self.upgraded and not self.closing and not self.write_closed:
            self.queue(OP_CLOSE, encode_close(1001, "server shutting down"))
        self.closing = True
        deadline = time.monotonic() + timeout
        self.close_deadline = min(self.close_deadline or deadline, deadline)

    # -- the thread ------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ)
        registered = 0
        try:
            while True:
                self._run_commands()
                now = time.monotonic()
                self._send(now)
                if self._finished(now):
                    break
                events = self._events()
                if events != registered:
                    if registered:
                        sel.unregister(self.sock)
                    if events:
                        sel.register(self.sock, events)
                    registered = events
                for key, _ in sel.select(self._timeout(now)):
                    if key.fileobj is self._wake_r:
                        try:
                            self._wake_r.recv(4096)
                        except OSError:
                            pass
                    elif _ & selectors.EVENT_READ:
                        self._read()
        except OSError:
            pass  # the socket broke: the connection is over
        finally:
            self.ended = True
            sel.close()
            for sock in (self.sock, self._wake_r, self._wake_w):
                try:
                    sock.close()
                except OSError:
                    pass
            self._run_commands()  # release whoever posted one
            self.server._ended(self)

    def _run_commands(self) -> None:
        while self.commands:
            action, done = self.commands.popleft()
            try:
                if not self.ended:
                    action()
            finally:
                done.set()

    def _read(self) -> None:
        try:
            data = self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset by the client
        if not data:
            self.eof = True
            return
        was_upgraded = self.upgraded
        self.receive(data)
        if self.upgraded and not was_upgraded:
            self.server._connected(self)

    def _send(self, now: float) -> None:
        if now < self.hold_until:
            return
        while self.outbox and self.outbox[0][0] <= now:
            self.wbuf += self.outbox.popleft()[1]
        if self.wbuf and not self.write_closed:
            try:
                n = self.sock.send(self.wbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.eof = True
                self.wbuf.clear()
                return
            del self.wbuf[:n]
        if self.half_close_asked and not self.wbuf and not self.outbox and not self.write_closed:
            self.write_closed = True
            self.sock.shutdown(socket.SHUT_WR)

    def _finished(self, now: float) -> bool:
        if self.ended or self.eof:
            return True
        if not self.closing:
            return False
        # The whole close (our frame out, the client's in, its FIN) has one deadline.
        if self.close_deadline is None:
            self.close_deadline = now + self.server.close_timeout
        if now >= self.close_deadline:
            return True
        if self.wbuf or self.outbox:
            return False
        if self.upgraded and not self.close_received and not self.write_closed:
            return False  # our close frame is out: wait for the client's
        if not self.write_closed:
            # The server closes the TCP connection first (RFC 6455 section 7.1.1),
            # then reads until the client's FIN so that no reset destroys the close.
            self.write_closed = True
            self.sock.shutdown(socket.SHUT_WR)
        return False

    def _events(self) -> int:
        events = 0
        reading_stopped = self.server._reading_stopped and self.upgraded
        if not self.eof and not reading_stopped:
            events |= selectors.EVENT_READ
        if self.wbuf and not self.write_closed and time.monotonic() >= self.hold_until:
            events |= selectors.EVENT_WRITE
        return events

    def _timeout(self, now: float) -> float | None:
        wake_at = []
        if self.outbox:
            wake_at.append(max(self.outbox[0][0], self.hold_until))
        elif self.wbuf and self.hold_until > now:
            wake_at.append(self.hold_until)  # else the selector says when it is writable
        if self.close_deadline is not None:
            wake_at.append(self.close_deadline)
        return max(0.0, min(wake_at) - now) if wake_at else None


def _phrase(status: int) -> str:
    return REASONS.get(status) or "Scripted Refusal"


def _fragments(opcode: int, payload: bytes, pieces: int) -> list[bytes]:
    """``payload`` as a message of ``pieces`` frames (fewer when it is shorter)."""
    pieces = max(1, min(pieces, len(payload)))
    size = -(-len(payload) // pieces) if payload else 0
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] if size else [b""]
    return [
        encode_frame(opcode if i == 0 else OP_CONTINUATION, part, fin=i == len(parts) - 1,
                     masked=False)
        for i, part in enumerate(parts)
    ]


def _with_headers(response: bytes, headers: tuple[tuple[str, str | None], ...]) -> bytes:
    """A ``101`` answer with ``headers`` set (replacing any of the same name; None removes)."""
    lines = response.decode("latin-1").split("\r\n")[:-2]  # no blank line
    for name, value in headers:
        lines = [ln for ln in lines if ln.partition(":")[0].strip().lower() != name.lower()]
        if value is not None:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
