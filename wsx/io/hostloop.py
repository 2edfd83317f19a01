"""The loop interface a connection uses: what :class:`~wsx.io.loop.Loop` and
:class:`~wsx.io.aioloop.AsyncioLoop` both offer, declared once.

Every part of a client (transport, connector, timers, the process layer)
uses its loop through :class:`HostLoop` only, so that it runs the same on
wsx's own loop and on an asyncio loop (or uvloop) through its adapter.
mypy checks that both loops conform (``_conforms`` at the end of
:mod:`wsx.io.aioloop`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .tenants import Tenants

__all__ = ["HostLoop", "TimerHandle"]


class TimerHandle(Protocol):
    """A callback scheduled by :meth:`HostLoop.call_later`."""

    def cancel(self) -> None:
        """Do not run it (nothing if it ran already)."""


class HostLoop(Protocol):
    """What a client runs on: wsx's own loop, or an asyncio loop through its adapter.

    Loop thread only, except :meth:`call_soon_threadsafe`, :meth:`post`,
    :meth:`wake`, :attr:`running`, :attr:`thread_id`, :attr:`wake_pending`
    and :attr:`wake_fd` (a waiting thread wakes the loop through them).
    """

    name: str
    #: The thread that runs the loop (None before it runs).
    thread_id: int | None
    #: Read by the clients' read paths, one at a time.
    read_buffer: memoryview
    #: Seconds a callback may hold the loop before the watchdog warns (None: not watched).
    slow_callback: float | None
    #: Called when work is posted to a dozing loop (set by the watchdog).
    on_wake: Callable[[], Any] | None
    #: A wake-up is on its way to the loop: no other is needed yet.
    wake_pending: bool
    #: Where a wake-up byte may be written, from any thread (-1: call :meth:`wake`).
    wake_fd: int

    @property
    def tenants(self) -> Tenants:
        """The clients on this loop, ended when it is found closed."""

    @property
    def running(self) -> bool:
        """True while the loop runs."""

    def wake(self) -> None:
        """End the loop's current (or next) wait, from any thread."""

    def in_loop_thread(self) -> bool:
        """True on the loop's own thread (while it runs)."""

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next iteration (loop thread)."""

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop, from any thread; the loop is woken."""

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """As :meth:`call_soon_threadsafe`, for a thread that wakes the loop itself."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` after ``delay`` seconds; the timer (it has ``cancel()``)."""

    def add_reader(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback`` whenever ``fileobj`` is readable."""

    def remove_reader(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for reading."""

    def add_writer(self, fileobj: Any, callback: Callable[[], Any]) -> None:
        """Call ``callback`` whenever ``fileobj`` is writable."""

    def remove_writer(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` for writing."""

    def remove_all(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` at all."""

    def resolve(
        self,
        host: str,
        port: int,
        callback: Callable[[list[Any] | None, BaseException | None], Any],
    ) -> None:
        """Resolve ``host:port`` off the loop; ``callback(infos, error)`` on it."""
