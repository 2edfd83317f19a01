"""A small event loop: I/O readiness (``epoll`` on Linux, else ``selectors``), timers, wake-ups.

The loop knows nothing about WebSocket: it watches file descriptors, runs
timers and runs callbacks posted from other threads. Every wsx client lives
on one loop and all of its callbacks run on the loop's thread, one at a time.

By default all clients share one loop, started in a daemon thread on first
use (:func:`get_default_loop`). An application may create its own
:class:`Loop`, pass it as ``loop=`` to :func:`wsx.start_link`, and run it with
:meth:`Loop.run` in a thread of its choosing.

A callback that raises is logged and the loop goes on: no client can stop the
loop or the other clients on it. What one iteration does is defined once, in
:class:`wsx.io.schedule.Schedule` (compiled when wsx is built).
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .._twins import compiled
from .readiness import Readiness
from .resolver import Resolver
from .schedule import Schedule
from .tenants import Tenants

__all__ = ["Loop", "Timer", "get_default_loop"]

logger = logging.getLogger("wsx.io.loop")

_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE
_HAVE_EPOLL = hasattr(select, "epoll")

# The compiled twin of the schedule (wsx/io/schedule.py), unless disabled or not built.
_compiled_schedule: Any = compiled("wsx.io._schedule")
_Schedule: type[Schedule] = Schedule if _compiled_schedule is None else _compiled_schedule.Schedule


def _fileno(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())


class Timer:
    """A callback scheduled with :meth:`wsx.Loop.call_later`; :meth:`cancel` it to drop it.

    Cancelling is O(1): the entry stays in the loop's heap, marked, until it
    reaches the top or the loop compacts the heap (when cancelled entries make
    up more than half of it), so that many cancelled timers cost neither
    memory nor wake-ups.
    """

    __slots__ = ("when", "callback", "args", "cancelled", "schedule")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...],
                 schedule: Schedule | None = None) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        #: The loop's schedule whose heap holds this timer; None once it left the heap.
        self.schedule = schedule

    def cancel(self) -> None:
        """Prevent the callback from running (a no-op once it ran). Loop thread only."""
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = _noop
        self.args = ()
        schedule = self.schedule
        if schedule is not None:
            self.schedule = None
            schedule.timer_cancelled()


def _slow_callback(seconds: float | None) -> float | None:
    """``seconds`` checked as a ``slow_callback`` setting (ValueError naming it otherwise)."""
    if seconds is not None and (isinstance(seconds, bool)
                                or not isinstance(seconds, (int, float))
                                or not 0 < seconds < float("inf")):
        raise ValueError(
            f"slow_callback must be a positive number of seconds or None, not {seconds!r}")
    return seconds


def _noop(*_args: Any) -> None:
    return None


def _loop_time(when: Any) -> float:
    """``when`` as a loop time (a float), or ``TypeError`` naming it."""
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"a timer's deadline must be a number of seconds, not {when!r}")
    return float(when)


class Loop:
    """A selector-based event loop: I/O readiness, timers and thread-safe wake-ups."""

    def __init__(self, name: str = "wsx-loop", resolver_threads: int = 4,
                 slow_callback: float | None = 0.1) -> None:
        self.name = name
        self.slow_callback = slow_callback
        self._io = Readiness(_HAVE_EPOLL)
        #: What the loop works on, and its iteration (:meth:`run` runs it).
        self._schedule = _Schedule(self._io, name)
        # The schedule's own containers, named here for the loop's methods:
        # fd -> [fileobj, reader callback, writer callback], and the ready queue.
        self._handlers: dict[int, list[Any]] = self._schedule.handlers
        self._ready = self._schedule.ready
        self._running = False
        self._thread: threading.Thread | None = None
        self.thread_id: int | None = None
        self._resolver = Resolver(resolver_threads)  # the DNS thread pool
        self._closed = False
        #: The clients on this loop: told when it is closed under them.
        self.tenants = Tenants()
        #: One receive buffer shared by every connection on this loop: reads
        #: happen one at a time on the loop thread and the data is consumed
        #: (copied into the parser) before the next read.
        self.read_buffer = memoryview(bytearray(256 * 1024))
        # Self-pipe to wake the selector from other threads.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        #: A wake-up byte is on its way: no other is needed until the loop reads it.
        self.wake_pending = False
        #: Where a wake-up byte is written (the compiled Signal writes it itself).
        self.wake_fd = self._wake_w.fileno()
        self.add_reader(self._wake_r, self._drain_wakeup)
        #: Called once (then cleared) when the loop next returns from its wait
        #: for readiness: a watcher that sleeps while the loop is idle (the
        #: slow-callback watchdog) sets it to be woken when work comes. Loop
        #: thread, or set from any thread.
        self.on_wake: Callable[[], Any] | None = None

    # ------------------------------------------------------------ properties
    @property
    def slow_callback(self) -> float | None:
        """Seconds a client's callback may hold this loop before a warning (None: never).

        The watchdog (:mod:`wsx.process.watchdog`) logs one warning per
        callback that runs longer, naming the client and the callback, and
        counts it in :func:`wsx.sys.statistics`. Default 0.1 s, as asyncio's
        debug mode. May be changed at any time.
        """
        return self._slow_callback

    @slow_callback.setter
    def slow_callback(self, seconds: float | None) -> None:
        self._slow_callback = _slow_callback(seconds)

    @property
    def running(self) -> bool:
        """True while :meth:`run` is executing."""
        return self._running

    def in_loop_thread(self) -> bool:
        """True when called from the thread that runs this loop."""
        return self.thread_id == threading.get_ident()

    def time(self) -> float:
        """The loop's clock (``time.monotonic``)."""
        return time.monotonic()

    # ------------------------------------------------------------- callbacks
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next iteration (loop thread only)."""
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread; callable from any thread.

        Callbacks posted from one thread run in the order they were posted.
        Once the loop is closed the callback is dropped (logged at debug
        level): it could never run, and a closed loop keeps nothing. The
        waiting caller's own checks of :attr:`running` tell it.
        """
        if self._closed:
            self._dropped(callback)
            return
        self._ready.append((callback, args))
        if not self.wake_pending and not self.in_loop_thread():
            self.wake()

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """Queue ``callback(*args)`` for the loop thread without waking it (any thread).

        For a thread that wakes the loop itself as it starts waiting:
        ``Signal.wait(timeout, loop)``. Order as :meth:`call_soon_threadsafe`;
        dropped as there once the loop is closed.
        """
        if self._closed:
            self._dropped(callback)
            return
        self._ready.append((callback, args))

    def _dropped(self, callback: Callable[..., Any]) -> None:
        logger.debug("wsx loop %r is closed: %r dropped", self.name, callback)

    def wake(self) -> None:
        """End the loop's current (or next) wait for readiness."""
        self.wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # a wake-up byte is already waiting
        except OSError:
            if not self._closed:
                raise

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds (loop thread only)."""
        return self.call_at(time.monotonic() + delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` at loop time ``when`` (loop thread only).

        Raises ``TypeError`` unless ``when`` is a real number, ``ValueError``
        for NaN (a timer the heap could not order).
        """
        if type(when) is not float:
            when = _loop_time(when)
        if when != when:
            raise ValueError(f"a timer's deadline cannot be NaN (when={when!r})")
        timer = Timer(when, callback, args, self._schedule)
        self._schedule.push(when, timer)
        return timer

    @property
    def timer_count(self) -> int:
        """Timers scheduled and not cancelled (a diagnostic; loop thread only)."""
        return self._schedule.live_timers()

    def _drain_wakeup(self) -> None:
        # Drain first, then clear the flag: clearing it first lets a poster
        # set it and send its byte in between, the byte is drained here and
        # the flag stays set with an empty pipe, so every later post skips
        # the wake-up and an idle loop sleeps forever (lost wake-up).
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self.wake_pending = False

    # ------------------------------------------------------------------- I/O
    def add_reader(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` whenever ``fileobj`` is readable."""
        self._update(fileobj, _EVENT_READ, callback)

    def remove_reader(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for reading."""
        self._update(fileobj, _EVENT_READ, None)

    def add_writer(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` whenever ``fileobj`` is writable."""
        self._update(fileobj, _EVENT_WRITE, callback)

    def remove_writer(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for writing."""
        self._update(fileobj, _EVENT_WRITE, None)

    def remove_all(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` (before closing it)."""
        try:
            fd = _fileno(fileobj)
        except (OSError, ValueError):
            fd = -1
        handlers = self._handlers
        entry = handlers.get(fd)
        if entry is None or entry[0] is not fileobj:
            # Closed already (fileno() is -1): find it by identity.
            fd = next((k for k, v in handlers.items() if v[0] is fileobj), -1)
            entry = handlers.get(fd)
            if entry is None:
                return
        del handlers[fd]
        self._io.unregister(fd)

    def _update(self, fileobj: Any, event: int, callback: Callable[[], Any] | None) -> None:
        fd = _fileno(fileobj)
        entry = self._handlers.get(fd)
        if entry is not None and entry[0] is not fileobj:
            # The fd of a file closed without remove_all(), now reused.
            del self._handlers[fd]
            self._io.unregister(fd)
            entry = None
        if entry is None:
            if callback is None:
                return
            entry = [fileobj, None, None]
            entry[1 if event == _EVENT_READ else 2] = callback
            self._handlers[fd] = entry
            io = self._io
            io.register(fd, io.read_mask if event == _EVENT_READ else io.write_mask)
            return
        entry[1 if event == _EVENT_READ else 2] = callback
        mask = ((self._io.read_mask if entry[1] else 0)
                | (self._io.write_mask if entry[2] else 0))
        if mask:
            self._io.modify(fd, mask)
        else:
            del self._handlers[fd]
            self._io.unregister(fd)

    # -------------------------------------------------------------------- DNS
    def resolve(
        self,
        host: str,
        port: int,
        callback: Callable[[list[Any] | None, BaseException | None], Any],
    ) -> None:
        """Resolve ``host:port`` off the loop thread; ``callback(addrinfos, error)`` runs on it."""
        self._resolver.resolve(
            host, port, lambda infos, error: self.call_soon_threadsafe(callback, infos, error),
            self.name)

    # ------------------------------------------------------------------- run
    def run(self) -> None:
        """Run the loop in the calling thread until :meth:`stop` is called."""
        if self._running:
            raise RuntimeError(f"loop {self.name!r} is already running")
        if self._closed:
            raise RuntimeError(f"loop {self.name!r} is closed")
        self._running = True
        self.thread_id = threading.get_ident()
        self._schedule.stopping = False
        try:
            self._schedule.run(self)
        finally:
            self._running = False
            self.thread_id = None

    def stop(self) -> None:
        """Ask the loop to return from :meth:`run` (callable from any thread)."""

        def _stop() -> None:
            self._schedule.stopping = True

        self.call_soon_threadsafe(_stop)
        if self.in_loop_thread() and not self.wake_pending:
            # E.g. from a signal handler, run by the loop thread inside its
            # wait: the wait must end for the loop to see the request.
            self.wake()

    def start_thread(self, close: bool = False) -> threading.Thread:
        """Run the loop in a new daemon thread; return the thread.

        With ``close=True`` the thread also closes the loop (:meth:`close`)
        when it stops: a loop made for one client, ``start_link(..., loop="own")``.
        """
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        started = threading.Event()

        def target() -> None:
            self.thread_id = threading.get_ident()
            started.set()
            try:
                self.run()
            finally:
                if close:
                    self.close()

        thread = threading.Thread(target=target, name=self.name, daemon=True)
        self._thread = thread
        thread.start()
        started.wait()
        return thread

    def close(self) -> None:
        """Release the loop's resources (after it stopped).

        The callbacks and timers still queued are dropped (they would never
        run), and so is anything posted to the loop from then on. Clients
        still on it end at once (their connections dropped, exit reason
        ``("error", ConnError)`` saying the loop was closed).
        """
        if self._running:
            raise RuntimeError("cannot close a running loop")
        self._closed = True
        self._schedule.clear()
        self.remove_all(self._wake_r)
        self.wake_fd = -1  # a number the next socket may get: never written again
        self.wake_pending = True  # no wake-up is needed any more
        self._wake_r.close()
        self._wake_w.close()
        self._io.close()
        self._resolver.close()
        self.tenants.evict()  # clients still on it end: nothing would run them


_default_loop: Loop | None = None
_default_lock = threading.Lock()


def get_default_loop() -> Loop:
    """The loop shared by clients started without ``loop=``; started on first use."""
    global _default_loop
    loop = _default_loop
    if loop is not None and loop.running:
        return loop
    with _default_lock:
        if _default_loop is None or (_default_loop._thread is not None
                                     and not _default_loop._thread.is_alive()):
            _default_loop = Loop("wsx-default-loop")
            _default_loop.start_thread()
        return _default_loop


def _reset_after_fork() -> None:
    global _default_loop
    _default_loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
