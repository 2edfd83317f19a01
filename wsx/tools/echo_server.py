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
)
from ..core.handshake import Headers, ServerHandshake
from ..errors import CloseCode
from .echo_conn import EchoConnection

__all__ = ["EchoServer"]

_MAX_HEAD = 16384  # bytes of request head accepted before answering 431
_READ_SIZE = 262144
_HIGH_WATER = 4 * 1024 * 1024  # stop reading a client while this much is queued for it


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
        ServerHandshake(subprotocols=self.subprotocols)  # ValueError for one that is not a token
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
        self._draining: set[EchoConnection] = set()  # connections with a drain_deadline
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

    def _record_message(self, opcode: int, message: bytes) -> None:
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
        conns: dict[socket.socket, EchoConnection] = {}
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

    def _accept(self, sel: selectors.BaseSelector, conns: dict[socket.socket, EchoConnection],
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
            peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            conn = EchoConnection(self, sock, peer)
            conns[sock] = conn
            sel.register(sock, selectors.EVENT_READ, None)

    def _read(self, conn: EchoConnection) -> None:
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

    def _flush(self, conn: EchoConnection) -> None:
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

    def _drop(self, sel: selectors.BaseSelector, conns: dict[socket.socket, EchoConnection],
              conn: EchoConnection) -> None:
        sock = conn.sock
        self._draining.discard(conn)
        if conns.pop(sock, None) is not None:
            sel.unregister(sock)
            _close(sock)

    def _update(self, sel: selectors.BaseSelector, conns: dict[socket.socket, EchoConnection],
                conn: EchoConnection) -> None:
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
