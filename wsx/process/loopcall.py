"""Calling a client's loop from another thread and waiting for the answer.

:func:`run_on_loop` is how the synchronous public functions (``wsx.sys``,
``Supervisor`` helpers, ``send_frame`` on a parked write) run code on a
client's loop thread: post a callable, wait on a lock the loop releases, and
give up cleanly after a timeout when a callback holds the loop (the posted
function then never runs).
"""

from __future__ import annotations

import _thread
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import NotConnectedError, TimeoutExpired
from ..io.handoff import Signal

if TYPE_CHECKING:
    from ..io.hostloop import HostLoop
    from .client import Client

__all__ = ["run_on_loop"]


def run_on_loop(client: Client, fn: Callable[..., Any], *args: Any,
                timeout: float | None = None, what: str = "") -> Any:
    """Run ``fn(*args)`` on the loop thread of ``client``; its result (or raise what it raised).

    With ``timeout``, raises :class:`TimeoutExpired` (option ``"timeout"``)
    when the loop has not started ``fn`` within that many seconds (a
    callback blocks it); ``fn`` then never runs. ``what`` names the call.
    """
    if client.loop.in_loop_thread():
        return fn(*args)
    call = _LoopCall(fn, args)
    client.loop.post(call)  # the first wait wakes the loop
    deadline = None if timeout is None else time.monotonic() + timeout
    wake: HostLoop | None = client.loop
    while not call.wait(1.0 if deadline is None else
                        max(0.0, min(1.0, deadline - time.monotonic())), wake):
        wake = None
        if not client.loop.running:
            raise NotConnectedError("gone (its loop is not running)")
        if deadline is not None and time.monotonic() >= deadline:
            if call.give_up():
                raise TimeoutExpired("timeout", timeout or 0.0, (
                    f"{client!r} did not answer {what or 'the call'} in time: a callback "
                    "is holding its loop"))
            deadline = None  # it runs now: wait for its result
    return call.value()


class _LoopCall:
    """One function posted by :func:`run_on_loop`: it runs once on the loop,
    unless its caller gave up before the loop took it."""

    __slots__ = ("_fn", "_args", "_gate", "_done", "_phase", "_result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn, self._args = fn, args
        self._gate = _thread.allocate_lock()  # guards _phase
        self._done = Signal()
        self._phase = "posted"  # then "running" (the loop took it) or "given up"
        self._result: tuple[bool, Any] = (False, None)

    def __call__(self) -> None:
        # On the loop thread.
        with self._gate:
            if self._phase != "posted":
                return
            self._phase = "running"
        try:
            self._result = (True, self._fn(*self._args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self._result = (False, exc)
        finally:
            self._done.set()

    def wait(self, seconds: float, wake: HostLoop | None = None) -> bool:
        """True once the function has run (within ``seconds``); ``wake``: wake it first."""
        return bool(self._done.wait(seconds, wake))

    def give_up(self) -> bool:
        """The caller stops waiting: True if the function had not started (it never will)."""
        with self._gate:
            if self._phase == "posted":
                self._phase = "given up"
                return True
            return False

    def value(self) -> Any:
        """What the function returned (or raise what it raised)."""
        ok, value = self._result
        if ok:
            return value
        raise value
