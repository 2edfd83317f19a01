"""The caller of a :func:`wsx.call`: who waits for its answer, and how.

:class:`Caller` knows the process it called through :class:`Callee` (its
loop, whether it is alive, its exit reason), a declared interface: the
callback contract (:mod:`wsx.process.callbacks`) names the caller of
``handle_call`` without depending on the client module.
"""

from __future__ import annotations

import _thread
import time
from typing import Any, Protocol, cast

from ..errors import TimeoutExpired, WSXError
from ..io.handoff import Signal
from .base import NoProcessError, Process

__all__ = ["Caller", "Callee"]


class Callee(Protocol):
    """The process a call went to (a :class:`~wsx.process.base.Process`), as its caller sees it."""

    @property
    def loop(self) -> Any:
        """The loop that runs it (woken by the first wait)."""

    @property
    def alive(self) -> bool:
        """False once it has exited."""

    @property
    def exit_reason(self) -> Any:
        """Why it exited."""


_UNSET: Any = object()

# The states of a Caller (its repr shows them).
_WAITING = "waiting"
_ANSWERED = "answered"
_GAVE_UP = "gave up"


class Caller:
    """Who waits for the answer of one :func:`call`; give it to :func:`reply`.

    Callbacks may keep it (in their state) and reply later, from another
    callback or from any thread, at most once.
    """

    __slots__ = ("client", "_lock", "_done", "_value", "_state")

    def __init__(self, client: Callee, done: Any = None) -> None:
        #: The client that was called.
        self.client = client
        self._lock = _thread.allocate_lock()  # guards _value and _state
        # Set by the reply: a Signal for a thread, a FutureSignal for a coroutine.
        self._done = Signal() if done is None else done
        self._value: Any = _UNSET
        # WAITING, then ANSWERED (the reply came) or GAVE_UP (the caller timed
        # out or was cancelled first: a reply from then on is dropped).
        self._state = _WAITING

    def __repr__(self) -> str:
        return f"<wsx.Caller of {self.client!r}, {self._state}>"

    def _reply(self, value: Any) -> None:
        with self._lock:
            state = self._state
            if state is _GAVE_UP:
                return  # the caller stopped waiting: a late reply is dropped
            if state is _ANSWERED:
                raise WSXError(f"{self!r}: wsx.reply called twice for one call")
            self._state = _ANSWERED
            self._value = value
        self._done.set()

    def _wait(self, timeout: float | None) -> Any:
        # The call was posted without a wake-up: the first wait wakes the loop.
        client = self.client
        done = self._done
        wake: Any = client.loop
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if done.wait(left, wake):
                return self._value
            wake = None
            if not client.alive:
                # It ended before answering (a reply just before the end won).
                if done.wait(0):
                    return self._value
                raise NoProcessError(cast(Process, client), reason=client.exit_reason)
            if deadline is not None and time.monotonic() >= deadline:
                value = self._give_up()
                if value is not _UNSET:
                    return value
                raise self._timed_out(timeout or 0.0)

    def _give_up(self) -> Any:
        """Stop waiting: a reply from now on is dropped. The value if one came, else _UNSET."""
        with self._lock:
            if self._state is _WAITING:
                self._state = _GAVE_UP
            return self._value

    def _timed_out(self, timeout: float) -> TimeoutExpired:
        return TimeoutExpired("timeout", timeout,
                              f"{self.client!r} did not answer the call in time")
