"""The gate a client's starters wait at: released once the first connection is up.

``wsx.start_link`` (a thread) waits on it, ``wsx.aio.start_link`` (a
coroutine) is told through a signal; the client releases it once, when its
first connection is accepted or its start failed.
"""

from __future__ import annotations

import _thread
from typing import Any

__all__ = ["StartGate"]


class StartGate:
    """Released once (the first connection is up, or the start failed); starters wait on it."""

    __slots__ = ("_lock", "_released", "_signals")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._released = False
        self._signals: list[Any] = []  # set at the release (wsx.aio's starters)

    def release(self) -> None:
        """Open the gate (once: later calls do nothing)."""
        # Testing locked() is not enough: once released, a waiting thread
        # acquires and releases the lock, and a second release in between
        # would make its release() raise RuntimeError.
        if not self._released:
            self._released = True
            self._lock.release()
            for signal in self._signals:
                signal.set()
            self._signals.clear()

    def notify(self, signal: Any) -> None:
        """``signal.set()`` at the release (now if released); loop thread only."""
        if self._released:
            signal.set()
        else:
            self._signals.append(signal)

    def wait(self, timeout: float) -> bool:
        """True once the gate is open; False if ``timeout`` passed first."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True
