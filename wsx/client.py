"""The client process: a WebSocket connection driven by a callback module.

A :class:`Client` lives on a :class:`~wsx.loop.Loop`. It opens the connection
(:mod:`wsx.conn`), performs the upgrade (:mod:`wsx.handshake`), runs the
protocol (:mod:`wsx.protocol`) and calls the callback module
(:mod:`wsx.callbacks`) for every event, one callback at a time, on the loop's
thread. Other threads talk to it through the functions of this module
(:func:`send_frame`, :func:`cast`, :func:`send`, :func:`stop`), which post to
the loop and, for the synchronous ones, wait for the answer.

Connection states: ``"connecting"`` → ``"open"`` → ``"closing"`` →
``"disconnected"`` → (``"connecting"`` again on reconnect, or
``"terminated"``).

Linking: :func:`start_link` links the new client to the *current process*:
the supervisor starting it, or the wsx client whose callback called
``start_link``. When one of two linked processes exits abnormally, the other
is told: a supervisor applies its restart strategy; a client terminates with
reason ``("linked_exit", process, reason)`` unless its module sets
``trap_exit = True``, in which case ``handle_info`` receives
``("EXIT", process, reason)``. Called from a plain thread (no current
process), ``start_link`` links to nothing and behaves like :func:`start`:
the client runs until it stops, and the caller may :meth:`Client.join` it and
read :attr:`Client.exit_reason`. :func:`start` never links, so a client's end
never takes its caller down.

Liveness and flow control (options of :class:`wsx.Conn`, also accepted by
:func:`start_link`):

* keepalive, off by default as in WebSockex: with ``ping_interval`` set, one
  timer per connection pings the server when a whole interval passed without
  a sign of life from it, and drops the connection with
  ``("error", TimeoutExpired)`` when ``ping_timeout`` passes after the ping
  with still none. Any byte received counts, not only the pong, and the
  pongs to these pings are not passed to ``handle_pong``;
* backpressure: while the pending output is over ``write_limit`` bytes the
  client stops reading (so replies and pongs cannot grow it) and
  :func:`send_frame` from other threads waits, at most ``send_timeout``;
* ``close_timeout`` bounds the closing handshake, however the server
  behaves meanwhile.
"""

from __future__ import annotations

import _thread
import copy
import inspect
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import telemetry
from .callbacks import DisconnectStatus, WebSocket, resolve_module
from .conn import Conn, Connector
from .debug import DebugState
from .errors import (
    BadResponseError,
    CallingSelfError,
    CloseCode,
    ConnError,
    FrameError,
    HandshakeError,
    NotConnectedError,
    TimeoutExpired,
    WSXError,
)
from .extensions.permessage_deflate import EXTENSION_NAME
from .frames import CODEC_IMPLEMENTATION
from .handshake import ClientHandshake, HandshakeResponse
from .loop import Loop, Timer, get_default_loop
from .process import (
    Process,
    _current,
    _set_current,
    current_process,
    is_normal_exit,
    resolve,
)
from .protocol import OPEN, Protocol
from .url import parse_url


class _ClientFields:
    """Pure-Python twin of ``wsx._fastpath.ClientFields``: no fields of its own,
    :class:`Client`'s attributes live in its instance dictionary."""


_FastReader: Any = None
if not TYPE_CHECKING and CODEC_IMPLEMENTATION == "cython":
    # Not with WSX_NO_EXTENSIONS, nor when not built.
    try:
        from ._fastpath import ClientFields as _ClientFields  # noqa: F811
        from ._fastpath import FastReader as _FastReader
    except ImportError:  # pragma: no cover - built together with wsx._codec
        pass

__all__ = ["Client", "start_link", "start", "send_frame", "cast", "send", "stop"]

logger = logging.getLogger("wsx")

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_FRAME_CALLBACKS = {"text": "handle_frame", "binary": "handle_frame",
                    "ping": "handle_ping", "pong": "handle_pong"}
_EV_RECEIVED = ("wsx", "frame", "received")
_EV_SENT = ("wsx", "frame", "sent")


class Client(Process, _ClientFields):
    """Handle of a running WebSocket client process.

    Create clients with :func:`start_link` or :func:`start`. The handle is
    what the other functions take (or the registered ``name``). Attributes:
    :attr:`alive`, :meth:`join`, :attr:`exit_reason`,
    :attr:`connection_state`, :attr:`conn`, :attr:`module`.
    """

    def __init__(
        self,
        conn: Conn,
        module: Any,
        state: Any,
        *,
        loop: Loop,
        name: str | None = None,
        debug: Any = (),
        handle_initial_conn_failure: bool = False,
    ) -> None:
        self._cb: WebSocket = resolve_module(module)
        super().__init__(name)
        self.module = module
        self.conn = conn
        self.loop = loop
        self._state = state
        self.connection_state = "connecting"
        self._handle_initial_conn_failure = handle_initial_conn_failure
        dbg = DebugState(debug)
        self._dbg: DebugState | None = dbg if dbg.active else None
        self._sock: Any = None
        self._connector: Connector | None = None
        self._handshake: ClientHandshake | None = None
        self._protocol: Protocol | None = None
        self._wbuf = bytearray()
        # Held while writing to the socket or to _wbuf, on the loop thread and
        # by send_frame's direct path on other threads (see _send_direct).
        self._wlock = threading.Lock()
        # While handling the events of one read, writes are gathered here
        # and sent together (see _receive); None otherwise.
        self._cork: list[Any] | None = None
        self._secure = conn.url.secure
        # Backpressure (see Conn.write_limit): reading paused while the
        # output is over the limit; send_frame calls from other threads
        # parked until it drains.
        self._write_limit = conn.write_limit
        self._read_paused = False
        self._send_waiters: deque[_SendWaiter] = deque()
        # Keepalive (see Conn.ping_interval): one timer per open connection;
        # reads and write progress set _alive, the timer clears it.
        self._alive = False
        self._ka_timer: Timer | None = None
        self._ka_awaiting = False  # a keepalive ping is out, its deadline armed
        self._ka_sent: bytes | None = None  # payload of the last keepalive ping
        self._ka_count = 0
        self._timer: Timer | None = None  # handshake, close or reconnect timer
        self._mailbox: deque[tuple[str, Any]] = deque()
        self._inbox: deque[Any] = deque()  # frames held while suspended
        self._suspended = False
        self._in_callback = False
        self._attempt = 0
        self._connected_once = False
        self._close_reason: Any = None
        self._stopping = False
        self._stop_reason: Any = None
        self._terminated = False
        self._started = _thread.allocate_lock()
        self._started.acquire()
        self._starter_released = False
        self._start_error: BaseException | None = None
        # The loop calls this when the socket is readable: the compiled read
        # path when it is built (it defers to _on_readable for anything but
        # the usual case), else _on_readable itself.
        self._fast_reader: Any = None if _FastReader is None else _FastReader(self)
        self._reader: Callable[[], None] = self._fast_reader or self._on_readable

    # --------------------------------------------------------------- public
    @property
    def state_name(self) -> str:
        """Alias of :attr:`connection_state`."""
        return self.connection_state

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread and return its result (or raise)."""
        if self.loop.in_loop_thread():
            return fn(*args)
        done = _thread.allocate_lock()
        done.acquire()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box.append((False, exc))
            finally:
                done.release()

        self.loop.call_soon_threadsafe(run)
        while not done.acquire(timeout=1.0):
            if not self.loop.running:
                raise NotConnectedError("gone (its loop is not running)")
        ok, value = box[0]
        if ok:
            return value
        raise value

    # ------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        if not self.alive:  # abandoned by start(): its loop was not running
            self._abandon()
            return
        self._connect()

    def _abandon(self) -> None:
        """End without callbacks: :func:`start` gave up and already marked the exit."""
        if self._terminated:
            return
        self._terminated = True
        self._teardown()
        self._protocol = None
        self.connection_state = "terminated"
        self._mailbox.clear()
        self._inbox.clear()

    def _connect(self) -> None:
        if self._terminated:
            return
        self.connection_state = "connecting"
        self._close_reason = None
        self._secure = self.conn.url.secure  # a reconnect may change the URL
        if self._dbg is not None:
            self._dbg.event(self, "connect")
        self._connector = Connector(self.loop, self.conn, self._on_socket)
        self._connector.start()

    def _on_socket(self, sock: Any, error: ConnError | None) -> None:
        self._connector = None
        if error is not None:
            self._connect_failed(error)
            return
        self._sock = sock
        conn = self.conn
        try:
            hs = ClientHandshake(
                conn.url,
                origin=conn.origin,
                subprotocols=conn.subprotocols,
                extra_headers=conn.extra_headers,
                extensions=[conn.compress.offer()] if conn.compress is not None else None,
            )
        except ValueError as exc:
            self._connect_failed(HandshakeError(str(exc)))
            return
        self._handshake = hs
        self._timer = self.loop.call_later(conn.socket_recv_timeout, self._handshake_timeout)
        self.loop.add_reader(sock, self._on_handshake_readable)
        self._write(hs.request_bytes())

    def _handshake_timeout(self) -> None:
        self._timer = None
        self._connect_failed(HandshakeError(
            f"no complete upgrade response from {self.conn.url.host_header} within "
            f"{self.conn.socket_recv_timeout:g} s (socket_recv_timeout)"
        ))

    def _on_handshake_readable(self) -> None:
        sock, hs = self._sock, self._handshake
        if sock is None or hs is None:
            return
        buf = self.loop.read_buffer
        try:
            n = sock.recv_into(buf)
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            self._connect_failed(ConnError("connection lost during the handshake", exc))
            return
        try:
            if n == 0:
                hs.receive_eof()
                raise HandshakeError("the server closed the connection during the handshake")
            dbg = self._dbg
            if dbg is not None and dbg.stats is not None:
                dbg.stats["bytes_in"] += n
            response = hs.receive_data(bytes(buf[:n]))
        except WSXError as exc:
            self._connect_failed(exc)
            return
        if response is not None:
            self._on_open(response)

    def _on_open(self, response: HandshakeResponse) -> None:
        conn = self.conn
        try:
            extensions = _negotiate(conn, response)
        except HandshakeError as exc:
            self._connect_failed(exc)
            return
        self._cancel_timer()
        self._handshake = None
        conn.resp_headers = response.headers
        conn.subprotocol = response.subprotocol
        conn.extensions = response.extensions
        self._protocol = Protocol(max_message_size=conn.max_message_size, extensions=extensions)
        self.connection_state = "open"
        self._write_limit = conn.write_limit
        self._attempt = 0
        if self._connected_once and self._dbg is not None and self._dbg.stats is not None:
            self._dbg.stats["reconnects"] += 1
        dbg = self._dbg
        if dbg is not None:
            dbg.event(self, "connected")
            if dbg.stats is not None:
                dbg.stats["connected_since"] = time.monotonic()
        if telemetry._handlers:
            telemetry.execute(("wsx", "connected"), {"system_time": time.time()},
                              {"client": self, "conn": conn})
        self.loop.add_reader(self._sock, self._reader)
        if conn.ping_interval is not None:
            self._alive = False
            self._ka_timer = self.loop.call_later(conn.ping_interval, self._keepalive)
        if not self._callback("handle_connect", conn):
            return
        self._connected_once = True
        self._release_starter()
        if response.leftover and self._protocol is not None:
            self._receive(response.leftover)
        self._drain()

    def _connect_failed(self, error: WSXError) -> None:
        self._teardown()
        if self._dbg is not None:
            self._dbg.event(self, "connect_failed", error)
        if (not self._connected_once and self._attempt == 0
                and not self._handle_initial_conn_failure):
            self._start_error = error
            self.connection_state = "terminated"
            self._terminated = True
            self._release_starter()
            self._exit(("error", error))
            return
        self._disconnected(("error", error))

    def _release_starter(self) -> None:
        # Release once. Testing locked() is not enough: once released, the
        # starting thread itself acquires and releases the lock, and a second
        # release in between would make its release() raise RuntimeError.
        if not self._starter_released:
            self._starter_released = True
            self._started.release()

    # ----------------------------------------------------------------- I/O
    def _write(self, data: bytes | bytearray | memoryview) -> bool:
        """Write now, or queue behind what is pending; False if the connection broke."""
        return self._output(None, data)

    def _write_frame(self, protocol: Protocol, frame: Any) -> bool:
        """Encode a frame and write it (:meth:`_write`), under one hold of the write lock.

        A frame another thread writes meanwhile (:meth:`_send_direct`) goes
        out before or after it, never between its encoding and its write:
        that would put a message inside the other thread's fragmented one.
        """
        return self._output(protocol, frame)

    def _uncork(self) -> None:
        """Send the writes gathered while handling one read's events, as one."""
        if self._cork is not None:
            self._output(None, None, uncork=True)

    def _output(self, protocol: Protocol | None, item: Any, uncork: bool = False) -> bool:
        sock = self._sock
        with self._wlock:
            # Frames are encoded, gathered and written under the lock, and
            # _send_direct (other threads) waits while replies are gathered:
            # the wire gets frames in the order they were encoded.
            if uncork:
                gathered = self._cork
                self._cork = cork = None
                if not gathered:
                    return True
                data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
            else:
                data = item if protocol is None else protocol.send(item)
                cork = self._cork
            if sock is None:
                return False
            if cork is not None:
                cork.append(data)
                return True
            wbuf = self._wbuf
            if wbuf:
                wbuf += data
                n = -1
            else:
                try:
                    n = sock.send(data)
                except _WOULD_BLOCK:
                    n = 0
                except OSError as exc:
                    self.loop.call_soon(self._lost, sock,
                                        ("error", ConnError("connection broken", exc)))
                    return False
                if n < len(data):
                    wbuf += memoryview(data)[n:]
        if n >= 0:
            dbg = self._dbg
            if dbg is not None and dbg.stats is not None:
                dbg.stats["bytes_out"] += n
            if n < len(data):
                self.loop.add_writer(sock, self._on_writable)
        if len(wbuf) > self._write_limit and not self._read_paused:
            self._pause_reading()
        return True

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        with self._wlock:
            wbuf = self._wbuf
            try:
                n = sock.send(wbuf)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                error = exc
                n = -1
            else:
                if n:
                    del wbuf[:n]
        if n < 0:
            self._lost(sock, ("error", ConnError("connection broken", error)))
            return
        dbg = self._dbg
        if dbg is not None and dbg.stats is not None:
            dbg.stats["bytes_out"] += n
        if n:
            self._alive = True  # the peer is taking our data: a sign of life
        if not wbuf:
            self.loop.remove_writer(sock)
        if len(wbuf) <= self._write_limit and (self._read_paused or self._send_waiters):
            self._below_write_limit(sock)

    def _pause_reading(self) -> None:
        """Backpressure: the output is over ``write_limit``, stop reading until it drains."""
        sock = self._sock
        if sock is None or self._protocol is None:
            return  # the handshake is not subject to it
        self._read_paused = True
        self.loop.remove_reader(sock)
        if self._dbg is not None:
            self._dbg.event(self, "read_paused", len(self._wbuf))

    def _below_write_limit(self, sock: Any) -> None:
        """The output drained to ``write_limit``: send parked frames, read again."""
        if self._send_waiters:
            self._release_waiters()
        if not self._read_paused or len(self._wbuf) > self._write_limit:
            return
        self._read_paused = False
        if self._dbg is not None:
            self._dbg.event(self, "read_resumed", len(self._wbuf))
        if (sock is self._sock and not self._suspended
                and self.connection_state in ("open", "closing")):
            self.loop.add_reader(sock, self._reader)
            if self._secure and sock.pending():
                # Bytes TLS already decrypted do not wake the selector.
                self.loop.call_soon(self._read_pending, sock)

    def _read_pending(self, sock: Any) -> None:
        if sock is self._sock and not self._read_paused and not self._suspended:
            self._on_readable()

    # ------------------------------------------------------------ keepalive
    def _keepalive(self) -> None:
        """The keepalive timer (see ``Conn.ping_interval``), re-armed each time it fires.

        Every ``ping_interval`` seconds: if the server showed a sign of life
        since the last run (bytes received, or progress writing a backlog),
        nothing is sent. Otherwise a ping goes out and the timer comes back
        ``ping_timeout`` seconds later; still no sign of life then, and the
        connection is dropped with ``("error", TimeoutExpired)``.
        """
        self._ka_timer = None
        protocol = self._protocol
        conn = self.conn
        if (self.connection_state != "open" or protocol is None or protocol.state is not OPEN
                or conn.ping_interval is None or conn.ping_timeout is None):
            return  # closing: close_timeout bounds the rest
        if self._alive or self._suspended:
            # Suspended (wsx.sys): nothing is read, so there is nothing to judge.
            self._alive = False
            self._ka_awaiting = False
            self._ka_timer = self.loop.call_later(conn.ping_interval, self._keepalive)
            return
        if self._ka_awaiting:
            self._keepalive_expired(protocol)
            return
        self._ka_count += 1
        payload = b"wsx-keepalive-%d" % self._ka_count
        self._ka_sent = payload
        self._ka_awaiting = True
        if self._dbg is not None:
            self._dbg.event(self, "keepalive_ping", payload)
        self._ka_timer = self.loop.call_later(conn.ping_timeout, self._keepalive)
        self._write(protocol.send(("ping", payload)))

    def _keepalive_answered(self) -> None:
        """The pong to the keepalive ping came: the next idle interval starts now
        (not when ``ping_timeout`` would have passed)."""
        self._ka_awaiting = False
        self._alive = False
        interval = self.conn.ping_interval
        if self._ka_timer is not None:
            self._ka_timer.cancel()
            self._ka_timer = None
        if interval is not None and self.connection_state == "open":
            self._ka_timer = self.loop.call_later(interval, self._keepalive)

    def _keepalive_expired(self, protocol: Protocol) -> None:
        conn = self.conn
        timeout = conn.ping_timeout or 0.0
        error = TimeoutExpired(
            "ping_timeout", timeout,
            f"{conn.url.host_header} showed no sign of life within {timeout:g} s of a "
            "keepalive ping (no pong, no data)",
        )
        logger.info("%r: %s", self, error)
        sock = self._sock
        try:  # best effort: the peer is probably gone
            self._write(protocol.send_close(CloseCode.INTERNAL_ERROR, "keepalive timeout"))
        except WSXError:
            pass
        self._close_reason = ("error", error)
        self._lost(sock, ("error", error))

    def _on_readable(self) -> None:
        sock = self._sock
        buf = self.loop.read_buffer
        while sock is not None and sock is self._sock and not self._read_paused:
            try:
                n = sock.recv_into(buf)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._lost(sock, ("error", ConnError("connection broken", exc)))
                return
            if n == 0:
                self._lost(sock, self._close_reason or ("remote", "closed"))
                return
            self._alive = True
            dbg = self._dbg
            if dbg is not None and dbg.stats is not None:
                dbg.stats["bytes_in"] += n
            self._receive(buf[:n])
            # Data already decrypted by TLS does not wake the selector again.
            if not (self._secure and sock is self._sock and sock.pending()):
                return

    def _receive(self, data: bytes | memoryview) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        self._dispatch(protocol, protocol.receive_data(data))

    def _dispatch(self, protocol: Protocol, events: list[Any]) -> None:
        """Handle the events of one read, then write what the protocol owes the peer."""
        if events:
            if len(events) > 1 and self._cork is None:
                # Several messages in one read: their replies go out in one
                # send (the server gets them in one segment, we make one
                # system call).
                self._cork = []
                try:
                    self._handle_events(events)
                finally:
                    self._uncork()
            elif len(events) == 1 and not (self._suspended or self._terminated):
                self._handle_event(events[0])
            else:
                self._handle_events(events)
        self._flush_protocol(protocol)

    def _flush_protocol(self, protocol: Protocol) -> None:
        """Write what the protocol owes the peer (the close answering its close or error).

        Called once the events before it are handled, so that their replies
        (a pong, a ``("reply", ...)``) go out before that close frame.
        """
        if protocol is self._protocol and not self._inbox:
            out = protocol.data_to_send()
            if out:
                self._write(out)

    def _handle_events(self, events: Any) -> None:
        for i, event in enumerate(events):
            if self._suspended or self._terminated:
                if not self._terminated:
                    self._inbox.extend(events[i:])
                return
            self._handle_event(event)

    def _handle_event(self, event: Any) -> None:
        kind = event if type(event) is str else event[0]
        name = _FRAME_CALLBACKS.get(kind)
        if name is not None:
            if kind == "pong" and self._ka_sent is not None and event[-1] == self._ka_sent:
                # The answer to a keepalive ping: the callback module did not
                # send that ping, its handle_pong does not see the pong.
                if self._dbg is not None:
                    self._dbg.event(self, "keepalive_pong", event[-1])
                if self._ka_awaiting:
                    self._keepalive_answered()
                return
            dbg = self._dbg
            if dbg is not None:
                dbg.event(self, "in", event)
                if dbg.stats is not None:
                    dbg.stats["frames_in"] += 1
            if telemetry._handlers:
                telemetry.execute(_EV_RECEIVED, {"size": _size(event)},
                                  {"client": self, "frame": event})
            self._callback(name, event)
        elif kind == "close":
            self._remote_close(event[1], event[2])
        elif kind == "error":
            self._protocol_error(event[1])

    # ------------------------------------------------------------- callbacks
    def _callback(self, name: str, arg: Any) -> bool:
        """Run a callback and apply its result; False if the process crashed."""
        fn = getattr(self._cb, name)
        self._in_callback = True
        current = _current
        previous = getattr(current, "process", None)
        current.process = self
        try:
            result = fn(arg, self._state)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - sys.exit() must not end the loop
            self._crash(name, exc)
            return False
        finally:
            self._in_callback = False
            current.process = previous
        return self._apply(name, result)

    def _apply(self, name: str, result: Any) -> bool:
        if type(result) is tuple and result:
            tag = result[0]
            n = len(result)
            if tag == "ok" and n == 2:
                self._state = result[1]
                return True
            if name != "handle_connect":
                if tag == "reply" and n == 3:
                    self._state = result[2]
                    try:
                        self._reply(name, result[1])
                    except Exception as exc:  # noqa: BLE001 - e.g. UnicodeEncodeError too
                        self._crash(name, exc)
                        return False
                    return True
                if tag == "close" and n == 2:
                    self._state = result[1]
                    return self._close_from_callback(name, CloseCode.NORMAL, "",
                                                     ("local", "normal"))
                if tag == "close" and n == 3 and type(result[1]) is tuple and len(result[1]) == 2:
                    code, text = result[1]
                    self._state = result[2]
                    return self._close_from_callback(name, code, text, ("local", code, text))
        self._crash(name, BadResponseError(self.module, name, result))
        return False

    def _reply(self, name: str, frame: Any) -> None:
        protocol = self._protocol
        if self.connection_state != "open" or protocol is None or protocol.state is not OPEN:
            logger.debug("%r: reply %r from %s not sent: the connection is %s",
                         self, frame, name, self.connection_state)
            return
        self._write_frame(protocol, frame)
        if self._dbg is not None:
            self._dbg.event(self, "reply", name, frame)
            if self._dbg.stats is not None:
                self._dbg.stats["frames_out"] += 1
        if telemetry._handlers:
            telemetry.execute(_EV_SENT, {"size": _size(frame)}, {"client": self, "frame": frame})

    def _close_from_callback(self, name: str, code: Any, text: Any, reason: Any) -> bool:
        try:
            self._local_close(code, text, reason)
        except Exception as exc:  # noqa: BLE001 - e.g. UnicodeEncodeError too
            self._crash(name, exc)
            return False
        return True

    def _crash(self, name: str, exc: BaseException) -> None:
        """A callback raised or returned a bad value: close 1011, terminate abnormally."""
        if not isinstance(exc, BadResponseError):
            logger.error("%r: callback %s raised", self, name, exc_info=exc)
        else:
            logger.error("%r: %s", self, exc)
        protocol = self._protocol
        if self._sock is not None and protocol is not None and protocol.state is OPEN:
            try:
                self._write(protocol.send_close(CloseCode.INTERNAL_ERROR, ""))
            except WSXError:
                pass
        self._terminate(("error", exc))

    # --------------------------------------------------------------- closing
    def _local_close(self, code: Any, text: Any, reason: Any) -> None:
        protocol = self._protocol
        if self.connection_state != "open" or protocol is None:
            return
        if not isinstance(text, str):
            from .errors import FrameEncodeError

            raise FrameEncodeError(f"close reason must be a str, not {text!r}")
        data = protocol.send_close(code, text)  # validates code and reason
        self._close_reason = reason
        if self._dbg is not None:
            self._dbg.event(self, "close", reason)
            self._dbg.event(self, "close_frame", reason)
        self.connection_state = "closing"
        self._write(data)
        self._start_close_timer()

    def _remote_close(self, code: int | None, text: str) -> None:
        if self._close_reason is None:
            if code is None:
                self._close_reason = ("remote", "normal")
            else:
                self._close_reason = ("remote", code, text)
        if self._dbg is not None:
            self._dbg.event(self, "remote_close", (code, text))
        self.connection_state = "closing"
        self._start_close_timer()

    def _protocol_error(self, error: FrameError) -> None:
        logger.info("%r: server broke the protocol: %s", self, error)
        if self._close_reason is None:
            self._close_reason = ("error", error)
        self.connection_state = "closing"
        self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self._send_waiters:
            self._release_waiters()  # they fail: the connection is closing
        if self._timer is None:
            self._timer = self.loop.call_later(self.conn.close_timeout, self._force_close)

    def _force_close(self) -> None:
        self._timer = None
        if self._dbg is not None:
            self._dbg.event(self, "force_close")
        self._lost(self._sock, self._close_reason or ("local", "normal"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _teardown(self) -> None:
        """Drop the socket, connector, timers and protocol of the current connection."""
        self._uncork()  # e.g. the close frame of a crash, gathered with earlier replies
        self._cancel_timer()
        if self._ka_timer is not None:
            self._ka_timer.cancel()
            self._ka_timer = None
        self._ka_awaiting = False
        self._ka_sent = None
        self._read_paused = False
        if self._send_waiters:
            self._fail_waiters()
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self.loop.remove_all(sock)
            try:
                sock.close()
            except OSError:
                pass
        self._wbuf = bytearray()
        self._handshake = None
        if self._fast_reader is not None:
            self._fast_reader.forget()  # it lets go of the socket and protocol
        if self._protocol is not None:
            self._protocol.receive_eof()
        dbg = self._dbg
        if dbg is not None and dbg.stats is not None and dbg.stats["connected_since"] is not None:
            dbg.stats["connected_time"] += time.monotonic() - dbg.stats["connected_since"]
            dbg.stats["connected_since"] = None

    def _lost(self, sock: Any, reason: Any) -> None:
        """The connection ``sock`` ended with ``reason`` (ignored if it is not current)."""
        if sock is None or sock is not self._sock or self._terminated:
            return
        was_connecting = self.connection_state == "connecting"
        self._teardown()
        if was_connecting:
            error = reason[1] if type(reason) is tuple and reason[0] == "error" else ConnError(
                "connection closed during the handshake")
            self._connect_failed(error)
            return
        self._disconnected(reason)

    def _disconnected(self, reason: Any) -> None:
        self._protocol = None
        self.connection_state = "disconnected"
        if self._dbg is not None:
            self._dbg.event(self, "disconnected", reason)
        if telemetry._handlers:
            telemetry.execute(("wsx", "disconnected"), {"system_time": time.time()},
                              {"client": self, "reason": reason})
        if self._stopping:
            self._terminate(self._stop_reason)
            return
        self._attempt += 1
        status = DisconnectStatus(reason, self._attempt, self.conn)
        self._in_callback = True
        previous = _set_current(self)
        try:
            result = self._cb.handle_disconnect(status, self._state)
        except (Exception, SystemExit) as exc:
            logger.error("%r: callback handle_disconnect raised", self, exc_info=exc)
            self._terminate(("error", exc))
            return
        finally:
            self._in_callback = False
            _set_current(previous)
        if type(result) is tuple and result:
            tag, n = result[0], len(result)
            if tag == "ok" and n == 2:
                self._state = result[1]
                self._terminate(reason)
                return
            if tag == "reconnect" and n == 2:
                self._state = result[1]
                self._reconnect(0.0)
                return
            if tag == "reconnect" and n == 3 and isinstance(result[1], (Conn, str)):
                try:
                    self.conn = _as_conn(result[1], self.conn)
                except WSXError as exc:
                    error = BadResponseError(self.module, "handle_disconnect", result)
                    error.__cause__ = exc
                    logger.error("%r: %s (%s)", self, error, exc)
                    self._terminate(("error", error))
                    return
                self._state = result[2]
                self._reconnect(0.0)
                return
            if (tag == "reconnect_after" and n == 3 and isinstance(result[1], (int, float))
                    and result[1] >= 0):
                self._state = result[2]
                self._reconnect(float(result[1]))
                return
        error = BadResponseError(self.module, "handle_disconnect", result)
        logger.error("%r: %s", self, error)
        self._terminate(("error", error))

    def _reconnect(self, delay: float) -> None:
        if self._dbg is not None:
            if delay:
                self._dbg.event(self, "reconnect_after", delay, self._attempt)
            else:
                self._dbg.event(self, "reconnect", self._attempt)
        self.connection_state = "connecting"
        if delay > 0:
            self._timer = self.loop.call_later(delay, self._reconnect_now)
        else:
            self._connect()

    def _reconnect_now(self) -> None:
        self._timer = None
        self._connect()

    def _terminate(self, reason: Any) -> None:
        if self._terminated:
            return
        self._abandon()
        if self._dbg is not None:
            self._dbg.event(self, "terminate", reason)
        self._in_callback = True
        previous = _set_current(self)
        try:
            self._cb.terminate(reason, self._state)
        except SystemExit as exc:
            # WebSockex's tip: exit(:normal) from terminate makes the exit normal.
            reason = "normal" if exc.code in (None, 0, "normal") else ("exit", exc.code)
        except Exception:
            logger.exception("%r: callback terminate raised", self)
        finally:
            self._in_callback = False
            _set_current(previous)
        if not is_normal_exit(reason):
            logger.debug("%r terminated: %r", self, reason)
        if telemetry._handlers:
            telemetry.execute(("wsx", "terminate"), {"system_time": time.time()},
                              {"client": self, "reason": reason})
        if not self._connected_once:
            self._start_error = _reason_error(reason)
        self._release_starter()
        self._exit(reason)

    # -------------------------------------------------------------- messages
    def _deliver(self, kind: str, msg: Any) -> None:
        if self._terminated:
            logger.debug("%r: %s %r dropped: the client has terminated", self, kind, msg)
            return
        if self.connection_state == "open" and not self._suspended and not self._mailbox:
            self._handle_message(kind, msg)
        else:
            self._mailbox.append((kind, msg))

    def _handle_message(self, kind: str, msg: Any) -> None:
        dbg = self._dbg
        if dbg is not None:
            dbg.event(self, kind, msg)
            if dbg.stats is not None:
                dbg.stats["messages_in"] += 1
        self._callback("handle_cast" if kind == "cast" else "handle_info", msg)

    def _drain(self) -> None:
        """Handle frames and messages held while suspended or not connected."""
        while self._inbox and not self._suspended and not self._terminated:
            self._handle_event(self._inbox.popleft())
        if self._protocol is not None:
            self._flush_protocol(self._protocol)
        while (self._mailbox and self.connection_state == "open" and not self._suspended
               and not self._terminated):
            kind, msg = self._mailbox.popleft()
            self._handle_message(kind, msg)

    def _on_linked_exit(self, other: Process, reason: Any) -> None:
        def handle() -> None:
            if self._terminated:
                return
            if getattr(self._cb, "trap_exit", False):
                self._deliver("info", ("EXIT", other, reason))
            elif not is_normal_exit(reason):
                self._stopping = True
                self._stop_reason = ("linked_exit", other, reason)
                self._stop_now()

        self.loop.call_soon_threadsafe(handle)

    # ------------------------------------------------------- requests (loop)
    def _send_or_park(self, waiter: _SendWaiter) -> None:
        """Send the frame of a :func:`send_frame` from another thread, or park it.

        Parked while the output is over ``write_limit`` (or others are parked
        before it, to keep their order) until :meth:`_on_writable` drains it.
        """
        if ((self._send_waiters or len(self._wbuf) > self._write_limit)
                and self.connection_state == "open"):
            self._send_waiters.append(waiter)
            return
        self._finish_send(waiter)

    def _finish_send(self, waiter: _SendWaiter) -> None:
        try:
            self._send_frame_now(waiter.frame)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            waiter.error = exc
        waiter.done.release()

    def _release_waiters(self) -> None:
        """Send parked frames while the output is within the limit (all of them fail
        with :class:`NotConnectedError` once the connection is no longer open)."""
        waiters = self._send_waiters
        while waiters and (len(self._wbuf) <= self._write_limit
                           or self.connection_state != "open"):
            self._finish_send(waiters.popleft())

    def _fail_waiters(self) -> None:
        waiters = self._send_waiters
        while waiters:
            waiter = waiters.popleft()
            waiter.error = ConnError(
                f"cannot send {_short(waiter.frame)}: the connection ended while the frame "
                "waited for the write buffer to drain")
            waiter.done.release()

    def _cancel_send(self, waiter: _SendWaiter, timeout: float) -> None:
        """``send_timeout`` passed for a parked frame: drop it (unless it went out meanwhile)."""
        try:
            self._send_waiters.remove(waiter)
        except ValueError:
            return  # already sent or failed: its thread has the answer
        waiter.error = TimeoutExpired(
            "send_timeout", timeout,
            f"send_frame({_short(waiter.frame)}) not sent: the write buffer of {self!r} "
            f"stayed over write_limit={self._write_limit} bytes ({len(self._wbuf)} bytes "
            "pending; the server is not reading)",
        )
        waiter.done.release()

    def _send_direct(self, frame: Any) -> bool:
        """:func:`send_frame` from another thread, written by that thread; False if it can't be.

        The usual case (an open plain-TCP connection, nothing pending, no
        trace or telemetry to report, no extension such as compression
        negotiated) needs no round trip through the loop:
        the frame is encoded and written here, under the write lock the loop
        thread also holds while it encodes and writes, so frames never
        interleave and nothing is sent after our close frame
        (``Protocol.send`` refuses once the close is on its way). Not while
        the loop gathers the replies to one read either: they were encoded
        first, so they go first. What the socket does not take at once
        waits in the write buffer, sent by the loop. Not for TLS: an
        ``SSLSocket`` must not write on one thread while the loop reads on
        another.
        """
        if self._secure or self._dbg is not None or telemetry._handlers:
            return False
        with self._wlock:
            sock = self._sock
            protocol = self._protocol
            if (sock is None or protocol is None or self.connection_state != "open"
                    or self._wbuf or self._send_waiters or protocol.extensions
                    or self._cork is not None):
                # With an extension (permessage-deflate's shared compression
                # context) frames must hit the wire in the order they were
                # encoded: the loop encodes and writes them in one go.
                return False
            data = protocol.send(frame)  # raises for a bad frame or a closing connection
            try:
                n = sock.send(data)
            except _WOULD_BLOCK:
                n = 0
            except OSError as exc:
                self.loop.call_soon_threadsafe(
                    self._lost, sock, ("error", ConnError("connection broken", exc)))
                raise ConnError(f"cannot send {_short(frame)}: the connection is broken",
                                exc) from None
            if n < len(data):
                self._wbuf += memoryview(data)[n:]
                self.loop.call_soon_threadsafe(self._arm_writer, sock)
        return True

    def _arm_writer(self, sock: Any) -> None:
        """Loop side of :meth:`_send_direct`: write what the socket did not take at once."""
        if sock is not self._sock or not self._wbuf:
            return
        self.loop.add_writer(sock, self._on_writable)
        if len(self._wbuf) > self._write_limit and not self._read_paused:
            self._pause_reading()

    def _send_from_thread(self, frame: Any) -> None:
        """:func:`send_frame` from a thread other than the loop's: wait for the answer,
        at most ``send_timeout`` for the write buffer to drain."""
        waiter = _SendWaiter(frame)
        loop = self.loop
        loop.call_soon_threadsafe(self._send_or_park, waiter)
        timeout = self.conn.send_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        done = waiter.done
        while True:
            wait = 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    # Ask the loop to drop the frame; it answers either way.
                    loop.call_soon_threadsafe(self._cancel_send, waiter, timeout)
                    deadline = None
                    continue
            if done.acquire(timeout=wait):
                break
            if not loop.running:
                raise NotConnectedError("gone (its loop is not running)")
        if waiter.error is not None:
            raise waiter.error

    def _send_frame_now(self, frame: Any) -> None:
        protocol = self._protocol
        if self.connection_state != "open" or protocol is None:
            raise NotConnectedError(self.connection_state)
        written = self._write_frame(protocol, frame)
        dbg = self._dbg
        if dbg is not None:
            dbg.event(self, "send", frame)
            if dbg.stats is not None:
                dbg.stats["frames_out"] += 1
        if telemetry._handlers:
            telemetry.execute(_EV_SENT, {"size": _size(frame)}, {"client": self, "frame": frame})
        if not written:
            raise ConnError(f"cannot send {_short(frame)}: the connection is broken")

    def _stop_now(self) -> None:
        if self._terminated:
            return
        state = self.connection_state
        if state == "open":
            try:
                self._local_close(CloseCode.NORMAL, "", ("local", "normal"))
            except WSXError:
                self._terminate(self._stop_reason)
        elif state != "closing":
            self._terminate(self._stop_reason)

    def _request_stop(self, reason: Any) -> None:
        self._stopping = True
        self._stop_reason = reason
        self._resume()  # the close handshake needs the socket read again
        self._stop_now()

    # ---------------------------------------------------------- sys support
    def _suspend(self) -> None:
        self._suspended = True
        if self._sock is not None and self.connection_state == "open":
            self.loop.remove_reader(self._sock)

    def _resume(self) -> None:
        if not self._suspended:
            return
        self._suspended = False
        while self._inbox and not self._suspended and not self._terminated:
            self._handle_event(self._inbox.popleft())
        if (self._sock is not None and self.connection_state in ("open", "closing")
                and not self._read_paused):
            self.loop.add_reader(self._sock, self._reader)
            # Frames that arrived while suspended come before later messages.
            if self._in_callback:
                # resume() from a callback of this client: the read it is
                # part of is not finished (the rest of its frames are still
                # to be handled), so read once that callback returned.
                self.loop.call_soon(self._read_pending, self._sock)
            else:
                self._on_readable()
        self._drain()


class _SendWaiter:
    """A :func:`send_frame` call from another thread, waiting for the loop's answer."""

    __slots__ = ("frame", "done", "error")

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.error: BaseException | None = None


def _negotiate(conn: Conn, response: HandshakeResponse) -> list[Any]:
    """The extensions to run, from the server's accepted list (validated)."""
    extensions: list[Any] = []
    for name, params in response.extensions:
        if name == EXTENSION_NAME and conn.compress is not None and not extensions:
            try:
                extensions.append(conn.compress.accept(params))
            except HandshakeError as exc:
                exc.response = response
                raise
        else:
            raise HandshakeError(f"the server accepted extension {name!r} more than once "
                                 "or without an offer", response)
    return extensions


def _as_conn(target: Conn | str, current: Conn) -> Conn:
    """A ``Conn`` from a ``("reconnect", conn_or_url, state)`` return: a URL keeps the options."""
    if isinstance(target, Conn):
        return target
    conn = copy.copy(current)
    conn.url = parse_url(target)
    conn.resp_headers, conn.subprotocol, conn.extensions = None, None, []
    return conn


def _short(frame: Any) -> str:
    text = repr(frame)
    return text if len(text) <= 80 else text[:77] + "..."


def _size(frame: Any) -> int:
    """Payload size of a public frame (the same measure for frames in and out)."""
    return 0 if type(frame) is not tuple else len(frame[-1])


def _reason_error(reason: Any) -> BaseException:
    if type(reason) is tuple and len(reason) == 2 and isinstance(reason[1], BaseException):
        return reason[1]
    return ConnError(f"the client ended before connecting: {reason!r}")


# ------------------------------------------------------------------ functions
# Every keyword of wsx.Conn is a connection option of start_link / start.
_CONN_OPTIONS = tuple(
    name for name, p in inspect.signature(Conn.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def _connection_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: opts.pop(k) for k in _CONN_OPTIONS if k in opts}


def _start(url_or_conn: Any, module: Any, state: Any, link: bool, opts: dict[str, Any]) -> Client:
    opts = dict(opts)
    conn_opts = _connection_options(opts)
    if isinstance(url_or_conn, Conn):
        if conn_opts:
            raise TypeError(
                f"connection options {sorted(conn_opts)} cannot be combined with a Conn: "
                "give them to wsx.Conn(...)"
            )
        conn = url_or_conn
    else:
        conn = Conn(url_or_conn, **conn_opts)
    loop = opts.pop("loop", None) or get_default_loop()
    name = opts.pop("name", None)
    async_connect = bool(opts.pop("async_connect", False))
    handle_failure = bool(opts.pop("handle_initial_conn_failure", False))
    debug = opts.pop("debug", ())
    if opts:
        raise TypeError(f"unknown option(s) {', '.join(sorted(opts))}")
    if not async_connect and loop.in_loop_thread():
        raise CallingSelfError(
            "start_link/start without async_connect=True on the loop's own thread "
            "(waiting for the connection would block the loop)"
        )
    client = Client(conn, module, state, loop=loop, name=name, debug=debug,
                    handle_initial_conn_failure=handle_failure)
    parent = current_process() if link else None
    if parent is not None:
        client.link(parent)
    loop.call_soon_threadsafe(client._start)
    if not async_connect:
        while not client._started.acquire(timeout=1.0):
            if not loop.running:
                error = ConnError(f"the loop {loop.name!r} is not running")
                # Do not leave a client behind (holding its name) that would
                # connect if the loop ran later: it ends now, for everyone.
                client._exit(("error", error))
                loop.call_soon_threadsafe(client._abandon)
                raise error
        client._started.release()
        if client._start_error is not None and not client._connected_once:
            raise client._start_error
    return client


def start_link(url_or_conn: str | Conn, module: Any, state: Any = None, **opts: Any) -> Client:
    """Start a client linked to the current process; return its handle.

    Waits until the connection is open and ``handle_connect`` has run, and
    raises the connection error (:class:`ConnError`, :class:`RequestError`,
    :class:`HandshakeError`...) if the first attempt fails, unless
    ``async_connect=True`` (return at once) or
    ``handle_initial_conn_failure=True`` (call ``handle_disconnect`` instead).

    Options: ``name``, ``async_connect``, ``handle_initial_conn_failure``,
    ``debug`` (``["trace"]``, ``["log"]``, ``["statistics"]``), ``loop``, and
    the connection options of :class:`wsx.Conn` when ``url_or_conn`` is a URL.
    See the module documentation for what the client is linked to.
    """
    return _start(url_or_conn, module, state, True, opts)


def start(url_or_conn: str | Conn, module: Any, state: Any = None, **opts: Any) -> Client:
    """Like :func:`start_link`, without a link: the client's end never affects the caller."""
    return _start(url_or_conn, module, state, False, opts)


def _client(target: Client | str) -> Client:
    proc = resolve(target)
    if not isinstance(proc, Client):
        raise TypeError(f"{proc!r} is not a wsx client")
    return proc


def send_frame(client: Client | str, frame: Any) -> None:
    """Send a frame and return once it is written to the socket (buffer).

    Backpressure: while the connection's pending output is over its
    ``write_limit`` (the server reads slower than we write), a call from a
    thread other than the loop's waits for it to drain, at most
    ``send_timeout`` seconds, then raises :class:`TimeoutExpired` (the frame
    is not sent; the connection stays open). Called on the loop's thread
    (e.g. from another client's callback) it never waits: the frame is queued.

    Raises :class:`NotConnectedError` while connecting or closing,
    :class:`ConnError` on a broken connection, :class:`InvalidFrameError` /
    :class:`FrameEncodeError` for a bad frame, and :class:`CallingSelfError`
    when called from the client's own callback (return ``("reply", frame,
    state)`` there instead).
    """
    c = _client(client)
    if c.loop.in_loop_thread():
        if c._in_callback:
            raise CallingSelfError("send_frame")
        c._send_frame_now(frame)
        return
    if not c.alive:
        raise NotConnectedError("terminated")
    if not c._send_direct(frame):
        c._send_from_thread(frame)


def cast(client: Client | str, msg: Any) -> None:
    """Send ``msg`` to the client's ``handle_cast``; returns at once."""
    c = _client(client)
    c.loop.call_soon_threadsafe(c._deliver, "cast", msg)


def send(client: Client | str, msg: Any) -> None:
    """Send ``msg`` to the client's ``handle_info``; returns at once."""
    c = _client(client)
    c.loop.call_soon_threadsafe(c._deliver, "info", msg)


def stop(client: Client | str, reason: Any = "normal", timeout: float | None = 10.0) -> bool:
    """Close the connection (close handshake), terminate the client and wait for its end.

    ``terminate(reason, state)`` is called (``handle_disconnect`` is not).
    Returns True when the client has ended within ``timeout`` seconds. From
    a callback on the client's loop, it only starts the stop (no waiting).
    """
    c = _client(client)
    if not c.alive:
        return True
    c.loop.call_soon_threadsafe(c._request_stop, reason)
    if c.loop.in_loop_thread():
        return not c.alive
    return c.join(timeout)
