"""Threads (and coroutines) waiting for a loop's answer: :class:`Signal`, :class:`FutureSignal`.

A thread that asks the loop for something and waits (``wsx.call``,
``wsx.sys``, a ``send_frame`` handed to the loop) posts its callable with
:meth:`wsx.io.loop.Loop.post` and waits on a :class:`Signal` the loop sets.
When wsx is built, the compiled twin ``wsx.io._handoff.Signal`` is used.
"""

from __future__ import annotations

import _thread
import threading
from typing import TYPE_CHECKING, Any

from .._twins import compiled

if TYPE_CHECKING:
    import asyncio

    from .hostloop import HostLoop

__all__ = ["FutureSignal", "Signal"]


class Signal:
    """A one-shot signal between threads: :meth:`set` once, :meth:`wait` until it is set.

    What a thread waiting for the loop's answer waits on (``wsx.call``,
    ``wsx.sys``, a ``send_frame`` handed to the loop). ``wait(timeout,
    loop)`` first wakes ``loop`` for callbacks queued with :meth:`Loop.post`:
    the compiled twin (``wsx.io._handoff.Signal``) wakes the loop and starts
    waiting in one step without the GIL, and :meth:`set` releases the
    waiter without the GIL too, so that the woken thread never has to wait
    for the GIL of the thread that woke it (each such wait costs two context
    switches).
    """

    __slots__ = ("_lock", "_set", "_got")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._set = False
        self._got = False

    def set(self) -> None:
        """Release the waiter (any thread; later calls do nothing)."""
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self._set

    def wait(self, timeout: float, loop: HostLoop | None = None) -> bool:
        """Wait at most ``timeout`` seconds (0: do not block); True once set.

        With ``loop``, wake it first (unless a wake-up is pending already).
        One thread waits on a signal.
        """
        if self._got:
            return True
        if loop is not None and not loop.wake_pending:
            loop.wake()
        if self._lock.acquire(True, timeout) if timeout > 0 else self._lock.acquire(False):
            self._got = True
        return self._got


class FutureSignal:
    """A :class:`Signal` for a coroutine: :meth:`set` (any thread, once) resolves a future.

    What :mod:`wsx.aio` gives the loop-side objects that a waiting thread
    would give a :class:`Signal` (a send waiting for the write buffer, a
    call, a start, a stop): the coroutine awaits :attr:`future` on its own
    asyncio loop without blocking it, whichever loop the client runs on.
    """

    __slots__ = ("future", "_aloop", "_thread_id", "_set")

    def __init__(self) -> None:
        import asyncio  # only for wsx.aio: plain wsx does not import asyncio

        self._aloop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        #: Resolved (to None) once set; cancel it to stop waiting.
        self.future: asyncio.Future[None] = self._aloop.create_future()
        self._set = False

    def set(self) -> None:
        """Resolve :attr:`future` (from its loop's thread or any other)."""
        if self._set:
            return
        self._set = True
        if threading.get_ident() == self._thread_id:
            self._resolve()
            return
        try:
            self._aloop.call_soon_threadsafe(self._resolve)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self._set

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def fire(self, reason: Any) -> None:
        """As a monitor of a process (``Process._watch``): its exit sets the signal."""
        self.set()


_compiled_handoff: Any = compiled("wsx.io._handoff")
if _compiled_handoff is not None:
    Signal = _compiled_handoff.Signal  # type: ignore[misc]  # its compiled twin (POSIX)
