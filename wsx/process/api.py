"""The public functions on clients, safe to call from any thread, and :class:`WebSocket`.

``start_link`` / ``start`` create a :class:`~wsx.process.client.Client` and
wait for its first connection; ``send_frame``, ``cast``, ``send`` and
``stop`` post to the client's loop and, for the synchronous ones, wait for
the answer. A ``send_frame`` from a thread other than the loop's is written
by that thread when nothing is pending (``Dispatcher.send_direct`` says
when, ``Transport.send_direct`` writes), else
handed to the loop, which writes it or parks it while the output is over
``write_limit`` (at most ``send_timeout``).
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, overload

from ..core.conn import Conn
from ..errors import (
    CallingSelfError,
    CloseCode,
    ConnError,
    InvalidFrameError,
    NotConnectedError,
    TimeoutExpired,
)
from ..io.handoff import Signal
from ..io.loop import Loop, get_default_loop
from .base import current_process
from .callbacks import CallbackModule, Callbacks, CloseFrame, OutFrame, S
from .client import Client, client_of
from .dispatcher import short
from .lifecycle import OPEN
from .loopcall import run_on_loop
from .watchdog import watch

if TYPE_CHECKING:
    from ..io.hostloop import HostLoop

__all__ = ["WebSocket", "start_link", "start", "send_frame", "cast", "send", "stop"]

logger = logging.getLogger("wsx")


class WebSocket(Callbacks[S]):
    """Base class of callback modules; every callback has WebSockex's default.

    Subclasses are instantiated once per client process; ``self`` can hold
    helpers, while the connection's evolving data belongs in ``state``.

    Generic over the type of the state: ``class Feed(wsx.WebSocket[FeedState])``
    lets a type checker check each callback's result (:data:`wsx.FrameResult`
    and the other aliases) and the state given to :func:`wsx.start_link`. A
    bare ``wsx.WebSocket`` is ``wsx.WebSocket[Any]``.
    """

    @overload
    @classmethod
    def start_link(cls: type[WebSocket[None]], state: None = None, **opts: Any) -> Client: ...
    @overload
    @classmethod
    def start_link(cls, state: S, **opts: Any) -> Client: ...
    @classmethod
    def start_link(cls, state: Any = None, **opts: Any) -> Client:
        """Start a client of this module linked to the caller.

        Uses the class attribute ``url`` (define it, or override
        ``start_link`` as in WebSockex: ``return wsx.start_link(URL, cls, state)``).
        For a type checker the state may be left out only when the state type
        is ``None`` (or ``Any``: a bare ``wsx.WebSocket``); an override
        ``def start_link(cls, state: MyState, **opts: Any) -> wsx.Client`` fits.
        """
        url = getattr(cls, "url", None)
        if url is None:
            raise TypeError(
                f"{cls.__qualname__}.start_link needs a class attribute 'url', or override "
                "start_link to call wsx.start_link(url, cls, state)"
            )
        return start_link(url, cls, state, **opts)

    @classmethod
    def child_spec(cls, arg: Any = None) -> dict[str, Any]:
        """The default supervisor child spec: start with ``cls.start_link(arg)``, permanent."""
        return {"id": cls, "start": (cls.start_link, (arg,)), "restart": "permanent"}


# Every keyword of wsx.Conn is a connection option of start_link / start.
_CONN_OPTIONS = tuple(
    name for name, p in inspect.signature(Conn.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def asyncio_host(value: Any) -> HostLoop | None:
    """The host of clients on the asyncio loop ``value`` (or that host); None if not one.

    (Without importing asyncio: a program that never did has no asyncio loop.)
    """
    aioloop = sys.modules.get("wsx.io.aioloop")
    if aioloop is not None and isinstance(value, aioloop.AsyncioLoop):
        return value  # type: ignore[no-any-return]
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not isinstance(value, asyncio.AbstractEventLoop):
        return None
    from ..io.aioloop import for_loop

    return for_loop(value)


def _start(url_or_conn: Any, module: Any, state: Any, link: bool, opts: dict[str, Any],
           host: HostLoop | None = None) -> Client:
    """Make and begin a client; ``host``: the loop when no ``loop`` option says (wsx.aio)."""
    opts = dict(opts)
    conn_opts = {k: opts.pop(k) for k in _CONN_OPTIONS if k in opts}
    if isinstance(url_or_conn, Conn):
        if conn_opts:
            raise TypeError(
                f"connection options {sorted(conn_opts)} cannot be combined with a Conn: "
                "give them to wsx.Conn(...)"
            )
        conn = url_or_conn
    else:
        conn = Conn(url_or_conn, **conn_opts)
    loop_opt = opts.pop("loop", None)
    name = opts.pop("name", None)
    async_connect = bool(opts.pop("async_connect", False))
    handle_failure = bool(opts.pop("handle_initial_conn_failure", False))
    debug = opts.pop("debug", ())
    if opts:
        raise TypeError(f"unknown option(s) {', '.join(sorted(opts))}")
    own: Loop | None = None
    loop: HostLoop
    if host is not None and loop_opt is None:
        loop = host
    elif isinstance(loop_opt, str) and loop_opt == "own":
        # Not watched (slow_callback None): blocking is what it is for.
        loop = own = Loop(name="wsx-own-loop", slow_callback=None)
    elif loop_opt is None:
        # A supervisor's children run on its loop (Supervisor.start_link(loop=...)).
        loop = getattr(current_process(), "children_loop", None) or get_default_loop()
    elif isinstance(loop_opt, Loop):
        loop = loop_opt
    elif (adapter := asyncio_host(loop_opt)) is not None:
        loop = adapter
    else:
        raise TypeError(f"loop must be a wsx.Loop, an asyncio event loop or \"own\", "
                        f"not {loop_opt!r}")
    if not async_connect and loop.in_loop_thread():
        raise CallingSelfError(
            "start_link/start without async_connect=True on the loop's own thread "
            "(waiting for the connection would block the loop)"
        )
    try:
        client = Client(conn, module, state, loop=loop, name=name, debug=debug,
                        handle_initial_conn_failure=handle_failure)
    except BaseException:
        if own is not None:
            own.close()
        raise
    if own is not None:
        own.name = f"wsx-own-loop-{name or client.id}"
        client._watch(_LoopOwner(own))
        own.start_thread(close=True)
    if isinstance(loop, Loop):
        watch(loop)
    parent = current_process() if link else None
    if parent is not None:
        client.link(parent)
    loop.call_soon_threadsafe(client.begin)
    if not async_connect:
        while not client.started.wait(1.0):
            if not loop.running:
                error = ConnError(f"the loop {loop.name!r} is not running")
                # Do not leave a client behind (holding its name) that would
                # connect if the loop ran later: it ends now, for everyone.
                client._exit(("error", error))
                loop.call_soon_threadsafe(client.abandon)
                raise error
        if client.start_error is not None and not client.lifecycle.connections:
            raise client.start_error
    return client


class _LoopOwner:
    """Stops a client's own loop (``loop="own"``) when the client exits; the
    loop's thread then closes it."""

    __slots__ = ("loop",)

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def fire(self, reason: Any) -> None:
        self.loop.stop()


@overload
def start_link(url_or_conn: str | Conn, module: CallbackModule[S], state: S,
               **opts: Any) -> Client: ...
@overload
def start_link(url_or_conn: str | Conn, module: CallbackModule[None], state: None = None,
               **opts: Any) -> Client: ...
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

    ``loop`` is a :class:`wsx.Loop`, by default the shared one, or ``"own"``:
    a loop thread made for this client alone, started with it and ended when
    it exits. Its callbacks may then block without delaying other clients
    (and without the slow-callback warning), at the price of one thread per
    client, and of GIL contention between loop threads that are busy at the
    same time (many "own" clients under load use more CPU per message than
    the same clients sharing one loop).

    The client is linked to the *current process*: the supervisor starting
    it, or the wsx client whose callback called ``start_link`` (see
    :mod:`wsx.process.client`). Called from a plain thread (no current
    process), it links to nothing and behaves like :func:`start`.
    """
    return _start(url_or_conn, module, state, True, opts)


@overload
def start(url_or_conn: str | Conn, module: CallbackModule[S], state: S, **opts: Any) -> Client: ...
@overload
def start(url_or_conn: str | Conn, module: CallbackModule[None], state: None = None,
          **opts: Any) -> Client: ...
def start(url_or_conn: str | Conn, module: Any, state: Any = None, **opts: Any) -> Client:
    """Like :func:`start_link`, without a link: the client's end never affects the caller."""
    return _start(url_or_conn, module, state, False, opts)


def send_frame(client: Client | str, frame: OutFrame | CloseFrame) -> None:
    """Send a frame and return once it is written to the socket (buffer).

    Backpressure: while the connection's pending output is over its
    ``write_limit`` (the server reads slower than we write), a call from a
    thread other than the loop's waits for it to drain, at most
    ``send_timeout`` seconds, then raises :class:`TimeoutExpired` (the frame
    is not sent; the connection stays open). Called on the loop's thread
    (e.g. from another client's callback) it never waits: the frame is queued.

    ``"close"`` and ``("close", code, reason)`` start the close handshake
    (code 1000 / ``code``), as in WebSockex; the client then disconnects
    with ``("local", "normal")`` / ``("local", code, reason)``.

    Raises :class:`NotConnectedError` while connecting or closing,
    :class:`ConnError` on a broken connection, :class:`InvalidFrameError` /
    :class:`FrameEncodeError` for a bad frame, and :class:`CallingSelfError`
    when called from the client's own callback (return ``("reply", frame,
    state)`` there instead).
    """
    c = client if type(client) is Client else client_of(client)
    try:
        if c.dispatcher.send_direct(frame):  # the usual case: written by this thread
            return
    except OSError as exc:
        raise ConnError(f"cannot send {short(frame)}: the connection is broken", exc) from None
    if c.loop.in_loop_thread():
        if c.dispatcher.in_callback:
            raise CallingSelfError("send_frame")
        if not _close_frame(c, frame):
            c.dispatcher.send(frame)
        return
    if not c.alive:
        raise NotConnectedError("terminated")
    if not _close_frame(c, frame):
        _send_via_loop(c, frame)


def _close_frame(c: Client, frame: Any) -> bool:
    """``"close"`` / ``("close", code, reason)``: start the close handshake (True), as WebSockex."""
    reason: tuple[Any, ...]
    if frame == "close":
        code, text, reason = CloseCode.NORMAL, "", ("local", "normal")
    elif type(frame) is tuple and frame and frame[0] == "close":
        if len(frame) != 3:
            raise InvalidFrameError(frame, 'expected "close" or ("close", code, reason)')
        code, text = frame[1], frame[2]
        reason = ("local", code, text)
    else:
        return False

    def start() -> None:
        if c.lifecycle.state is not OPEN:
            raise NotConnectedError(c.connection_state)
        c.local_close(code, text, reason)  # validates the code and the reason

    run_on_loop(c, start)
    return True


class _SendWaiter:
    """A :func:`send_frame` from another thread, waiting for the loop's answer."""

    __slots__ = ("client", "frame", "done", "error")

    def __init__(self, client: Client, frame: Any, done: Any = None) -> None:
        self.client = client
        self.frame = frame
        #: Set once answered: a Signal for a thread, a FutureSignal for a coroutine.
        self.done = Signal() if done is None else done
        self.error: BaseException | None = None

    def run(self) -> None:
        """Send the frame now (on the loop thread); its error goes to the waiting thread."""
        try:
            self.client.dispatcher.send(self.frame)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.error = exc
        self.done.set()

    def fail(self) -> None:
        """The connection ended while the frame was parked."""
        self.error = ConnError(
            f"cannot send {short(self.frame)}: the connection ended while the frame "
            "waited for the write buffer to drain")
        self.done.set()

    def send_or_park(self) -> None:
        """Loop side: send, or park while the output is over ``write_limit`` (in order)."""
        c = self.client
        if _must_park(c):
            c.transport.park(self)
            return
        self.run()

    def expire(self, timeout: float) -> None:
        """Loop side: ``send_timeout`` passed; drop the frame unless it went out meanwhile."""
        c = self.client
        if not c.transport.unpark(self):
            return  # already sent or failed: its thread has the answer
        self.error = TimeoutExpired(
            "send_timeout", timeout,
            f"send_frame({short(self.frame)}) not sent: the write buffer of {c!r} "
            f"stayed over write_limit={c.transport.write_limit} bytes "
            f"({len(c.transport.wbuf)} bytes pending; the server is not reading)",
        )
        self.done.set()


def _must_park(c: Client) -> bool:
    """Loop side: a frame sent now must wait (the output is over ``write_limit``)."""
    return c.dispatcher.open and c.transport.must_park()


def _send_via_loop(c: Client, frame: Any) -> None:
    """Hand the frame to the loop and wait, at most ``send_timeout`` for the buffer to drain."""
    waiter = _SendWaiter(c, frame)
    loop = c.loop
    loop.post(waiter.send_or_park)  # the first wait wakes the loop
    timeout = c.conn.send_timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    done = waiter.done
    wake: HostLoop | None = loop
    while True:
        wait = 1.0
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                # Ask the loop to drop the frame; it answers either way.
                loop.call_soon_threadsafe(waiter.expire, timeout)
                deadline = None
                continue
        if done.wait(wait, wake):
            break
        wake = None
        if not loop.running:
            raise NotConnectedError("gone (its loop is not running)")
    if waiter.error is not None:
        raise waiter.error


def cast(client: Client | str, msg: Any) -> None:
    """Send ``msg`` to the client's ``handle_cast``; returns at once.

    A message to a client that is not alive is dropped, whatever its loop
    (nothing is posted to it; logged at debug level).
    """
    c = client_of(client)
    if c.alive:
        c.loop.call_soon_threadsafe(c.mailbox.deliver, "cast", msg)
    else:
        _dropped(c, "cast", msg)


def send(client: Client | str, msg: Any) -> None:
    """Send ``msg`` to the client's ``handle_info``; returns at once (dropped as :func:`cast`)."""
    c = client_of(client)
    if c.alive:
        c.loop.call_soon_threadsafe(c.mailbox.deliver, "info", msg)
    else:
        _dropped(c, "info", msg)


def _dropped(c: Client, kind: str, msg: Any) -> None:
    logger.debug("%r: %s %r dropped: the client is not alive", c, kind, msg)


def stop(client: Client | str, reason: Any = "normal", timeout: float | None = 10.0) -> bool:
    """Close the connection (close handshake), terminate the client and wait for its end.

    ``terminate(reason, state)`` is called (``handle_disconnect`` is not).
    Frames accepted before the stop are written before the close frame, as
    long as the server keeps reading (see ``Conn.close_timeout``).

    Returns True when the client has ended within ``timeout`` seconds with
    ``reason`` as its exit reason, or had ended already. False when it has
    not ended yet, or ended otherwise: when accepted frames could not be
    sent (the server stopped reading, the connection broke), the exit reason
    is ``("error", exception)`` saying so, never ``reason``. From a callback
    on the client's loop, it only starts the stop (no waiting).
    """
    return stop_within(client_of(client), reason, timeout, timeout)


def stop_within(c: Client, reason: Any, timeout: float | None, deadline: float | None) -> bool:
    """:func:`stop`, with the stop's ``deadline`` apart from the wait (None: no deadline).

    A supervisor stops a child with no deadline: it kills the child after
    its ``shutdown`` itself, as OTP does.
    """
    if not c.alive:
        return True
    c.loop.call_soon_threadsafe(c.stopping.ask, reason, deadline)
    if c.loop.in_loop_thread():
        return not c.alive
    return c.join(timeout) and c.exit_reason == reason
