"""The connection process: a WebSocket connection driven by a callback module, either role.

A :class:`Connection` lives on a loop (:class:`~wsx.io.hostloop.HostLoop`)
and owns the objects of its connection, each with one concern:

* its :class:`~wsx.process.lifecycle.Lifecycle` (the state, and the one
  place it changes, by its role's table of transitions);
* its :class:`~wsx.io.transport.Transport` (the socket, writes,
  backpressure), :class:`~wsx.process.dispatcher.Dispatcher` (callbacks and
  their results), read path (:class:`~wsx.process.reader.Reader`, behind the
  compiled ``FastReader`` when built), with ``ping_interval`` its
  :class:`~wsx.process.keepalive.Keepalive`, its close deadline, mailbox,
  holds and the stop asked of it.

It runs what every connection does, whichever end opened it: once the
opening handshake is done (:meth:`Connection.opened`), ``handle_connect``,
the frames, the close handshake (bounded by ``close_timeout``), the
disconnect and ``handle_disconnect``'s decision, termination, the mailbox
of casts and infos, and links. What a role adds is in its subclass:
:class:`~wsx.process.client.Client` opens the connection (connector,
upgrade) and reconnects. Everything here runs on the loop's thread;
:mod:`wsx.process.api` is the thread-safe front.

Linking: ``start_link`` links the new process to the *current process* (the
supervisor starting it, or the wsx process whose callback called it). When one
of two linked processes exits abnormally, the other is told: a supervisor
applies its restart strategy; a connection terminates with reason
``("linked_exit", process, reason)`` unless its module sets
``trap_exit = True``, in which case ``handle_info`` receives
``("EXIT", process, reason)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._twins import compiled
from ..core.conn import Conn
from ..errors import CallingSelfError, ConnError, FrameEncodeError, WSXError
from .awaiting import PENDING
from .base import Process
from .callbacks import DisconnectStatus, resolve_module
from .closing import CloseDeadline
from .debug import DebugState
from .holds import Holds
from .keepalive import Keepalive
from .lifecycle import (
    CLOSING,
    CONNECTING,
    DISCONNECTED,
    OPEN,
    TERMINATED,
    TERMINATING,
    Lifecycle,
    State,
)
from .mailbox import Mailbox
from .reader import Reader
from .stopping import Stopping

if TYPE_CHECKING:
    from ..core.protocol import Protocol
    from ..io.hostloop import HostLoop
    from ..io.transport import Transport
    from .dispatcher import Dispatcher
else:
    # Built together: the compiled dispatcher and reader take the compiled
    # transport and protocol.
    _protocol = compiled("wsx.core._protocol")
    _transport = compiled("wsx.io._transport")
    _dispatcher = compiled("wsx.process._dispatcher")
    if _protocol is None or _transport is None or _dispatcher is None:
        from ..core.protocol import Protocol
        from ..io.transport import Transport
        from .dispatcher import Dispatcher
    else:
        Protocol = _protocol.Protocol
        Transport, Dispatcher = _transport.Transport, _dispatcher.Dispatcher

_reader = compiled("wsx.process._reader")
#: The compiled read path, or None (the Python Reader only).
FastReader: Any = None if _reader is None else _reader.FastReader

__all__ = ["Connection", "Protocol"]

logger = logging.getLogger("wsx")


class Connection(Process):
    """A WebSocket connection process, of either role (see the module documentation).

    A role's subclass gives :attr:`transitions` (its lifecycle table),
    joins its loop (:meth:`_hosted`) last in its ``__init__``, opens the
    connection and calls :meth:`opened`, and says what a disconnect leads to
    beyond terminating (:meth:`_reconnect`).
    """

    #: The role's lifecycle table: state -> the states it may go to.
    transitions: dict[State, frozenset[State]]

    def __init__(self, conn: Conn, module: Any, state: Any, *, loop: HostLoop,
                 name: str | None = None, debug: Any = ()) -> None:
        cb = resolve_module(module)
        dbg = DebugState(debug)
        super().__init__(name)
        self.module = module
        self.conn = conn
        self.loop = loop
        self.transport: Transport = Transport(loop, self.connection_lost)
        self.dispatcher: Dispatcher = Dispatcher(self, cb, state, self.transport)
        self.lifecycle = Lifecycle(self, self.transitions)
        self.reader = Reader(self)
        self._fast = None if FastReader is None else FastReader(self.reader)
        # What the loop calls when the socket of an open connection is readable.
        self.read_path: Callable[[], None] = self._fast or self.reader
        self.keepalive: Keepalive | None = None
        self.close_deadline = CloseDeadline(self)
        self.mailbox = Mailbox(self)
        self.holds = Holds(self)
        self.close_reason: Any = None
        #: What terminate was called with (TERMINATING: its exit reason, unless it says else).
        self.terminate_reason: Any = None
        self.stopping = Stopping(self)  # wsx.stop, or an exit signal
        self.set_debug(dbg if dbg.active else None)

    def _hosted(self) -> None:
        """Join the loop's tenants (ended if it is closed under them): a role's last step
        of construction, once every field a kill may touch is set."""
        self.loop.tenants.add(self)

    # ------------------------------------------------- internal interface
    @property
    def connection_state(self) -> str:
        """``"connecting"``, ``"open"``, ``"closing"``, ``"disconnected"`` or ``"terminated"``."""
        return self.lifecycle.public_name

    state_name = connection_state  # its alias

    @property
    def terminated(self) -> bool:
        """True once the process ended (its last state)."""
        return self.lifecycle.state is TERMINATED

    @property
    def suspended(self) -> bool:
        """True while :func:`wsx.sys.suspend` holds its frames and messages."""
        return self.lifecycle.suspended

    @property
    def debug(self) -> DebugState | None:
        """The debug state (trace, log, statistics), None when all are off."""
        dbg: DebugState | None = self.dispatcher.dbg
        return dbg

    def set_debug(self, dbg: DebugState | None) -> None:
        """Switch the debug state (:mod:`wsx.sys`); ``None`` turns all debug work off."""
        self.dispatcher.dbg = dbg
        self.transport.stats = None if dbg is None else dbg.stats
        self.transport.note = None if dbg is None else self.event

    def event(self, kind: str, *args: Any) -> None:
        """Record a debug event (trace line, log entry) when debugging is on."""
        dbg = self.dispatcher.dbg
        if dbg is not None:
            dbg.event(self, kind, *args)

    @property
    def pending_messages(self) -> int:
        """Casts and infos waiting in the mailbox."""
        return len(self.mailbox)

    # --------------------------------------------------------------- opening
    def opened(self, protocol: Protocol, leftover: bytes) -> None:
        """The opening handshake is done: OPEN with ``protocol``, then ``handle_connect``.

        ``leftover``: the bytes that came with the handshake, the start of the
        frame stream, parsed before anything is read from the socket (their
        events wait in the inbox until ``handle_connect`` accepted).
        """
        conn = self.conn
        self.dispatcher.protocol = protocol
        if leftover:
            self.dispatcher.inbox.extend(protocol.receive_data(leftover))
        self.transport.limit(conn.write_limit)
        if self.debug is not None:
            self.debug.connected(reconnect=self.lifecycle.connections > 0)
        self.lifecycle.to(OPEN, "connected", report={"conn": conn})
        if self.lifecycle.suspended:  # wsx.sys.resume goes on from here
            self.transport.stop_reading()  # (the handshake's reader)
            self.holds.defer(lambda: self._connected(read=False))
        else:
            self._connected()

    def _connected(self, read: bool = True) -> None:
        """Keep alive, call ``handle_connect``; ``read``: read from now on (else, once resumed,
        reading starts after it accepted: what arrived comes before waiting messages)."""
        conn = self.conn
        if read:
            self.transport.start_reading(self.read_path)
        if conn.ping_interval is not None and conn.ping_timeout is not None:
            self.keepalive = Keepalive(self, conn.ping_interval, conn.ping_timeout)
            self.dispatcher.keepalive = self.keepalive
            self.keepalive.start()
        if not self.dispatcher.call("handle_connect", conn):
            return
        job = self.holds.job
        if job is not None:  # an async handle_connect awaits: go on once it accepted
            job.then(self._accepted)
        else:
            self._accepted()

    def _accepted(self) -> None:
        """``handle_connect`` accepted the connection: what arrived meanwhile, in order."""
        self.lifecycle.connections += 1
        self._on_accepted()
        self.holds.release()  # what waits, in order (and reading, if not on yet)

    def _on_accepted(self) -> None:
        """What the role does once ``handle_connect`` accepted, before anything held runs."""

    def connect_failed(self, error: WSXError) -> None:
        """The opening failed: the role decides (a client may retry)."""
        self._teardown()
        self.event("connect_failed", error)
        self._disconnected(("error", error))

    # --------------------------------------------------------------- closing
    def local_close(self, code: Any, text: Any, reason: Any) -> None:
        """Start the close handshake (a callback's ``("close", ...)``, or a stop)."""
        protocol = self.dispatcher.protocol
        if self.lifecycle.state is not OPEN or protocol is None:
            return
        if not isinstance(text, str):
            raise FrameEncodeError(f"close reason must be a str, not {text!r}")
        self.transport.write_close(protocol, code, text)  # validates code and reason
        self.close_reason = reason
        self.event("close", reason)
        self.lifecycle.to(CLOSING, "close_frame", reason)
        self._start_close_timer()

    def remote_close(self, code: int | None, text: str) -> None:
        """The peer's close frame arrived (the dispatcher answers it)."""
        if self.close_reason is None:
            self.close_reason = ("remote", "normal") if code is None else ("remote", code, text)
        self._closing("remote_close", (code, text))

    def protocol_error(self, error: Any) -> None:
        """The peer broke the protocol (the dispatcher sends the close frame owed)."""
        logger.info("%r: the peer broke the protocol: %s", self, error)
        if self.close_reason is None:
            self.close_reason = ("error", error)
        self._closing(None)

    def _closing(self, event: str | None, *args: Any) -> None:
        if self.lifecycle.state is OPEN:
            self.lifecycle.to(CLOSING, event, *args)
        elif event is not None:
            self.event(event, *args)
        self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self.transport.waiters:
            self.transport.release_waiters(all_=True)  # they fail: the connection is closing
        self.close_deadline.start()

    def eof_reason(self) -> Any:
        """The disconnect reason when the peer closes TCP."""
        return self.close_reason or ("remote", "closed")

    def drop(self, reason: Any) -> None:
        """End the connection now with ``reason`` (the keepalive found it dead)."""
        self.close_reason = reason
        self.connection_lost(self.transport.sock, reason)

    # ------------------------------------------------------- disconnecting
    def _teardown(self) -> int:
        """Drop the socket, timers and keepalive of the connection (and the role's opening).

        Returns the bytes accepted for sending that were dropped unsent.
        """
        self.transport.uncork()  # e.g. the close frame of a crash, gathered with replies
        self.holds.connection_ended()  # what waited for this connection goes with it
        self.close_deadline.cancel()
        if self.keepalive is not None:
            self.keepalive.stop()
            self.keepalive = self.dispatcher.keepalive = None
        self._cancel_opening()
        dropped = self.transport.close()
        if self._fast is not None:
            self._fast.forget()  # it lets go of the socket and protocol
        protocol = self.dispatcher.protocol
        if protocol is not None:
            protocol.receive_eof()
        if self.debug is not None:
            self.debug.disconnected()
        return dropped

    def _cancel_opening(self) -> None:
        """Cancel what the role runs to open a connection (nothing here)."""

    def connection_lost(self, sock: Any, reason: Any) -> None:
        """The connection ``sock`` ended with ``reason`` (ignored if it is not current)."""
        if sock is None or sock is not self.transport.sock or self.terminated:
            return
        protocol = self.dispatcher.protocol
        if (protocol is not None and protocol.close_received is not None
                and self.close_reason is not None):
            # The peer's close frame arrived: that is how the connection ended,
            # whatever TCP does after it (a reset, an error on a late write).
            reason = self.close_reason
        was_connecting = self.lifecycle.state is CONNECTING
        dropped = self._teardown()
        if was_connecting:
            error = reason[1] if type(reason) is tuple and reason[0] == "error" else ConnError(
                "connection closed during the handshake")
            self.connect_failed(error)
            return
        self._disconnected(reason, dropped)

    def _attempt(self) -> int:
        """The attempt number ``handle_disconnect`` is told (a client counts reconnects)."""
        return 0

    def _disconnected(self, reason: Any, dropped: int = 0) -> None:
        self.dispatcher.protocol = None
        attempt = self._attempt()
        self.lifecycle.to(DISCONNECTED, "disconnected", reason,
                          report={"reason": reason, "attempt_number": attempt})
        if self.stopping.asked:
            # A stop that could not send what it had accepted does not end cleanly.
            self.terminate(_lost_data(reason, dropped) if dropped else self.stopping.reason)
            return
        if self.lifecycle.suspended:  # handle_disconnect waits for wsx.sys.resume
            self.holds.defer(lambda: self._decide(reason, attempt))
        else:
            self._decide(reason, attempt)

    def _decide(self, reason: Any, attempt: int) -> None:
        """Ask ``handle_disconnect`` (at once, or once resumed) what follows the disconnect."""
        if self.stopping.asked:  # asked while suspended
            self.terminate(self.stopping.reason)
            return
        decision = self.dispatcher.disconnect(DisconnectStatus(reason, attempt, self.conn))
        if decision is not None:  # else an async handle_disconnect awaits, then decides
            self.decided(decision)

    def decided(self, decision: tuple[Any, ...]) -> None:
        """What ``handle_disconnect`` decided: terminate, or (a role that may) reconnect."""
        if self.lifecycle.state is not DISCONNECTED:
            return  # it ended meanwhile
        if self.stopping.asked or decision[0] == "terminate":  # a stop wins over the decision
            self.terminate(self.stopping.reason if self.stopping.asked else decision[1])
            return
        self._reconnect(decision[1], decision[2])

    def _reconnect(self, delay: float, conn: Conn | None) -> None:
        """``handle_disconnect`` returned a reconnect; a role without reconnects terminates."""
        self.terminate(("error", WSXError(
            f"{self.module!r}: handle_disconnect returned a reconnect, but this side of the "
            "connection cannot reconnect")))

    def terminate(self, reason: Any) -> None:
        """End the process: ``terminate(reason, state)`` (once), then the exit (links told)."""
        state = self.lifecycle.state
        if state is TERMINATING or state is TERMINATED:
            return
        self.abandon_connection()
        self.terminate_reason = reason
        self.lifecycle.to(TERMINATING)
        exit_reason = self.dispatcher.terminate(reason)
        if exit_reason is not PENDING:  # else an async terminate waits, then ends it
            self.terminated_with(exit_reason)

    def terminated_with(self, reason: Any) -> None:
        """``terminate`` has run: the exit, with ``reason`` (links and monitors told)."""
        self._exit_now("terminate", reason)

    def _exit_now(self, event: str | None, reason: Any) -> None:
        """The one way every end finishes: report, TERMINATED, the role's last word, the exit.

        ``event`` names the end for the crash report, the trace and
        telemetry; None: an end the role reports in its own way (a client's
        failed start, whose error goes to the caller).
        """
        if event is None:
            self.lifecycle.to(TERMINATED)
        else:
            self.dispatcher.report_exit(reason)
            self.lifecycle.to(TERMINATED, event, reason, report={"reason": reason})
        # The last state: what was waiting for the process is dropped.
        self.stopping.ended()
        self.mailbox.clear()
        self.dispatcher.inbox.clear()
        if self.debug is not None:
            self.debug.close()  # a log_to_file file
        self._ending(reason)
        self._exit(reason)

    def _ending(self, reason: Any) -> None:
        """What the role does as the process ends with ``reason``, just before its exit."""

    def abandon_connection(self) -> None:
        """Drop the connection and its protocol (the process is about to end)."""
        self._teardown()
        self.dispatcher.protocol = None

    def kill(self, reason: Any = "killed") -> None:
        """End now with ``reason``, without ``terminate`` (Erlang's ``exit(Pid, kill)``).

        The connection is dropped, an awaiting async callback cancelled, the
        exit reported and told to links and monitors. From another thread
        while the loop runs, it is posted to the loop. Nothing once ended.
        """
        if self.terminated:
            return
        loop = self.loop
        if loop.running and not loop.in_loop_thread():
            loop.call_soon_threadsafe(self.kill, reason)
            return
        self.abandon_connection()
        self._exit_now("killed", reason)

    def host_loop_closed(self) -> None:
        """Its loop was closed (nothing would run it again): killed with a ConnError."""
        if not self.terminated:
            self.kill(("error", ConnError(
                f"its loop {self.loop.name} was closed while the process ran")))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the exit; True if within ``timeout``. CallingSelfError on the loop thread."""
        if not self._exited.is_set() and self.loop.in_loop_thread():
            raise CallingSelfError(
                "join", "the process exits on this loop's thread, which join would block; "
                "link to it or use wsx.stop to end it")
        return super().join(timeout)

    def _on_linked_exit(self, other: Process, reason: Any) -> None:
        self.loop.call_soon_threadsafe(self.stopping.linked_exit, other, reason)


def _lost_data(reason: Any, dropped: int) -> Any:
    """The exit reason of a stop whose connection ended with ``dropped`` bytes unsent."""
    if type(reason) is tuple and reason and reason[0] == "error":
        return reason
    return ("error", ConnError(f"the connection ended ({reason!r}) with {dropped} bytes "
                               "accepted for sending not written"))
