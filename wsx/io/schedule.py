"""What a :class:`wsx.io.loop.Loop` works on, and the one definition of its iteration.

A :class:`Schedule` holds the loop's run state: the callbacks ready to run,
the timers (a heap), the watched descriptors with their reader and writer
callbacks, and the readiness backend (:class:`~wsx.io.readiness.Readiness`).
:meth:`Schedule.run` is the loop: wait for readiness (no longer than the next
live timer, not at all with callbacks ready), call the reader, then the
writer, of each ready descriptor, queue the timers that are due, run the
callbacks that were ready, until :attr:`Schedule.stopping` is set. A
callback that raises is logged and the loop goes on (see :mod:`wsx._guard`).

When wsx is built, this very source is compiled by Cython into
``wsx.io._schedule`` (C fields declared in ``_schedule.pxd``), used unless
``WSX_NO_EXTENSIONS`` is set: the same iteration, without the interpreter
between its steps.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .._guard import must_propagate
from .readiness import Readiness

__all__ = ["Schedule", "MAX_WAIT"]

logger = logging.getLogger("wsx.io.loop")

MAX_WAIT = 86400.0  # seconds: the longest wait for a timer in one poll


class Scheduled(Protocol):
    """A timer as the schedule sees it (:class:`wsx.io.loop.Timer`)."""

    callback: Callable[..., Any]
    args: tuple[Any, ...]
    cancelled: bool
    #: The schedule whose heap holds it; None once it left the heap.
    schedule: Any


class Waker(Protocol):
    """The loop that runs a schedule, as the iteration uses it (its ``on_wake``)."""

    on_wake: Callable[[], Any] | None


def _fire(timer: Scheduled) -> None:
    if not timer.cancelled:
        timer.callback(*timer.args)


class Schedule:
    """The run state of one loop (see the module documentation). Loop thread only,
    but for :attr:`ready`, which any thread may append to (a deque)."""

    def __init__(self, io: Readiness, name: str) -> None:
        self.io = io
        self.name = name  # the loop's, for the log
        #: fd -> [fileobj, reader callback, writer callback]
        self.handlers: dict[int, list[Any]] = {}
        self.ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        #: ``(when, sequence, timer)``, a heap.
        self.timers: list[tuple[float, int, Any]] = []
        self.cancelled = 0  # cancelled entries still in timers
        self.seq = itertools.count()
        #: Set (on the loop thread) to make :meth:`run` return.
        self.stopping = False

    # ---------------------------------------------------------------- timers
    def push(self, when: float, timer: Scheduled) -> None:
        """Put ``timer`` in the heap, due at ``when`` (``time.monotonic``)."""
        heapq.heappush(self.timers, (when, next(self.seq), timer))

    def live_timers(self) -> int:
        """Timers in the heap that are not cancelled."""
        return len(self.timers) - self.cancelled

    def timer_cancelled(self) -> None:
        """Count a cancelled heap entry; compact the heap when they are the majority."""
        self.cancelled += 1
        timers = self.timers
        if self.cancelled > 32 and 2 * self.cancelled > len(timers):
            # In place: run() holds a reference to this list.
            timers[:] = [entry for entry in timers if not entry[2].cancelled]
            heapq.heapify(timers)
            self.cancelled = 0

    def wait_time(self) -> float:
        """How long the next wait for readiness may last, in seconds (-1: no limit).

        0 with callbacks ready; else until the next *live* timer (cancelled
        ones on top are dropped: they wake nobody), at most :data:`MAX_WAIT`
        (epoll's and select's waits are int milliseconds: a timer weeks
        away wakes the loop daily); else no limit.
        """
        if self.ready:
            return 0.0
        timers = self.timers
        while timers:
            entry = timers[0]
            if not entry[2].cancelled:
                return min(max(0.0, entry[0] - time.monotonic()), MAX_WAIT)
            heapq.heappop(timers)
            self.cancelled -= 1
        return -1.0

    def queue_due(self) -> None:
        """Queue the timers that are due: the timer, not its callback, so that
        ``cancel()`` works until it runs."""
        timers, ready, now = self.timers, self.ready, time.monotonic()
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer.cancelled:
                self.cancelled -= 1
            else:
                timer.schedule = None  # out of the heap: cancel() counts nothing
                ready.append((_fire, (timer,)))

    def clear(self) -> None:
        """Drop every ready callback and timer (the loop is closed)."""
        self.ready.clear()
        for entry in self.timers:
            entry[2].schedule = None  # a later cancel() has no heap to count in
        self.timers.clear()
        self.cancelled = 0

    # ------------------------------------------------------------- iteration
    def run(self, loop: Waker) -> None:
        """Run the loop until :attr:`stopping` is set (see the module documentation).

        ``loop.on_wake`` is called, and cleared, each time the wait returns.
        """
        io = self.io
        poll = io.poll
        rbits = io.rbits
        wbits = io.wbits
        handlers = self.handlers
        ready = self.ready
        popleft = ready.popleft
        timers = self.timers
        monotonic = time.monotonic
        while not self.stopping:
            events = poll(self.wait_time())
            woken = loop.on_wake
            if woken is not None:
                loop.on_wake = None
                self._call(woken, ())
            for fd, mask in events:
                entry = handlers.get(fd)
                if entry is None:
                    continue
                if mask & rbits:
                    callback = entry[1]
                    if callback is not None:
                        try:
                            callback()
                        except BaseException as exc:  # noqa: BLE001 - see wsx._guard
                            self.failed(callback, (), exc)
                if mask & wbits:
                    # The reader may have unregistered the file: look again.
                    entry = handlers.get(fd)
                    if entry is not None:
                        callback = entry[2]
                        if callback is not None:
                            try:
                                callback()
                            except BaseException as exc:  # noqa: BLE001 - see wsx._guard
                                self.failed(callback, (), exc)
            if timers and timers[0][0] <= monotonic():
                self.queue_due()
            for _i in range(len(ready)):
                callback, args = popleft()
                self._call(callback, args)

    def _call(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except BaseException as exc:  # noqa: BLE001 - see wsx._guard
            self.failed(callback, args, exc)

    def failed(self, callback: Callable[..., Any], args: tuple[Any, ...],
               exc: BaseException) -> None:
        """Log what ``callback`` raised; the loop goes on (Ctrl-C on the main thread: it stops).

        Whatever a callback raises, the loop thread survives it (see
        :mod:`wsx._guard`); only a ``KeyboardInterrupt`` on the main thread
        is raised again, out of :meth:`run`.
        """
        if must_propagate(exc):
            raise exc
        if callback is _fire:
            callback = args[0].callback
        logger.error("wsx loop %r: callback %r raised", self.name, callback, exc_info=exc)
