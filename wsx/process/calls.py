"""Synchronous calls, timers to self and ``wsx.self()``: WebSockex users' process idioms.

``wsx.call(client, request, timeout=5.0)`` waits (on the calling thread only)
for the value a callback of the client gives to ``wsx.reply(caller, value)``;
the request reaches ``handle_call(request, caller, state)`` through the
client's mailbox, after the casts and infos sent before it, and waits there
across reconnects. ``wsx.send_after(client, msg, seconds)`` delivers ``msg`` to
``handle_info`` later, from a loop timer. ``wsx.self()`` is the client whose
callback is running.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import CallingSelfError, WSXError
from .base import NoProcessError, current_process
from .caller import Caller
from .client import Client, client_of

__all__ = ["Caller", "SendAfter", "call", "reply", "send_after", "self_"]

def call(client: Client | str, request: Any, timeout: float | None = 5.0) -> Any:
    """Send ``request`` to ``handle_call(request, caller, state)``; the value it replies.

    Blocks the calling thread only. The client answers with
    :func:`reply(caller, value) <reply>`, from that callback or any later
    one, or from any thread. Raises :class:`wsx.TimeoutExpired` after
    ``timeout`` seconds (``None``: no limit; a reply after the timeout is dropped),
    :class:`CallingSelfError` on the client's loop thread (from its own
    callbacks, or another client's on that loop: the call could not be
    handled while the thread waits), and :class:`NoProcessError` when the
    client is not alive or ends before answering (its exit reason in
    ``.reason``). A client that disconnects and reconnects keeps its
    pending calls.
    """
    c = call_target(client, timeout, awaited=False)
    caller = Caller(c)
    c.loop.post(c.mailbox.deliver, "call", (request, caller))
    return caller._wait(timeout)


def call_target(client: Client | str, timeout: float | None, awaited: bool) -> Client:
    """The client a call goes to, once the call is known to be possible.

    ``awaited``: the caller does not block its thread (:func:`wsx.aio.call`),
    so only a call from the client's own callback is refused.
    """
    c = client_of(client)
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"timeout must be a non-negative number of seconds or None, "
                         f"not {timeout!r}")
    if c.loop.in_loop_thread() and (not awaited or c.dispatcher.in_callback):
        raise CallingSelfError(
            "wsx.call", "a call from the client's loop thread could never be answered; "
            "use wsx.cast, or call from another thread" if not awaited else
            "a call from the client's own callback could never be answered (it would "
            "wait for itself); use wsx.cast")
    if not c.alive:
        raise NoProcessError(c, reason=c.exit_reason)
    return c


def reply(caller: Caller, value: Any) -> None:
    """Answer the :func:`call` that ``caller`` waits in (any thread, at most once).

    A reply after the call timed out is dropped. A second reply to the same
    caller raises :class:`WSXError`.
    """
    if not isinstance(caller, Caller):
        raise TypeError(f"wsx.reply takes the caller given to handle_call, not {caller!r}")
    caller._reply(value)


class SendAfter:
    """The timer of one :func:`send_after`: :meth:`cancel` it before it fires.

    Until it fires, the client holds the timer (``Process._watch``): when the
    client exits first, the timer is cancelled, so that neither the loop nor
    the timer keeps the dead client (or its state) for the rest of the delay.
    """

    __slots__ = ("client", "msg", "_lock", "_state", "_timer")

    def __init__(self, client: Client, msg: Any) -> None:
        self.client = client
        self.msg = msg
        # Guards _state and _timer: _start (loop thread), cancel (any
        # thread) and the client's exit (fire) race for them.
        self._lock = threading.Lock()
        self._state = "waiting"  # then "fired" or "cancelled"
        self._timer: Any = None  # the loop's timer, once started and until it ends

    def __repr__(self) -> str:
        return f"<wsx.SendAfter {self.msg!r} to {self.client!r}, {self._state}>"

    def cancel(self) -> bool:
        """Stop the message; True if it had not been delivered (nor cancelled) yet.

        The loop's timer goes with it (cancelled on the loop's thread when
        called from another). False also when the client exited first: its
        exit cancelled the timer.
        """
        if not self._stop():
            return False
        self.client._unwatch(self)
        return True

    def fire(self, reason: Any) -> None:
        """The client exited (as a hook of ``Process._watch``): the timer is cancelled."""
        self._stop()

    def _stop(self) -> bool:
        """Cancelled, with the loop's timer if started; False if it had fired or been
        cancelled already."""
        with self._lock:
            if self._state != "waiting":
                return False
            self._state = "cancelled"
            timer, self._timer = self._timer, None
        if timer is None:
            return True  # not started yet: _start will see "cancelled"
        loop = self.client.loop
        if loop.in_loop_thread():
            timer.cancel()
        else:
            loop.call_soon_threadsafe(timer.cancel)
        return True

    def _start(self, seconds: float) -> None:  # on the loop thread
        with self._lock:
            if self._state != "waiting":
                return
            if not self.client._watch(self):  # the client has exited: never delivered
                self._state = "cancelled"
                return
            self._timer = self.client.loop.call_later(seconds, self._deliver)

    def _deliver(self) -> None:  # on the loop thread: the loop's timer is due
        with self._lock:
            if self._state != "waiting":
                return
            self._state = "fired"
            self._timer = None
        self.client._unwatch(self)
        self.client.mailbox.deliver("info", self.msg)


def send_after(client: Client | str, msg: Any, seconds: float) -> SendAfter:
    """Deliver ``msg`` to ``handle_info`` after ``seconds``; the timer (``.cancel()``).

    Works from any thread and from callbacks. Messages sent after the same
    delay arrive in the order of the calls. As Erlang's timers to a pid, the
    timer is cancelled when the client exits first (a client not alive gets
    none: its ``cancel()`` returns False).
    """
    c = client_of(client)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative number, not {seconds!r}")
    timer = SendAfter(c, msg)
    if not c.alive:
        timer._state = "cancelled"  # nothing to deliver to, nothing posted to its loop
    elif c.loop.in_loop_thread():
        timer._start(float(seconds))
    else:
        c.loop.call_soon_threadsafe(timer._start, float(seconds))
    return timer


def self_() -> Client:
    """The client whose callback is running (``wsx.self()``); raises outside a callback."""
    proc = current_process()
    if not isinstance(proc, Client):
        raise WSXError("wsx.self() is only defined inside a callback of a client")
    return proc
