"""The client process: a connection that a :class:`Client` opens, and reopens.

A :class:`Client` is a :class:`~wsx.process.connection.Connection` (the
role-free process: lifecycle, dispatcher, read path, keepalive, close,
mailbox, holds, stopping) with the client's policy: a
:class:`~wsx.io.connector.Connector` opens the socket (DNS, TCP, proxy,
TLS), an :class:`~wsx.process.upgrade.Upgrade` runs the opening handshake,
:class:`~wsx.process.reconnect.Reconnects` paces the reconnects that
``handle_disconnect`` asks for, and a start gate
(:class:`~wsx.process.startgate.StartGate`) tells ``start_link`` how the
first attempt went. Its lifecycle table is
:data:`~wsx.process.lifecycle.TRANSITIONS`. Everything here runs on the
loop's thread; :mod:`wsx.process.api` is the thread-safe front
(``start_link``, ``send_frame``, ``cast``, ``stop``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.conn import Conn
from ..core.handshake import HandshakeResponse
from ..core.side import Side
from ..errors import ConnError, HandshakeError, WSXError
from ..io.connector import Connector
from .base import Process, resolve
from .connection import Connection, Protocol
from .lifecycle import CONNECTING, RECONNECTING, TRANSITIONS
from .reconnect import Reconnects
from .startgate import StartGate
from .upgrade import Upgrade

if TYPE_CHECKING:
    from ..io.hostloop import HostLoop

__all__ = ["Client", "client_of"]


class Client(Connection):
    """Handle of a running WebSocket client process.

    Create clients with :func:`wsx.start_link` or :func:`wsx.start`. The
    handle is what the other functions take (or the registered ``name``).
    Attributes: :attr:`alive`, :meth:`join`, :attr:`exit_reason`,
    :attr:`connection_state`, :attr:`conn`, :attr:`module`.
    """

    transitions = TRANSITIONS

    def __init__(self, conn: Conn, module: Any, state: Any, *, loop: HostLoop,
                 name: str | None = None, debug: Any = (),
                 handle_initial_conn_failure: bool = False) -> None:
        super().__init__(conn, module, state, loop=loop, name=name, debug=debug)
        self.connector: Connector | None = None
        self.upgrade: Upgrade | None = None
        self._timer: Any = None  # reconnect timer
        self._handle_initial_conn_failure = handle_initial_conn_failure
        self.reconnects = Reconnects(self)
        #: Released once the first connection is up, or the start failed.
        self.started = StartGate()
        self.start_error: BaseException | None = None
        self._hosted()

    # ------------------------------------------------------------ connecting
    def begin(self) -> None:
        """Start the first connection attempt (posted to the loop by ``start_link``)."""
        if not self.alive:  # abandoned by start(): its loop was not running
            self.abandon()
            return
        self._connect()

    def abandon(self) -> None:
        """End without callbacks: ``start`` gave up and already marked the exit."""
        if self.terminated:
            return
        self.abandon_connection()
        self._exit_now(None, self.exit_reason)  # a failed start: no report

    def _connect(self) -> None:
        if self.lifecycle.state is CONNECTING:
            self.event("connect")  # the first attempt
        else:
            self.lifecycle.to(CONNECTING, "connect")
        self.close_reason = None
        self.reconnects.starting()
        self.connector = Connector(self.loop, self.conn, self._on_socket)
        self.connector.start()

    def _on_socket(self, sock: Any, error: ConnError | None) -> None:
        self.connector = None
        if error is not None:
            self.connect_failed(error)
            return
        self.transport.attach(sock)
        try:
            self.upgrade = Upgrade(self)
        except ValueError as exc:
            self.connect_failed(HandshakeError(str(exc)))
            return
        self.upgrade.start()

    def upgraded(self, response: HandshakeResponse, extensions: list[Any]) -> None:
        """The handshake succeeded: open the connection and call ``handle_connect``."""
        conn = self.conn
        self.upgrade = None
        conn.resp_headers = response.headers
        conn.subprotocol = response.subprotocol
        conn.extensions = response.extensions
        self.reconnects.connected()
        protocol = Protocol(max_message_size=conn.max_message_size, extensions=extensions,
                            side=Side.CLIENT)
        self.opened(protocol, response.leftover)

    def _on_accepted(self) -> None:
        self.started.release()  # start_link returns: the first connection is up

    def connect_failed(self, error: WSXError) -> None:
        """The attempt failed: end (first attempt, unless handled) or ask handle_disconnect."""
        self._teardown()
        self.event("connect_failed", error)
        self.reconnects.failed(error)
        if (not self.lifecycle.connections and self.reconnects.attempt == 0
                and not self._handle_initial_conn_failure):
            self.start_error = error
            self._exit_now(None, ("error", error))  # raised to start_link's caller
            return
        self._disconnected(("error", error))

    def _cancel_opening(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.connector is not None:
            self.connector.cancel()
            self.connector = None
        if self.upgrade is not None:
            self.upgrade.cancel()
            self.upgrade = None

    # ------------------------------------------------------------ reconnects
    def _attempt(self) -> int:
        return self.reconnects.disconnected()

    def _reconnect(self, delay: float, conn: Conn | None) -> None:
        """``handle_disconnect`` asked for a reconnect (after ``delay`` s, with ``conn``)."""
        attempt = self.reconnects.attempt
        if conn is not None:
            self.conn = conn
        if delay > 0:
            self.lifecycle.to(RECONNECTING, "reconnect_after", delay, attempt)
        else:
            self.lifecycle.to(RECONNECTING, "reconnect", attempt)
        # From the loop, even without a wait: an attempt that fails at once
        # must not start the next one from inside its own failure.
        self._timer = self.loop.call_later(self.reconnects.wait(delay), self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._timer = None
        self._connect()

    def _ending(self, reason: Any) -> None:
        if not self.lifecycle.connections:
            self.start_error = _reason_error(reason)
        self.started.release()


def _reason_error(reason: Any) -> BaseException:
    if type(reason) is tuple and len(reason) == 2 and isinstance(reason[1], BaseException):
        return reason[1]
    return ConnError(f"the client ended before connecting: {reason!r}")


def client_of(target: Process | str) -> Client:
    """The client of a handle or a registered name (TypeError for another process)."""
    proc = resolve(target)
    if not isinstance(proc, Client):
        raise TypeError(f"{proc!r} is not a wsx client")
    return proc
