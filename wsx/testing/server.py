"""A WebSocket server that misbehaves on purpose, for testing clients.

:class:`Server` listens on 127.0.0.1 on a free port and echoes by default.
A test scripts its faults (refuse connections, answer the handshake with a
status, stall, drop pongs, stop reading, fragment, delay, close, reset,
half-close, send invalid UTF-8 or a protocol violation), then asserts on what
it received (:attr:`~Server.requests`, :attr:`~Server.frames`,
:attr:`~Server.messages`, :attr:`~Server.closes`) with the ``wait_for``
helpers, which fail with :class:`TimeoutError` after their timeout. The
records keep the newest ``max_records`` entries each (10 000 by default);
:attr:`~Server.dropped` counts the older ones let go.

Every method may be called from any thread, the server's own ``log``
callback included. Each connection runs on a daemon thread of its own, so a
server a test forgets never blocks the interpreter's exit; :meth:`Server.stop`
(the end of a ``with`` block) closes every connection.
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from ..core.frames import (
    DEFAULT_MAX_SIZE,
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    encode_close,
    encode_frame,
)
from ..core.handshake import ServerHandshake
from ..core.headers import Headers, check_header
from ._peer import HandshakeScript, Peer
from ._records import RECORDS, ReceivedFrame, Records, Request

__all__ = ["Server", "Request", "ReceivedFrame", "VIOLATIONS"]

#: The protocol violations :meth:`Server.send_protocol_violation` can send,
#: each as the raw bytes of one server frame.
VIOLATIONS: dict[str, bytes] = {
    "reserved_opcode": bytes([0x83, 0]),            # opcode 0x3 is reserved
    "rsv1": bytes([0xC1, 2]) + b"hi",               # RSV1 without an extension
    "masked": bytes([0x81, 0x82, 1, 2, 3, 4, 0x69, 0x6B]),  # a masked server frame
    "fragmented_control": bytes([0x09, 0]),          # a ping without FIN
    "long_control": bytes([0x89, 126, 0, 126]) + b"x" * 126,  # a 126-byte ping
    "unexpected_continuation": bytes([0x80, 2]) + b"hi",  # no message to continue
}


class Server(Records):
    """An echo server on 127.0.0.1 with a script of faults; see :mod:`wsx.testing`.

    :param port: the TCP port; ``0`` (the default) picks a free one.
    :param subprotocols: subprotocols accepted (the first the client offers).
    :param max_message_size: the largest message accepted, in bytes (``None``:
        no limit); a bigger one fails the connection with close code 1009.
    :param echo: answer every text and binary message with the same message
        (the default); with False the messages are only recorded.
    :param close_timeout: seconds a closing connection waits for the
        client's close frame and FIN before it is dropped.
    :param log: called with one line per connection event (``print`` will do),
        on the thread of the connection (or of the listener, for a refused one);
        it may call the server's methods, :meth:`stop` included.
    :param max_records: how many entries each record (:attr:`requests`,
        :attr:`frames`, :attr:`messages`, :attr:`closes`) keeps: the newest
        ones, the older ones are dropped and counted in :attr:`dropped`
        (``None``: no limit, memory grows with the traffic).

    Start it with :meth:`start` or a ``with`` block (or the ``wsx_server``
    pytest fixture, :mod:`wsx.testing.plugin`).
    """

    def __init__(self, port: int = 0, *, subprotocols: Sequence[str] = (),
                 max_message_size: int | None = DEFAULT_MAX_SIZE, echo: bool = True,
                 close_timeout: float = 2.0, log: Callable[[str], object] | None = None,
                 max_records: int | None = 10_000) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
        if max_message_size is not None and (
                not isinstance(max_message_size, int) or max_message_size <= 0):
            raise ValueError(
                f"max_message_size must be a positive int or None, not {max_message_size!r}")
        if max_records is not None:
            _count("max_records", max_records)
        self.subprotocols: tuple[str, ...] = (
            (subprotocols,) if isinstance(subprotocols, str) else tuple(subprotocols))
        ServerHandshake(subprotocols=self.subprotocols)  # ValueError for one that is not a token
        self.max_message_size = max_message_size
        self.echo = echo
        self.close_timeout = _seconds("close_timeout", close_timeout)
        self.log = log
        self.max_records = max_records
        """How many entries each record keeps (the newest); ``None``: all."""
        self._requested_port = port
        self._port = 0
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._cond = threading.Condition(threading.RLock())
        self._peers: list[Peer] = []
        self.requests: list[Request] = []
        """The HTTP requests received (upgrades or not), in order: the newest ``max_records``."""
        self.frames: list[ReceivedFrame] = []
        """The frames received from clients, in order (all connections): the newest
        ``max_records``."""
        self.messages: list[tuple[str, str | bytes]] = []
        """The complete messages received, ``("text", str)`` or ``("binary", bytes)``, in
        order: the newest ``max_records``."""
        self.closes: list[tuple[int | None, str]] = []
        """``(code, reason)`` of the close frames received (``None``: no status code), in
        order: the newest ``max_records``."""
        self.dropped: dict[str, int] = dict.fromkeys(RECORDS, 0)
        """How many entries each record dropped to keep to ``max_records``, by name:
        ``dropped["messages"]`` and so on (all 0 until one is full)."""
        self.attempts = 0
        """TCP connections accepted, refused ones included."""
        self.connections = 0
        """Connections upgraded: upgrade requests accepted for a 101 (counted when the
        request is read, before a :meth:`handshake` ``delay``)."""
        self.disconnects = 0
        """Upgraded connections that have ended."""
        self.clear_faults()

    # -- lifecycle -------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on; 0 before :meth:`start`."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/`` (``RuntimeError`` before :meth:`start`)."""
        if self._listener is None:
            raise RuntimeError("the wsx.testing.Server is not started: call start() first")
        return f"ws://127.0.0.1:{self._port}/"

    @property
    def open_connections(self) -> int:
        """Upgraded connections now open."""
        with self._cond:
            return sum(1 for p in self._peers if p.upgraded and not p.ended)

    def start(self) -> Server:
        """Listen (on a daemon thread) and return ``self``; ``RuntimeError`` if started."""
        if self._listener is not None:
            raise RuntimeError(f"the wsx.testing.Server is already started on {self.url}")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self._requested_port))
            listener.listen(128)
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"cannot listen on 127.0.0.1:{self._requested_port}: "
                                     f"{exc.strerror or exc}") from exc
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True,
                                           name=f"wsx-testing-server:{self._port}")
        self._accepting.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening and close every connection (close code 1001), within ``timeout`` s.

        It waits for the connections to end. Called on one of the server's own
        threads (from the ``log`` callback), it stops listening and starts
        every close, the one of the calling connection once the callback
        returns, and waits for none of them; a later :meth:`stop` (the end
        of the ``with`` block, the fixture's teardown) waits.
        """
        with self._cond:
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
            except OSError:
                pass
            listener.close()
        wait = not self._on_server_thread()
        if wait and self._accepting is not None:
            self._accepting.join(timeout)
        with self._cond:
            peers = list(self._peers)
        for peer in peers:
            peer.post(functools.partial(peer.going_away, timeout), timeout, wait=wait)
        if wait:
            for peer in peers:
                peer.thread.join(timeout + 0.5)

    def __enter__(self) -> Server:
        """Start the server (unless started already); :meth:`stop` it on exit."""
        return self if self._listener is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._listener is not None else "not started"
        return f"<wsx.testing.Server {where} connections={self.connections}>"

    # -- faults that last until changed ------------------------------------
    def clear_faults(self) -> None:
        """Back to a plain echo server: every fault below is cleared."""
        with self._cond:
            self._refusals = 0
            self._handshakes: list[tuple[HandshakeScript, int | None]] = []
            self._stalled = False
            self._pongs_dropped = False
            self._reading_stopped = False
            self._fragments = 1
            self._delay = 0.0
        self._wake_all()

    def refuse(self, n: int = 1) -> None:
        """Reset (TCP RST) the next ``n`` TCP connections as soon as they are accepted."""
        self._refusals = _count("refuse", n, 0)

    def handshake(self, status: int = 101, headers: Mapping[str, str | None] | None = None, *,
                  body: str = "", delay: float = 0.0, times: int | None = 1) -> None:
        """Answer the next ``times`` upgrade requests this way (``None``: all, until cleared).

        ``status`` other than 101 refuses the upgrade with that status (and
        ``body``, sent with a final newline, or the status's phrase); with
        101, ``headers`` replace or add response headers (a ``None`` value
        removes one, e.g. ``{"Sec-WebSocket-Accept": "bad"}``).
        ``delay`` seconds pass before the answer is sent.

        Header names and values are ``str`` of Latin-1 characters (they go out
        as bytes): ``TypeError`` or ``ValueError`` here otherwise.
        """
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status from 100 to 599, not {status!r}")
        if not isinstance(body, str):
            raise TypeError(f"body must be a str, not {body!r}")
        items = tuple((headers or {}).items())
        for name, value in items:
            if not isinstance(name, str) or not (value is None or isinstance(value, str)):
                raise TypeError(f"a handshake header is a str name and a str or None value, "
                                f"not {name!r}: {value!r}")
            try:
                f"{name}{value or ''}".encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"the handshake header {name!r}: {value!r} is not Latin-1 "
                                 "(HTTP headers are bytes)") from None
        if status != 101:  # a refusal is written as a well-formed response
            for name, value in items:
                if value is not None:
                    check_header(name, value)
        script = HandshakeScript(status, items, body, _seconds("delay", delay))
        with self._cond:
            self._handshakes.append((script, None if times is None else _count("times", times)))

    def stall(self, on: bool = True) -> None:
        """Stop answering: no echo, no pong, no close answer; frames are still read.

        What the test sends itself (:meth:`send`, :meth:`ping`, :meth:`close`,
        :meth:`send_raw`...) still goes out: a stalled server can answer late.
        """
        self._stalled = bool(on)
        self._wake_all()

    def drop_pongs(self, on: bool = True) -> None:
        """Stop answering pings (messages are still echoed)."""
        self._pongs_dropped = bool(on)

    def stop_reading(self, on: bool = True) -> None:
        """Stop reading the sockets after the handshake, so that clients' writes back up."""
        self._reading_stopped = bool(on)
        self._wake_all()

    def fragment(self, n: int) -> None:
        """Send every message as ``n`` frames (1: unfragmented)."""
        self._fragments = _count("fragment", n)

    def delay(self, seconds: float) -> None:
        """Send every message ``seconds`` late (in order; 0: at once)."""
        self._delay = _seconds("delay", seconds)

    # -- actions on the open connections -----------------------------------
    # Each checks its arguments here, in the caller, and raises for one that
    # cannot be sent: the connections' threads only get what they can send.
    def send(self, message: str | bytes) -> int:
        """Send a text (``str``) or binary (bytes) message to every open connection.

        ``TypeError`` for another type; ``UnicodeEncodeError`` for a ``str``
        that has no UTF-8 (a lone surrogate).
        """
        if isinstance(message, str):
            op, payload = OP_TEXT, message.encode("utf-8")
        elif isinstance(message, (bytes, bytearray, memoryview)):
            op, payload = OP_BINARY, bytes(message)
        else:
            raise TypeError(f"send takes str or bytes, not {type(message).__name__}")
        return self._each("send", lambda p: p.queue(op, payload))

    def ping(self, payload: bytes = b"") -> int:
        """Send a ping to every open connection (their pongs land in :attr:`frames`).

        ``TypeError`` for a payload that is not bytes, :class:`wsx.FrameEncodeError`
        (a ``ValueError``) for one over 125 bytes.
        """
        data = _bytes("ping", payload)
        encode_frame(OP_PING, data, masked=False)  # FrameEncodeError over 125 bytes
        return self._each("ping", lambda p: p.queue(OP_PING, data))

    def close(self, code: int | None = 1000, reason: str = "") -> int:
        """Start the close handshake with ``code`` and ``reason`` on every open connection.

        ``code`` is one a close frame may carry (1000-1003, 1007-1014,
        3000-4999; ``None``: a close frame without a status code, and then
        no reason) and ``reason`` at most 123 bytes of UTF-8, the rules of
        ``wsx.core.frames.encode_close``: else :class:`wsx.FrameEncodeError`
        (a ``ValueError``) here, naming the value, and nothing is sent.
        ``TypeError`` for a code that is not an int or a reason that is not a str.
        (A broken close frame can still be sent with :meth:`send_raw`.)
        """
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise TypeError(f"close code must be an int or None, not {code!r}")
        if not isinstance(reason, str):
            raise TypeError(f"close reason must be a str, not {reason!r}")
        payload = encode_close(code, reason)  # FrameEncodeError: the core's close rules
        return self._each("close", lambda p: p.send_close(payload))

    def reset(self) -> int:
        """Reset (TCP RST, no close frame) every open connection."""
        return self._each("reset", Peer.reset)

    def half_close(self) -> int:
        """Shut the write side (FIN without a close frame) of every open connection."""
        return self._each("half_close", Peer.half_close)

    def send_invalid_utf8(self) -> int:
        """Send a text frame whose payload is not UTF-8 (the client must close with 1007)."""
        return self._each("send_invalid_utf8",
                          lambda p: p.queue_raw(bytes([0x81, 4]) + b"\xce\xba\xff\xfe"))

    def send_protocol_violation(self, kind: str = "reserved_opcode") -> int:
        """Send a frame that breaks RFC 6455 (the client must close with 1002).

        ``kind`` is one of :data:`wsx.testing.VIOLATIONS`.
        """
        if kind not in VIOLATIONS:
            raise ValueError(f"unknown violation {kind!r}; one of {', '.join(VIOLATIONS)}")
        data = VIOLATIONS[kind]
        return self._each("send_protocol_violation", lambda p: p.queue_raw(data))

    def send_raw(self, data: bytes) -> int:
        """Send ``data`` as it is to every open connection (after what is queued).

        ``TypeError`` for data that is not bytes (``bytes(5)`` would be five zeros).
        """
        raw = _bytes("send_raw", data)
        return self._each("send_raw", lambda p: p.queue_raw(raw))

    # -- called by the connections ------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, addr = listener.accept()
            except OSError:
                return  # stopped
            with self._cond:
                self.attempts += 1
                refused = self._refusals > 0
                if refused:
                    self._refusals -= 1
                self._cond.notify_all()
            if refused:
                self._log(f"{addr[0]}:{addr[1]}: refused (reset)")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = Peer(self, sock, f"{addr[0]}:{addr[1]}", 0)
            with self._cond:
                self._peers.append(peer)
            peer.thread.start()

    def _take_handshake(self) -> HandshakeScript | None:
        with self._cond:
            if not self._handshakes:
                return None
            script, left = self._handshakes[0]
            if left is not None:
                if left <= 1:
                    self._handshakes.pop(0)
                else:
                    self._handshakes[0] = (script, left - 1)
            return script

    def _record_request(self, target: str, headers: Headers) -> None:
        self._record("requests", Request(target, headers))

    def _connected(self, peer: Peer) -> None:
        with self._cond:
            self.connections += 1
            peer.number = self.connections
            self._cond.notify_all()

    def _ended(self, peer: Peer) -> None:
        with self._cond:
            if peer in self._peers:
                self._peers.remove(peer)
            if peer.upgraded:
                self.disconnects += 1
            self._cond.notify_all()

    def _log(self, line: str) -> None:
        if self.log is not None:
            try:
                self.log(line)
            except Exception:  # noqa: BLE001 - a broken log must not stop the server
                pass

    # -- helpers -----------------------------------------------------------
    def _each(self, action: str, do: Callable[[Peer], object]) -> int:
        with self._cond:
            peers = [p for p in self._peers if p.upgraded and not p.ended]
        if not peers:
            raise RuntimeError(f"wsx.testing.Server.{action}: no connection is open "
                               "(wait_for_connections() first)")
        wait = not self._on_server_thread()  # a thread of ours must not wait for another
        reached = 0
        for peer in peers:
            reached += peer.post(functools.partial(do, peer), wait=wait)
        return reached

    def _on_server_thread(self) -> bool:
        """True on the listener's thread or a connection's (in the ``log`` callback)."""
        me = threading.current_thread()
        with self._cond:
            return me is self._accepting or any(p.thread is me for p in self._peers)

    def _wake_all(self) -> None:
        with self._cond:
            peers = list(self._peers)
        for peer in peers:
            peer.wake()

def _count(name: str, value: int, least: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int of at least {least}, not {value!r}")
    return value


def _bytes(action: str, data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{action} takes bytes, not {type(data).__name__} {data!r:.60}")
    return bytes(data)


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)
