"""wsx on asyncio: clients on the application's event loop, awaitable calls, async callbacks.

``await wsx.aio.start_link(url, Module, state)`` starts a client **on the
running asyncio loop** (the default loop or uvloop): its socket, timers,
keepalive, backpressure and reconnects run there, with no thread of its
own (:class:`wsx.io.aioloop.AsyncioLoop`). The callback contract is the one
of :func:`wsx.start_link`, and any callback may be ``async def``: the client
awaits it before it handles its next frame or message, so each client's
order is kept while other clients and tasks run
(:mod:`wsx.process.awaiting`).

>>> class Feed(wsx.WebSocket):
...     async def handle_frame(self, frame, state):
...         await state.put(frame)
...         return ("ok", state)
>>> client = await wsx.aio.start_link(url, Feed, queue)       # doctest: +SKIP
>>> await wsx.aio.send_frame(client, ("text", "subscribe"))    # doctest: +SKIP
>>> price = await wsx.aio.call(client, ("quote", "BTC"))       # doctest: +SKIP
>>> await wsx.aio.stop(client)                                 # doctest: +SKIP

The awaitables work on every client: one on this asyncio loop, and one on
a :class:`wsx.Loop` thread (or another asyncio loop), which they wait for
without blocking this loop. The synchronous API (:func:`wsx.send_frame`,
:func:`wsx.call`, :mod:`wsx.sys`...) keeps working on asyncio-hosted
clients from other threads; on the loop's own thread use these awaitables
(a blocking call there would block the loop). :func:`cast` and :func:`send`
are :func:`wsx.cast` and :func:`wsx.send`: they never wait.
"""

from __future__ import annotations

import asyncio
from typing import Any, overload

from .core.conn import Conn
from .errors import CallingSelfError, ConnError, NotConnectedError
from .io.aioloop import for_loop
from .io.handoff import FutureSignal
from .process.api import _close_frame, _must_park, _SendWaiter, _start, cast, send
from .process.base import NoProcessError, Process, resolve
from .process.callbacks import CallbackModule, CloseFrame, OutFrame, S
from .process.caller import _UNSET, Caller
from .process.calls import call_target
from .process.client import Client, client_of
from .process.dispatcher import short
from .process.supervisor import Supervisor as _Supervisor

__all__ = ["Supervisor", "call", "cast", "send", "send_frame", "start", "start_link", "stop"]


@overload
async def start_link(url_or_conn: str | Conn, module: CallbackModule[S], state: S,
                     **opts: Any) -> Client: ...
@overload
async def start_link(url_or_conn: str | Conn, module: CallbackModule[None], state: None = None,
                     **opts: Any) -> Client: ...
async def start_link(url_or_conn: str | Conn, module: Any, state: Any = None,
                     **opts: Any) -> Client:
    """Start a client linked to the current process, on the running asyncio loop.

    As :func:`wsx.start_link` (the same options), but awaited: it returns
    once the connection is open and ``handle_connect`` has run (at once
    with ``async_connect=True``) and raises the connection error of a first
    attempt that fails. The client runs on the running asyncio loop, unless
    ``loop=`` names a :class:`wsx.Loop` (or ``"own"``). Cancelling the
    awaiting task stops the client.
    """
    return await _start_awaited(url_or_conn, module, state, True, opts)


@overload
async def start(url_or_conn: str | Conn, module: CallbackModule[S], state: S,
                **opts: Any) -> Client: ...
@overload
async def start(url_or_conn: str | Conn, module: CallbackModule[None], state: None = None,
                **opts: Any) -> Client: ...
async def start(url_or_conn: str | Conn, module: Any, state: Any = None,
                **opts: Any) -> Client:
    """Like :func:`start_link`, without a link: the client's end never affects the caller."""
    return await _start_awaited(url_or_conn, module, state, False, opts)


async def _start_awaited(url_or_conn: Any, module: Any, state: Any, link: bool,
                         opts: dict[str, Any]) -> Client:
    host = for_loop() if opts.get("loop") is None else None
    wait = not opts.get("async_connect", False)
    client = _start(url_or_conn, module, state, link, {**opts, "async_connect": True},
                    host=host)
    if not wait:
        return client
    started = FutureSignal()
    client.loop.call_soon_threadsafe(client.started.notify, started)
    try:
        await _wait(started, client)
    except BaseException:
        # Cancelled, or the loop it runs on stopped: leave no client behind.
        client.loop.call_soon_threadsafe(client.stopping.ask, "shutdown")
        raise
    if client.start_error is not None and not client.lifecycle.connections:
        raise client.start_error
    return client


async def send_frame(client: Client | str, frame: OutFrame | CloseFrame) -> None:
    """Send a frame; return once it is written to the socket (buffer), as :func:`wsx.send_frame`.

    While the connection's pending output is over its ``write_limit`` it
    waits for it to drain, at most ``send_timeout`` seconds, without
    blocking the loop, then raises :class:`wsx.TimeoutExpired` (the frame
    is not sent). ``"close"`` and ``("close", code, reason)`` start the
    close handshake. Raises what :func:`wsx.send_frame` raises, including
    :class:`wsx.CallingSelfError` from the client's own callback (return
    ``("reply", frame, state)`` there instead).
    """
    c = client_of(client)
    try:
        if c.dispatcher.send_direct(frame):  # a client on another thread: written from here
            return
    except OSError as exc:
        raise ConnError(f"cannot send {short(frame)}: the connection is broken", exc) from None
    here = c.loop.in_loop_thread()
    if here and c.dispatcher.in_callback:
        raise CallingSelfError("send_frame")
    if not c.alive:
        raise NotConnectedError("terminated")
    if frame == "close" or (type(frame) is tuple and frame and frame[0] == "close"):
        await _on_loop(c, _close_frame, c, frame)
        return
    if here and not _must_park(c):
        c.dispatcher.send(frame)  # the usual case on the client's own loop
        return
    done = FutureSignal()
    waiter = _SendWaiter(c, frame, done)
    if here:
        waiter.send_or_park()
    else:
        c.loop.call_soon_threadsafe(waiter.send_or_park)
    timeout = c.conn.send_timeout
    try:
        if not await _wait(done, c, timeout):
            # Ask the loop to drop the frame; it answers either way.
            c.loop.call_soon_threadsafe(waiter.expire, timeout or 0.0)
            await _wait(done, c)
    except BaseException:
        # Cancelled (or its loop stopped): the frame is not sent later either.
        c.loop.call_soon_threadsafe(c.transport.unpark, waiter)
        raise
    if waiter.error is not None:
        raise waiter.error


async def call(client: Client | str, request: Any, timeout: float | None = 5.0) -> Any:
    """Send ``request`` to ``handle_call(request, caller, state)``; the value it replies.

    As :func:`wsx.call`, awaited: it raises :class:`wsx.TimeoutExpired` after
    ``timeout`` seconds (``None``: no limit), :class:`wsx.NoProcessError` when
    the client is not alive or ends before answering, and
    :class:`wsx.CallingSelfError` from the client's own callback. Cancelling
    it drops the answer when it comes.
    """
    c = call_target(client, timeout, awaited=True)
    done = FutureSignal()
    caller = Caller(c, done)
    if not c._watch(done):  # its exit sets `done` too
        raise NoProcessError(c, reason=c.exit_reason)
    try:
        c.loop.call_soon_threadsafe(c.mailbox.deliver, "call", (request, caller))
        answered = await _wait(done, c, timeout)
    except BaseException:
        caller._give_up()
        raise
    finally:
        c._unwatch(done)
    value = caller._give_up()
    if value is not _UNSET:
        return value
    if answered:  # set by the exit, not by a reply
        raise NoProcessError(c, reason=c.exit_reason)
    raise caller._timed_out(timeout or 0.0)


async def stop(client: Client | _Supervisor | str, reason: Any = "normal",
               timeout: float | None = 10.0) -> bool:
    """Close the connection, terminate the client and await its end, as :func:`wsx.stop`.

    True when it ended within ``timeout`` seconds with ``reason`` as its exit
    reason (or had ended already). From the client's own callback it only
    starts the stop (the client ends once that callback returned). A
    :class:`wsx.Supervisor` (or its name) is stopped as with its
    :meth:`~wsx.Supervisor.stop` (its children first), awaited.
    """
    target = resolve(client)
    if isinstance(target, _Supervisor):
        return await Supervisor.stop(target, reason, timeout)
    c = client_of(target)
    if not c.alive:
        return True
    c.loop.call_soon_threadsafe(c.stopping.ask, reason, timeout)
    if c.loop.in_loop_thread() and c.dispatcher.in_callback:
        return not c.alive
    ended = FutureSignal()
    if c._watch(ended):
        try:
            await _wait(ended, c, timeout)
        except NotConnectedError:
            pass
        finally:
            c._unwatch(ended)
    return not c.alive and c.exit_reason == reason


class Supervisor:
    """:class:`wsx.Supervisor` for asyncio code: children on the running loop, calls awaited.

    ``await wsx.aio.Supervisor.start_link(children, ...)`` starts a
    :class:`wsx.Supervisor` (the same object, strategies and child specs)
    whose children's clients run on the running asyncio loop, unless their
    start names a loop. The supervisor's own work (starting, restarting,
    stopping children) runs in its thread, as always: the clients connect on
    the asyncio loop meanwhile. Its blocking methods have awaitable
    twins here, which wait without blocking the loop.
    """

    @staticmethod
    async def start_link(children: Any, strategy: str = "one_for_one",
                         max_restarts: int = 3, max_seconds: float = 5,
                         name: str | None = None, loop: Any = None) -> _Supervisor:
        """As :meth:`wsx.Supervisor.start_link`; ``loop`` defaults to the running loop.

        Cancelling the awaiting task stops what the start started, as
        :func:`start_link` does: the child being started, the children
        started, then the supervisor (without waiting for them here).
        """
        host = for_loop() if loop is None else loop  # made here: it knows its thread
        started = FutureSignal()  # set by the supervisor's thread: children started, or failed
        # Linked to the caller's process, if any; the children start in the
        # supervisor's thread while this task waits without blocking the loop.
        sup, error = _Supervisor._spawn(children, strategy, max_restarts, max_seconds, name,
                                        host, started, check=False)
        try:
            await asyncio.shield(started.future)
        except BaseException:
            # Cancelled (a timeout...): nobody gets the handle, so nothing it
            # started may live on.
            sup._cancel_start()
            raise
        sup._raise_start_error(error)
        return sup

    @staticmethod
    async def start_child(sup: _Supervisor, spec: Any) -> Process:
        """:meth:`wsx.Supervisor.start_child`, awaited."""
        return await asyncio.to_thread(sup.start_child, spec)

    @staticmethod
    async def terminate_child(sup: _Supervisor, child_id: Any) -> None:
        """:meth:`wsx.Supervisor.terminate_child`, awaited."""
        await asyncio.to_thread(sup.terminate_child, child_id)

    @staticmethod
    async def restart_child(sup: _Supervisor, child_id: Any) -> Process:
        """:meth:`wsx.Supervisor.restart_child`, awaited."""
        return await asyncio.to_thread(sup.restart_child, child_id)

    @staticmethod
    async def delete_child(sup: _Supervisor, child_id: Any) -> None:
        """:meth:`wsx.Supervisor.delete_child`, awaited."""
        await asyncio.to_thread(sup.delete_child, child_id)

    @staticmethod
    async def stop(sup: _Supervisor, reason: Any = "normal",
                   timeout: float | None = 30.0) -> bool:
        """:meth:`wsx.Supervisor.stop` (its children first), awaited."""
        return await asyncio.to_thread(sup.stop, reason, timeout)


async def _on_loop(c: Client, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on the client's loop thread; its result, or what it raised."""
    done = FutureSignal()
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            box.append((False, exc))
        done.set()

    if c.loop.in_loop_thread():
        run()
    else:
        c.loop.call_soon_threadsafe(run)
    await _wait(done, c)
    ok, value = box[0]
    if not ok:
        raise value
    return value


async def _wait(signal: FutureSignal, c: Client, timeout: float | None = None) -> bool:
    """Await ``signal``: True once set, False after ``timeout`` seconds.

    Raises :class:`wsx.NotConnectedError` when the client's loop stops
    running meanwhile (nothing would set the signal any more).
    """
    future = signal.future
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while not future.done():
        wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
        if wait <= 0:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(future), wait)
        except asyncio.TimeoutError:
            if not c.loop.running:
                raise NotConnectedError("gone (its loop is not running)") from None
    return True
