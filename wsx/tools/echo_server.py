"""A small RFC 6455 echo server, with no dependency beyond the standard library.

It exists so that wsx can be tried without a server of one's own (``wsx``
with no URL, ``wsx echo-server``), and as an independent peer for tests. It
is built on wsx's sans-I/O pieces (the frame parser in its server-role mode,
``PyFrameParser(masked=True)``, the frame encoder, close payload parsing, the
``Sec-WebSocket-Accept`` computation) and runs every connection on one
:mod:`selectors` loop in a background thread.

What it does with each connection:

* answers a valid upgrade request with ``101 Switching Protocols``; anything
  else gets ``400 Bad Request`` (``426 Upgrade Required`` for a
  ``Sec-WebSocket-Version`` other than 13) and is closed;
* declines every extension (no ``permessage-deflate``) and selects the first
  offered subprotocol among ``subprotocols`` (none by default);
* sends every text or binary message back as one frame (fragmented messages
  are reassembled first);
* answers pings with pongs carrying the same payload, ignores pongs;
* answers a close frame with a close frame carrying the same code and reason,
  then closes the TCP connection;
* fails the connection with close code 1002 (protocol error), 1007 (invalid
  UTF-8) or 1009 (message too big) when a client breaks the protocol.

>>> from wsx.tools.echo_server import EchoServer
>>> with EchoServer() as server:                  # 127.0.0.1, a free port
...     print(server.url)                         # doctest: +SKIP
ws://127.0.0.1:40123/
"""

from __future__ import annotations

import base64
import binascii
import errno
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType

from ..core.frames import (
    DEFAULT_MAX_SIZE,
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

__all__ = ["EchoServer"]

_MAX_HEAD = 16384  # bytes of request head accepted before answering 431
_READ_SIZE = 262144
_HIGH_WATER = 4 * 1024 * 1024  # stop reading a client while this much is queued for it


class _Connection:
    """One client connection: the handshake, then frames (sans-I/O apart from ``sock``)."""

    def __init__(self, server: EchoServer, sock: socket.socket, peer: str) -> None:
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
            self.wbuf += encode_frame(OP_PONG, payload, masked=False)
        elif opcode == OP_PONG:
            pass
        elif opcode == OP_CLOSE:
            code, reason = parse_close(payload)  # FrameError for a bad payload
            self.server._record_close(code, reason)
            detail = f"{code} {reason!r}" if reason else str(code)
            if code is None:
                detail = "no status code"
            self.server._log(f"{self.peer}: closed ({detail})")
            self.wbuf += encode_frame(OP_CLOSE, encode_close(code, reason), masked=False)
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
            self.wbuf += encode_frame(op, message, masked=False)
            self.server._count_message()

    def fail(self, code: int, message: str) -> None:
        """Send a close frame with ``code`` and stop reading (the socket closes once flushed)."""
        if self.closing or not self.upgraded:
            self.closing = True
            return
        reason = message.encode("utf-8")[:123].decode("utf-8", "ignore")
        self.server._log(f"{self.peer}: closing with {code}: {message}")
        self.wbuf += encode_frame(OP_CLOSE, encode_close(code, reason), masked=False)
        self.closing = True


class EchoServer:
    """A WebSocket echo server on its own thread.

    :param host: the address to listen on (default ``127.0.0.1``).
    :param port: the TCP port; ``0`` (the default) picks a free one, see
        :attr:`port` and :attr:`url` once started.
    :param subprotocols: subprotocols the server accepts; it selects the first
        one the client offers that is in this list.
    :param max_message_size: the largest message echoed, in bytes (``None``
        for no limit); a bigger one fails the connection with close code 1009.
    :param log: called with one line of text per connection event (connected,
        refused, closed, dropped), on the server's thread; ``print`` will do.

    Use :meth:`start` and :meth:`stop`, or a ``with`` block. The server keeps
    a few counters for diagnostics: :attr:`connections` (upgrades accepted),
    :attr:`messages` (messages echoed), and the last 1000 :attr:`requests`
    (``(target, Headers)``) and :attr:`closes` (``(code, reason)`` of the
    close frames received from clients).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        subprotocols: Sequence[str] = (),
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        log: Callable[[str], object] | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
        if max_message_size is not None and (
            not isinstance(max_message_size, int) or max_message_size <= 0
        ):
            raise ValueError(
                f"max_message_size must be a positive int or None, not {max_message_size!r}")
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        self.host = host
        self._requested_port = port
        self.subprotocols: tuple[str, ...] = tuple(subprotocols)
        self.max_message_size = max_message_size
        self.log = log
        self.connections = 0
        """Number of WebSocket connections accepted (upgrades answered with 101)."""
        self.messages = 0
        """Number of messages echoed."""
        self.requests: deque[tuple[str, Headers]] = deque(maxlen=1000)
        """The last request targets and headers received (upgrades or not)."""
        self.closes: deque[tuple[int | None, str]] = deque(maxlen=1000)
        """The last ``(code, reason)`` close frames received from clients."""
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = False
        self._stop_timeout = 2.0
        self._draining: set[_Connection] = set()  # connections with a drain_deadline
        self._port = 0

    # -- public ----------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``port=0``); 0 before :meth:`start`."""
        return self._port

    @property
    def url(self) -> str:
        """The ``ws://`` URL to connect to (raises ``RuntimeError`` before :meth:`start`)."""
        if self._listener is None:
            raise RuntimeError("the echo server is not started: call start() first")
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self._port}/"

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EchoServer:
        """Bind, listen and serve in a daemon thread; return ``self``.

        Raises ``OSError`` when the address cannot be bound (its message names
        the host and port) and ``RuntimeError`` when already started.
        """
        if self._listener is not None:
            raise RuntimeError(f"the echo server is already started on {self.url}")
        try:
            infos = socket.getaddrinfo(self.host or None, self._requested_port,
                                       type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _name, address = infos[0]
            listener = socket.socket(family, kind, proto)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._requested_port}: "
                                     f"{exc.strerror or exc}") from exc
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(512)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._requested_port}: "
                                     f"{exc.strerror or exc}") from exc
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"wsx-echo-server:{self._port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close every connection (close code 1001) and stop listening.

        Waits up to ``timeout`` seconds for the clients to answer the close
        frames and for the server thread to end. Calling it twice is harmless.
        """
        thread = self._thread
        if thread is None:
            return
        self._stop_timeout = max(0.0, float(timeout))
        self._stopping = True
        self._wake()
        thread.join(timeout + 1.0)
        self._thread = None

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called from another thread.

        ``KeyboardInterrupt`` (Ctrl-C) stops the server and is re-raised.
        """
        if self._listener is None:
            self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()
            raise

    def __enter__(self) -> EchoServer:
        """Start the server unless it is already running; :meth:`stop` it on exit."""
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._listener is not None else "not started"
        return f"<EchoServer {where}>"

    # -- recording (called on the server thread) -------------------------
    def _record_request(self, target: str, headers: Headers) -> None:
        self.requests.append((target, headers))

    def _record_close(self, code: int | None, reason: str) -> None:
        self.closes.append((code, reason))

    def _log(self, line: str) -> None:
        log = self.log
        if log is not None:
            try:
                log(line)
            except Exception:  # noqa: BLE001 - a logging failure must not stop the server
                pass

    def _count_message(self) -> None:
        self.messages += 1

    # -- the loop --------------------------------------------------------
    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            try:
                wake.send(b"\0")
            except OSError:
                pass

    def _run(self) -> None:
        listener, wake_r = self._listener, self._wake_r
        assert listener is not None and wake_r is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, None)
        sel.register(wake_r, selectors.EVENT_READ, None)
        conns: dict[socket.socket, _Connection] = {}
        self._draining.clear()
        deadline: float | None = None
        try:
            while True:
                if self._stopping and deadline is None:
                    deadline = time.monotonic() + self._stop_timeout
                    sel.unregister(listener)
                    for conn in list(conns.values()):
                        conn.fail(CloseCode.GOING_AWAY, "server shutting down")
                        self._update(sel, conns, conn)
                now = time.monotonic()
                if deadline is not None and (not conns or now >= deadline):
                    break
                for conn in [c for c in self._draining if (c.drain_deadline or 0.0) <= now]:
                    self._drop(sel, conns, conn)
                wake_at = [c.drain_deadline or 0.0 for c in self._draining]
                if deadline is not None:
                    wake_at.append(deadline)
                timeout = max(0.0, min(wake_at) - now) if wake_at else None
                for key, events in sel.select(timeout):
                    sock = key.fileobj
                    if sock is listener:
                        self._accept(sel, conns, listener)
                    elif sock is wake_r:
                        try:
                            wake_r.recv(4096)
                        except OSError:
                            pass
                    else:
                        conn = conns.get(sock)  # type: ignore[call-overload]
                        if conn is None:
                            continue
                        if events & selectors.EVENT_READ:
                            self._read(conn)
                        if conn.wbuf:
                            self._flush(conn)
                        self._update(sel, conns, conn)
        finally:
            for conn in conns.values():
                _close(conn.sock)
            sel.close()
            listener.close()
            wake_r.close()
            if self._wake_w is not None:
                self._wake_w.close()
            self._listener = None
            self._wake_r = self._wake_w = None

    def _accept(self, sel: selectors.BaseSelector, conns: dict[socket.socket, _Connection],
                listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                                 errno.ECONNABORTED):
                    return
                raise
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            host, port = addr[0], addr[1]
            conn = _Connection(self, sock, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            conns[sock] = conn
            sel.register(sock, selectors.EVENT_READ, None)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if not conn.closing:
                self._log(f"{conn.peer}: disconnected without a close frame")
            conn.closing = True
            conn.wbuf.clear()  # the client is gone (or half-closed): drop the connection
            conn.drain_deadline = 0.0  # nothing left to drain
            return
        if conn.drain_deadline is not None:
            return  # discarded: we already sent everything we will send
        was_upgraded = conn.upgraded
        conn.receive(data)
        if conn.upgraded and not was_upgraded:
            with self._lock:
                self.connections += 1

    def _flush(self, conn: _Connection) -> None:
        if not conn.wbuf:
            return
        try:
            n = conn.sock.send(conn.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            conn.closing = True
            conn.wbuf.clear()
            return
        del conn.wbuf[:n]

    def _drop(self, sel: selectors.BaseSelector, conns: dict[socket.socket, _Connection],
              conn: _Connection) -> None:
        sock = conn.sock
        self._draining.discard(conn)
        if conns.pop(sock, None) is not None:
            sel.unregister(sock)
            _close(sock)

    def _update(self, sel: selectors.BaseSelector, conns: dict[socket.socket, _Connection],
                conn: _Connection) -> None:
        """Register the events the connection waits for, or close it when it is done."""
        sock = conn.sock
        if sock not in conns:
            return
        if conn.closing and not conn.wbuf:
            if conn.drain_deadline is None:
                # The server closes the TCP connection first (RFC 6455 section 7.1.1),
                # with a FIN, then reads what is left so that the kernel does not
                # answer unread data with a reset that could destroy our close frame.
                conn.drain_deadline = time.monotonic() + self._stop_timeout
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    conn.drain_deadline = 0.0
            if conn.drain_deadline == 0.0:
                self._drop(sel, conns, conn)
            else:
                self._draining.add(conn)
                sel.modify(sock, selectors.EVENT_READ, None)
            return
        events = 0
        conn.reading = not conn.closing and len(conn.wbuf) < _HIGH_WATER
        if conn.reading:
            events |= selectors.EVENT_READ
        if conn.wbuf:
            events |= selectors.EVENT_WRITE
        sel.modify(sock, events, None)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
