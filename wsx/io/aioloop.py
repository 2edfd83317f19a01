"""wsx's loop interface on a running asyncio event loop (the default loop or uvloop).

A client runs on whatever its ``loop`` offers: readiness callbacks for its
socket, timers, callbacks posted from other threads, DNS off the loop
thread and a shared read buffer. :class:`wsx.io.loop.Loop` is wsx's own;
:class:`AsyncioLoop` gives the same interface on an asyncio loop, so that a
client started with :func:`wsx.aio.start_link` keeps its socket, timers,
keepalive, backpressure and reconnects on the application's loop, with no
thread of its own. The socket is watched with ``add_reader`` /
``add_writer`` and read and written by wsx itself (the compiled read path
included), not through an asyncio ``Protocol``: one code path for both
loops, and no copy of each read into an asyncio buffer.

There is one :class:`AsyncioLoop` per asyncio loop (:func:`for_loop`), shared
by the clients on it. It is not watched for slow callbacks (asyncio's debug
mode reports those: ``loop.slow_callback_duration``), and it is neither
started nor stopped by wsx: the application runs its loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .tenants import Tenants

if TYPE_CHECKING:
    from .loop import Loop

__all__ = ["AsyncioLoop", "for_loop"]

logger = logging.getLogger("wsx")

_adapters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncioLoop] = (
    weakref.WeakKeyDictionary())
_adapters_lock = threading.Lock()


def for_loop(aloop: asyncio.AbstractEventLoop | None = None) -> AsyncioLoop:
    """The :class:`AsyncioLoop` of ``aloop`` (default: the running loop), made once.

    Any thread may ask. Raises ``RuntimeError`` when no asyncio loop is
    running in this thread and none is given.
    """
    if aloop is None:
        aloop = asyncio.get_running_loop()
    with _adapters_lock:
        adapter = _adapters.get(aloop)
        if adapter is None:
            adapter = _adapters[aloop] = AsyncioLoop(aloop)
        others = [a for a in _adapters.values() if a is not adapter]
    for other in others:  # clients left on loops closed since: they end now
        other.check_closed()
    return adapter


class AsyncioLoop:
    """wsx's loop interface over one asyncio event loop; see the module documentation.

    Made on the loop's thread (:func:`for_loop`); every method but
    :meth:`call_soon_threadsafe`, :meth:`post` and :attr:`running` is for
    that thread only, as on :class:`wsx.io.loop.Loop`.
    """

    #: Not watched by wsx's slow-callback watchdog (asyncio's debug mode is).
    slow_callback: float | None = None

    def __init__(self, aloop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the adapter is the value of a weak-keyed table
        # whose key is the loop, so a strong one would keep both forever.
        self._aloop = weakref.ref(aloop)
        self.name = f"asyncio-loop-{id(aloop):x}"
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        self.thread_id: int | None = None
        if running is aloop:
            self.thread_id = threading.get_ident()
        else:
            # Made from another thread (a supervisor's): the loop tells its
            # thread before it runs anything of a client's (callbacks run in
            # the order they were posted).
            aloop.call_soon_threadsafe(self._learn_thread)
        #: Read by the clients' read paths, one at a time (see wsx.io.loop.Loop).
        self.read_buffer = memoryview(bytearray(256 * 1024))
        #: Never called here: only the watchdog sets it, and it does not watch this loop.
        self.on_wake: Callable[[], Any] | None = None
        # Signal.wait(timeout, loop) wakes a loop whose wake-up is not
        # pending; here every post wakes the loop itself, so it never is.
        self.wake_pending = True
        self.wake_fd = -1  # no wake-up byte: every post wakes the asyncio loop itself
        #: The clients on this loop: told when it is found closed under them
        #: (asyncio says nothing when a loop closes): by a post to it, by
        #: :meth:`check_closed`, by the next :func:`for_loop`, or when the
        #: loop is garbage (``asyncio.run`` drops it once closed).
        self.tenants = Tenants()
        # (Not at the interpreter's exit: a loop still there then may be open.)
        weakref.finalize(aloop, self.tenants.evict_soon).atexit = False

    def __repr__(self) -> str:
        return f"<wsx.AsyncioLoop of {self._aloop()!r}>"

    @property
    def aloop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop (``RuntimeError`` once it is gone)."""
        aloop = self._aloop()
        if aloop is None:
            raise RuntimeError(f"the asyncio loop of {self.name} is gone")
        return aloop

    def _learn_thread(self) -> None:
        self.thread_id = threading.get_ident()

    @property
    def running(self) -> bool:
        """True while the asyncio loop runs."""
        aloop = self._aloop()
        return aloop is not None and aloop.is_running() and not aloop.is_closed()

    def in_loop_thread(self) -> bool:
        """True when called from the asyncio loop's thread while it runs."""
        return self.thread_id == threading.get_ident() and self.running

    # ------------------------------------------------------------ callbacks
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next iteration (loop thread only)."""
        self.aloop.call_soon(callback, *args)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread; callable from any thread.

        Once the asyncio loop is closed the callback is dropped (as on a
        closed :class:`wsx.Loop`: it never runs); the waiting caller's own
        checks of :attr:`running` tell it.
        """
        try:
            if self.thread_id == threading.get_ident():
                self.aloop.call_soon(callback, *args)
            else:
                self.aloop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed, or gone
            logger.debug("%r is closed: %r not run", self, callback)
            self.check_closed(soon=True)  # (the poster may hold a client's lock)

    def check_closed(self, soon: bool = False) -> bool:
        """True if the asyncio loop is closed (or gone); its clients then end
        (``soon``: on a thread of their own, see ``Tenants.evict_soon``)."""
        aloop = self._aloop()
        if aloop is not None and not aloop.is_closed():
            return False
        if soon:
            self.tenants.evict_soon()
        else:
            self.tenants.evict()
        return True

    #: From another thread it wakes the loop as :meth:`call_soon_threadsafe`.
    post = call_soon_threadsafe

    def wake(self) -> None:
        """Nothing to do: every post from another thread wakes the asyncio loop."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` after ``delay`` seconds; a handle with ``cancel()``."""
        return self.aloop.call_later(delay, callback, *args)

    def _callback_failed(self, callback: Callable[..., Any], args: tuple[Any, ...],
                         exc: BaseException) -> None:
        """A callback of wsx's raised: report it as asyncio reports its own."""
        self.aloop.call_exception_handler({
            "message": f"wsx: exception in callback {callback!r}{args!r}",
            "exception": exc,
        })

    # ------------------------------------------------------------------- I/O
    def add_reader(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` whenever ``fileobj`` is readable (replaces a previous one)."""
        self.aloop.add_reader(fileobj, callback)

    def remove_reader(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for reading."""
        self.aloop.remove_reader(fileobj)

    def add_writer(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` whenever ``fileobj`` is writable (replaces a previous one)."""
        self.aloop.add_writer(fileobj, callback)

    def remove_writer(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for writing."""
        self.aloop.remove_writer(fileobj)

    def remove_all(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` (before it is closed)."""
        aloop = self._aloop()
        if aloop is None or aloop.is_closed():
            return
        aloop.remove_reader(fileobj)
        aloop.remove_writer(fileobj)

    # ------------------------------------------------------------------- DNS
    def resolve(
        self,
        host: str,
        port: int,
        callback: Callable[[list[Any] | None, BaseException | None], Any],
    ) -> None:
        """Resolve ``host:port`` with the loop's ``getaddrinfo``; ``callback(infos, error)``."""
        future = asyncio.ensure_future(
            self.aloop.getaddrinfo(host, port, type=socket.SOCK_STREAM), loop=self.aloop)

        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                callback(None, ConnectionAbortedError(f"resolving {host!r} was cancelled"))
                return
            exc = future.exception()
            if exc is not None:
                callback(None, exc)
            else:
                callback(list(future.result()), None)

        future.add_done_callback(done)


if TYPE_CHECKING:
    from .hostloop import HostLoop

    def _conforms(own: Loop, adapter: AsyncioLoop) -> tuple[HostLoop, HostLoop]:
        """mypy checks here that both loops offer the whole :class:`HostLoop` interface."""
        return own, adapter
