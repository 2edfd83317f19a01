"""Calling a client's callback module: the one definition of results, replies and crashes.

The :class:`Dispatcher` of a client turns the protocol's events into
callbacks (frames to ``handle_frame``, ``handle_ping``, ``handle_pong``; the
peer's close and protocol errors to the client's lifecycle), runs each
callback as the current process, reads the shape of its result, writes its
reply through the transport, and crashes the client (close 1011,
``terminate(("error", exc))``) when a callback raises or returns something
else. Both read paths use it: the Python one (:mod:`wsx.process.reader`) and
the compiled one (``wsx/process/_reader.pyx``), which calls :meth:`frame`
and :meth:`dispatch`.

When wsx is built, this very source is compiled by Cython into
``wsx.process._dispatcher`` (C fields declared in ``_dispatcher.pxd``), used
unless ``WSX_NO_EXTENSIONS`` is set.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._guard import must_propagate
from ..core.conn import Conn
from ..core.state import ProtocolState
from ..core.url import parse_url
from ..errors import BadResponseError, CloseCode, ConnError, NotConnectedError, WSXError
from ..telemetry import _handlers as _telemetry_handlers
from ..telemetry import execute as _telemetry
from .awaiting import PENDING, AsyncCallback, AsyncNotSupportedError, is_awaitable
from .base import _per_thread, is_normal_exit
from .callbacks import Callbacks
from .holds import HELD_FRAMES

if TYPE_CHECKING:  # (module names: the compiled twin has its own Protocol and Transport)
    from ..core import protocol as wsproto
    from ..io import transport as wstransport
    from .debug import DebugState
    from .owner import DispatcherOwner, KeepaliveView

__all__ = ["Dispatcher", "frame_size"]

logger = logging.getLogger("wsx")
_crash_log = logging.getLogger("wsx.crash")  # crash reports (see report_exit)

_FRAME_CALLBACKS = {"text": "handle_frame", "binary": "handle_frame",
                    "ping": "handle_ping", "pong": "handle_pong"}
_EV_RECEIVED = ("wsx", "frame", "received")
_EV_SENT = ("wsx", "frame", "sent")
_handlers = _telemetry_handlers  # changed in place, never rebound
_get_ident = threading.get_ident
_PROTOCOL_OPEN = ProtocolState.OPEN  # the protocol's state, not the lifecycle's OPEN


def frame_size(frame: Any) -> int:
    """Payload size of a public frame (the same measure for frames in and out)."""
    return 0 if type(frame) is not tuple else len(frame[-1])


class Dispatcher:
    """Runs the callbacks of one client (see the module documentation).

    ``open`` and ``hold`` mirror the client's lifecycle (written only by
    :class:`wsx.process.lifecycle.Lifecycle`): the connection is open; frames
    must wait (suspended) or be dropped (terminated).
    """

    def __init__(self, client: DispatcherOwner, cb: Callbacks[Any], state: Any,
                 transport: wstransport.Transport) -> None:
        self.client = client
        self.cb = cb
        self.state = state
        self.transport = transport
        self.protocol: wsproto.Protocol | None = None
        self.dbg: DebugState | None = None
        self.keepalive: KeepaliveView | None = None
        self.inbox: deque[wsproto.Event] = deque()  # events held while suspended
        self.in_callback = False
        self.open = False
        self.hold = False
        self._frame_cb: Any = None  # the module whose handle_frame is _handle_frame
        self._handle_frame: Any = None
        self.crashed_in: str | None = None  # the callback that crashed, for the report

    # --------------------------------------------------------------- events
    def receive(self, data: Any) -> None:
        """Bytes read from the socket (the Python read path)."""
        protocol = self.protocol
        if protocol is not None:
            self.dispatch(protocol, protocol.receive_data(data))

    def dispatch(self, protocol: wsproto.Protocol, events: list[wsproto.Event]) -> None:
        """Handle the events of one read, in order."""
        if events:
            if len(events) > 1 and self.transport.cork():
                # Several messages in one read: their replies go out in one
                # send (the server gets them in one segment, one system call).
                try:
                    self.handle_events(events)
                finally:
                    self.transport.uncork()
            elif len(events) == 1 and not self.hold:
                self.handle_event(events[0])
            else:
                self.handle_events(events)

    def handle_events(self, events: list[wsproto.Event]) -> None:
        """Handle events in order; from the first one that must wait, hold the rest."""
        for i, event in enumerate(events):
            if self.hold:
                if not self.client.terminated:
                    self.inbox.extend(events[i:])
                    if len(self.inbox) >= HELD_FRAMES:
                        self.client.holds.full()
                return
            self.handle_event(event)

    def drain(self) -> None:
        """Handle the events held while suspended."""
        inbox = self.inbox
        while inbox and not self.hold:
            self.handle_event(inbox.popleft())

    def handle_event(self, event: wsproto.Event) -> None:
        """One event of the protocol: a callback, or the peer's close or error."""
        kind = event if type(event) is str else event[0]
        name = _FRAME_CALLBACKS.get(kind)
        if name is not None:
            if kind == "pong" and self.keepalive is not None and self.keepalive.claim(event):
                return  # the answer to a keepalive ping, not the module's
            dbg = self.dbg
            if dbg is not None:
                dbg.event(self.client, "in", event)
                if dbg.stats is not None:
                    dbg.stats["frames_in"] += 1
            if _handlers:
                self._report(_EV_RECEIVED, event)
            self.call(name, event)
        elif kind == "close":
            self.answer_close()
            self.client.remote_close(event[1], event[2])
        elif kind == "error":
            self.answer_close()
            self.client.protocol_error(event[1])

    def answer_close(self) -> None:
        """Write the close frame the protocol owes the peer (its close or error is reached).

        Reached in order: the replies to the events before it (a pong, a
        ``("reply", ...)``) went out first.
        """
        protocol = self.protocol
        if protocol is not None:
            self.transport.answer_close(protocol)

    # ------------------------------------------------------------ callbacks
    def frame(self, event: wsproto.Event) -> bool:
        """``handle_frame(event)`` (the compiled read path's usual case); False if it crashed."""
        cb = self.cb
        if cb is not self._frame_cb:  # a new module (wsx.sys.change_code): look it up again
            self._handle_frame = cb.handle_frame
            self._frame_cb = cb
        return self._run("handle_frame", self._handle_frame, event)

    def call(self, name: str, arg: Any) -> bool:
        """Run the callback ``name`` with ``arg`` and apply its result; False if it crashed."""
        # handle_connect returns ("ok", state) only: it may neither reply nor close.
        return self._run(name, getattr(self.cb, name), arg, name != "handle_connect")

    def call_request(self, request: Any, caller: Any) -> bool:
        """``handle_call(request, caller, state)`` (:func:`wsx.call`); False if it crashed."""
        handle_call = self.cb.handle_call

        def run(req: Any, state: Any) -> Any:
            return handle_call(req, caller, state)

        return self._run("handle_call", run, request)

    def _run(self, name: str, fn: Any, arg: Any, acts: bool = True) -> bool:
        self.in_callback = True
        running = _per_thread.running
        previous = running.process
        running.process = self.client  # type: ignore[assignment]  # the owner is a Process
        error: BaseException | None = None
        try:
            result = fn(arg, self.state)
        except BaseException as exc:  # noqa: BLE001 - whatever it raises, the callback failed
            error = exc
        finally:
            self.in_callback = False
            running.process = previous
        if error is not None:
            self.crash(name, error)
            if must_propagate(error):  # Ctrl-C on the main thread (see wsx._guard)
                raise error
            return False
        return self.apply(name, result, acts)

    def run_plain(self, name: str, arg: Any) -> Any:
        """Run ``handle_disconnect`` or ``terminate`` as the current process; its raw result."""
        self.in_callback = True
        running = _per_thread.running
        previous = running.process
        running.process = self.client  # type: ignore[assignment]  # the owner is a Process
        try:
            return getattr(self.cb, name)(arg, self.state)
        finally:
            self.in_callback = False
            running.process = previous

    def apply(self, name: str, result: Any, acts: bool = True) -> bool:
        """Apply a callback's result: a new state; a reply or a close unless ``acts`` is
        False; a bad shape crashes."""
        if type(result) is tuple:
            shape = result
            n = len(shape)
            if n == 2 and shape[0] == "ok":
                self.state = shape[1]
                return True
            if acts and n >= 2:
                tag = shape[0]
                if n == 3 and tag == "reply":
                    self.state = shape[2]
                    try:
                        self.reply(name, shape[1])
                    except Exception as exc:  # noqa: BLE001 - e.g. UnicodeEncodeError too
                        # As WebSockex: a frame that cannot be sent closes the
                        # connection (1011) and handle_disconnect gets the error.
                        logger.error("%r: %s returned a reply that cannot be sent: %s",
                                     self.client, name, exc)
                        self._close(name, CloseCode.INTERNAL_ERROR, "", ("error", exc))
                        return False
                    return True
                if tag == "close" and n == 2:
                    self.state = shape[1]
                    return self._close(name, CloseCode.NORMAL, "", ("local", "normal"))
                if tag == "close" and n == 3 and type(shape[1]) is tuple and len(shape[1]) == 2:
                    code, text = shape[1]
                    self.state = shape[2]
                    return self._close(name, code, text, ("local", code, text))
        if is_awaitable(result):
            return self._await_result(name, result, acts)
        self.crash(name, BadResponseError(self.client.module, name, result))
        return False

    def _await_result(self, name: str, awaitable: Any, acts: bool) -> bool:
        """An ``async def`` callback of :meth:`_run`: its result applied once it returns."""

        def finish(result: Any) -> bool:
            if is_awaitable(result):
                self.crash(name, BadResponseError(self.client.module, name, result))
                return False
            return self.apply(name, result, acts)

        return self._await(name, awaitable, finish, lambda exc: self.crash(name, exc))

    def _await(self, name: str, awaitable: Any, finish: Callable[[Any], Any],
               fail: Callable[[BaseException], Any]) -> bool:
        """``finish(result)`` or ``fail(exc)`` once ``awaitable`` is done; until then the
        client holds (:mod:`wsx.process.awaiting`). False if it failed at once."""
        try:
            job = AsyncCallback(self.client, name, awaitable, finish, fail)
        except AsyncNotSupportedError as exc:
            fail(exc)
            return False
        if job.start():  # done already (an eager task): no hold
            return job.ok
        self.client.holds.busy(job)
        return True

    def reply(self, name: str, frame: Any) -> None:
        """Write a ``("reply", frame, state)`` frame (dropped unless the connection is open)."""
        protocol = self.protocol
        if not self.open or protocol is None or protocol.state is not _PROTOCOL_OPEN:
            logger.debug("%r: reply %r from %s not sent: the connection is %s",
                         self.client, frame, name, self.client.connection_state)
            return
        self.transport.write_frame(protocol, frame)
        if self.dbg is not None or _handlers:
            self.sent(frame, "reply", name)

    def send(self, frame: Any) -> None:
        """:func:`wsx.send_frame` on the loop thread: write ``frame`` now (or queue it)."""
        protocol = self.protocol
        if not self.open or protocol is None:
            raise NotConnectedError(self.client.connection_state)
        written = self.transport.write_frame(protocol, frame)
        self.sent(frame, "send")
        if not written:
            raise ConnError(f"cannot send {short(frame)}: the connection is broken")

    def send_direct(self, frame: Any) -> bool:
        """:func:`wsx.send_frame` from another thread, the usual case: write ``frame`` on it.

        False when the frame must go through the loop instead: the caller is
        the loop's thread; the connection is not open; it has an extension
        (permessage-deflate's shared compression context needs frames on the
        wire in the order they were encoded: the loop encodes and writes them
        in one go); a trace or telemetry is to report; the frame is not a
        data or control tuple, or is a close (which starts the close handshake
        on the loop). The transport adds its own conditions. Raises what the
        protocol raises for a bad frame, and ``OSError`` for a broken
        connection.
        """
        protocol = self.protocol
        transport = self.transport
        if (not self.open or protocol is None or protocol.extensions
                or self.dbg is not None or _handlers
                or type(frame) is not tuple or not frame or frame[0] == "close"
                or transport.loop.thread_id == _get_ident()):
            return False
        return bool(transport.send_direct(protocol, frame))

    def sent(self, frame: Any, kind: str, *args: Any) -> None:
        """Trace, count and report a frame written for the module."""
        dbg = self.dbg
        if dbg is not None:
            dbg.event(self.client, kind, *args, frame)
            if dbg.stats is not None:
                dbg.stats["frames_out"] += 1
        if _handlers and not (kind == "reply" and args == ("handle_ping",)
                              and _is_default_ping(self.cb)):
            self._report(_EV_SENT, frame)  # not the automatic pong of the default handle_ping

    def _report(self, event: Any, frame: Any) -> None:
        client = self.client
        _telemetry(event, {"time": time.time(), "size": frame_size(frame)},
                          {"client": client, "module": client.module, "conn": client.conn,
                           "frame": frame})

    def disconnect(self, status: Any) -> tuple[Any, ...] | None:
        """Run ``handle_disconnect``: ``("terminate", reason)`` or ``("reconnect", delay, conn)``.

        ``conn`` is the :class:`wsx.Conn` to reconnect with, or None to keep
        the current one. A raise or a bad shape terminates with the error.
        None while an ``async def`` handle_disconnect awaits: the decision
        then goes to ``client.decided``.
        """
        try:
            result = self.run_plain("handle_disconnect", status)
        except BaseException as exc:  # noqa: BLE001 - whatever it raises, the callback failed
            return self._disconnect_failed(exc)
        if is_awaitable(result):
            decided = self.client.decided
            self._await("handle_disconnect", result,
                        lambda result: decided(_decision(self, result, status)),
                        lambda exc: decided(self._disconnect_failed(exc)))
            return None
        return _decision(self, result, status)

    def _disconnect_failed(self, exc: BaseException) -> tuple[Any, ...]:
        self.crashed_in = "handle_disconnect"  # reported once, by report_exit
        logger.debug("%r: callback handle_disconnect raised %r", self.client, exc)
        return ("terminate", ("error", exc))

    def terminate(self, reason: Any) -> Any:
        """Run ``terminate(reason, state)``; the exit reason (``sys.exit()`` there changes it).

        ``PENDING`` while an ``async def`` terminate waits: the exit reason
        then goes to ``client.terminated_with``.
        """
        try:
            result = self.run_plain("terminate", reason)
        except BaseException as exc:  # noqa: BLE001 - the process ends anyway
            return self._terminate_failed(exc, reason)
        if is_awaitable(result):
            done = self.client.terminated_with
            self._await("terminate", result, lambda _: done(reason),
                        lambda exc: done(self._terminate_failed(exc, reason)))
            return PENDING
        return reason

    def _terminate_failed(self, exc: BaseException, reason: Any) -> Any:
        if isinstance(exc, SystemExit):
            # WebSockex's tip: exit(:normal) from terminate makes the exit normal.
            return "normal" if exc.code in (None, 0, "normal") else ("exit", exc.code)
        logger.error("%r: callback terminate raised", self.client, exc_info=exc)
        return reason

    def _close(self, name: str, code: Any, text: Any, reason: Any) -> bool:
        try:
            self.client.local_close(code, text, reason)
        except Exception as exc:  # noqa: BLE001 - e.g. UnicodeEncodeError too
            self.crash(name, exc)
            return False
        return True

    def report_exit(self, reason: Any) -> None:
        """Log an abnormal exit once, at ERROR, as a crash report (normal exits: nothing).

        The report names the client, its module, the reason, the callback
        that crashed (if one did) and the state as ``format_status("terminate",
        state)`` shows it (so that secrets can be hidden there too).
        """
        if is_normal_exit(reason):
            return
        try:
            state = self.cb.format_status("terminate", self.state)
        except Exception as exc:  # noqa: BLE001 - the report goes out anyway
            state = f"<format_status raised {exc!r}>"
        error = reason[1] if (type(reason) is tuple and len(reason) == 2 and reason[0] == "error"
                              and isinstance(reason[1], BaseException)) else None
        _crash_log.error("%r exited abnormally\n  module: %r\n  reason: %r\n  callback: %s\n"
                     "  state: %r", self.client, self.client.module, reason,
                     self.crashed_in or "none (not a callback)", state,
                     exc_info=None if isinstance(error, BadResponseError) else error)

    def crash(self, name: str, exc: BaseException) -> None:
        """A callback raised or returned a bad value: close 1011, terminate abnormally."""
        self.crashed_in = name  # named by the crash report
        logger.debug("%r: callback %s failed: %r", self.client, name, exc)
        protocol = self.protocol
        if (self.transport.sock is not None and protocol is not None
                and protocol.state is _PROTOCOL_OPEN):
            try:
                self.transport.write_close(protocol, CloseCode.INTERNAL_ERROR, "")
            except WSXError:
                pass
        self.client.terminate(("error", exc))


def _decision(d: Dispatcher, result: Any, status: Any) -> tuple[Any, ...]:
    """What ``handle_disconnect``'s result decides (see :meth:`Dispatcher.disconnect`)."""
    if type(result) is tuple and result:
        tag = result[0]
        n = len(result)
        if tag == "ok" and n == 2:
            d.state = result[1]
            return ("terminate", status.reason)
        if tag == "reconnect" and n == 2:
            d.state = result[1]
            return ("reconnect", 0.0, None)
        if tag == "reconnect" and n == 3 and isinstance(result[1], (Conn, str)):
            try:
                conn = as_conn(result[1], status.conn)
            except WSXError as exc:
                error = BadResponseError(d.client.module, "handle_disconnect", result)
                error.__cause__ = exc
                d.crashed_in = "handle_disconnect"
                logger.debug("%r: %s (%s)", d.client, error, exc)
                return ("terminate", ("error", error))
            d.state = result[2]
            return ("reconnect", 0.0, conn)
        if (tag == "reconnect_after" and n == 3 and isinstance(result[1], (int, float))
                and result[1] >= 0):
            d.state = result[2]
            return ("reconnect", float(result[1]), None)
    error = BadResponseError(d.client.module, "handle_disconnect", result)
    d.crashed_in = "handle_disconnect"
    logger.debug("%r: %s", d.client, error)
    return ("terminate", ("error", error))


def _is_default_ping(cb: Any) -> bool:
    """True when ``cb.handle_ping`` is the default one (it answers every ping with a pong)."""
    return getattr(cb.handle_ping, "__func__", None) is Callbacks.handle_ping


def as_conn(target: Any, current: Any) -> Any:
    """A ``Conn`` from a ``("reconnect", conn_or_url, state)`` return: a URL keeps the options."""
    if isinstance(target, Conn):
        return target
    conn = copy.copy(current)
    conn.url = parse_url(target)
    conn.resp_headers, conn.subprotocol, conn.extensions = None, None, []
    return conn


def short(frame: Any) -> str:
    """A frame's repr for error messages, at most 80 characters."""
    text = repr(frame)
    return text if len(text) <= 80 else text[:77] + "..."
