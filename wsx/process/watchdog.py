"""The watchdog: a warning when one client's callback holds a shared loop.

Every client on a loop waits while one callback runs. A callback that sleeps
or blocks on I/O for 0.9 s delays every frame, timer and keepalive on that
loop by 0.9 s. The watchdog says so: when a callback has run for longer than
the loop's ``slow_callback`` (default 0.1 s), it logs one warning on the
``wsx.watchdog`` logger naming the client, the callback and the time so far,
and counts the episode in the client's :func:`wsx.sys.statistics`
(``slow_callbacks``) and debug events (``slow_callback``).

It costs the loop nothing per message: the loop thread does no extra work.
One daemon thread (``wsx-watchdog``), started with the first client on a
watched loop, looks at each watched loop every ``slow_callback / 2``
seconds. It asks which process the loop thread runs (the slot the dispatcher
sets for every callback anyway, :func:`wsx.process.base.running_slot`) and
which Python frame the callback is: the first frame outside wsx inside the
loop's own frames. The same frame object seen again means the same callback
is still running; a new frame is a new callback. So a warning comes between
``slow_callback`` and ``1.5 * slow_callback`` after the callback began, once
per callback, and the time it gives is a lower bound. After 10 looks that
find every watched loop idle it dozes until a loop returns from its wait
(``Loop.on_wake``) or for 1 s at most, so an idle process is not woken 20
times a second. The thread ends when no watched loop is open.

A callback with no Python frame (compiled code) is recognised by its
process alone: consecutive such callbacks of one client count as one.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from types import FrameType

from ..io.handoff import Signal
from ..io.loop import Loop
from .base import Process, _Running, running_slot
from .client import Client

__all__ = ["watch"]

logger = logging.getLogger("wsx.watchdog")

_WSX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MIN_INTERVAL = 0.005  # seconds between looks, whatever slow_callback is
_IDLE_INTERVAL = 0.1  # seconds between looks while no watched loop has a slow_callback
_IDLE_LOOKS = 10  # looks finding every watched loop idle, then a doze
_DOZE = 1.0  # seconds of a doze at most

_lock = threading.Lock()
_watched: list[_Watched] = []  # guarded by _lock
_thread: threading.Thread | None = None
_dozing: Signal | None = None  # set to wake the watchdog from a doze (guarded by _lock)


def watch(loop: Loop) -> None:
    """Watch ``loop`` for slow callbacks (a no-op when already watched)."""
    global _thread
    with _lock:
        if not any(w.ref() is loop for w in _watched):
            _watched.append(_Watched(loop))
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="wsx-watchdog", daemon=True)
            _thread.start()
        elif _dozing is not None:
            _dozing.set()


class _Watched:
    """One watched loop: its thread's running slot, and the callback seen running there."""

    __slots__ = ("ref", "tid", "slot", "process", "frame", "since", "reported")

    def __init__(self, loop: Loop) -> None:
        self.ref = weakref.ref(loop)  # a loop dropped unclosed is not kept alive
        self.tid: int | None = None
        self.slot: _Running | None = None
        self.process: Process | None = None  # the episode: this process ...
        self.frame: FrameType | None = None  # ... in this callback frame ...
        self.since = 0.0  # ... first seen then
        self.reported = False

    def idle(self) -> None:
        self.process = self.frame = None


def _run() -> None:
    # Each look is cheap when the loops are idle (a slot read per loop); the
    # frames of the loop threads are fetched only when a callback runs.
    global _thread
    idle_looks = 0
    while True:
        with _lock:
            watched = _watched[:] = [w for w in _watched if _open(w.ref())]
            if not watched:
                _thread = None
                return
        interval = _IDLE_INTERVAL  # no loop has a slow_callback: look now and then
        for w in watched:
            limit = getattr(w.ref(), "slow_callback", None)
            if limit is not None and limit / 2 < interval:
                interval = max(_MIN_INTERVAL, limit / 2)
        time.sleep(interval)
        now = time.monotonic()
        frames = None
        busy = False
        for w in watched:
            loop = w.ref()
            tid = None if loop is None or loop.slow_callback is None else loop.thread_id
            if loop is None or tid is None:
                w.idle()
                continue
            if tid != w.tid or w.slot is None:
                w.tid, w.slot = tid, running_slot(tid)
            process = None if w.slot is None else w.slot.process
            if process is None:
                w.idle()
                continue
            busy = True
            if frames is None:
                frames = sys._current_frames()  # only when a callback runs somewhere
            try:
                _look(w, loop, process, frames.get(tid), now)
            except Exception:  # noqa: BLE001 - the watchdog must outlive what it watches
                logger.exception("wsx watchdog: looking at a loop failed")
        frames = loop = process = None  # hold nothing while asleep
        idle_looks = 0 if busy else idle_looks + 1
        if idle_looks >= _IDLE_LOOKS:
            # Woken by a loop: look 10 times again before the next doze; a
            # doze that timed out is followed by one look, then another doze.
            idle_looks = 0 if _doze(watched) else _IDLE_LOOKS - 1


def _doze(watched: list[_Watched]) -> bool:
    """Sleep while every watched loop is idle: until one wakes from its wait (``on_wake``).

    True when woken (or a loop is busy), False after a doze that timed out.

    At most ``_DOZE`` seconds (then look again): an idle process is not woken
    20 times a second. A callback that began since the last look keeps the
    watchdog awake. The one gap: a callback that begins just after that
    check, in a loop iteration already under way (the loop had not reached
    its wait, so it does not call ``on_wake`` before the callback), is seen
    only when the doze ends, and is missed if it is over by then.
    """
    global _dozing
    signal = Signal()
    wake = signal.set
    loops = [loop for loop in (w.ref() for w in watched) if loop is not None]
    with _lock:
        _dozing = signal
    for loop in loops:
        loop.on_wake = wake
    try:
        return any(_busy(loop) for loop in loops) or bool(signal.wait(_DOZE))
    finally:
        for loop in loops:
            if loop.on_wake is wake:
                loop.on_wake = None
        with _lock:
            _dozing = None


def _busy(loop: Loop) -> bool:
    tid = loop.thread_id
    slot = None if tid is None else running_slot(tid)
    return slot is not None and slot.process is not None


def _open(loop: Loop | None) -> bool:
    return loop is not None and not loop._closed


def _look(w: _Watched, loop: Loop, process: Process, innermost: FrameType | None,
          now: float) -> None:
    frame = _callback_frame(innermost)
    if w.process is not process or w.frame is not frame:
        w.process, w.frame, w.since, w.reported = process, frame, now, False
        return
    held = now - w.since
    limit = loop.slow_callback
    if not w.reported and limit is not None and held >= limit:
        w.reported = True
        _report(loop, process, frame, innermost, held)


def _callback_frame(frame: FrameType | None) -> FrameType | None:
    """The frame of the callback: the outermost frame outside wsx inside wsx's frames."""
    chain = []
    while frame is not None:
        chain.append(frame)
        frame = frame.f_back
    inside = False
    for f in reversed(chain):  # outermost first
        in_wsx = f.f_code.co_filename.startswith(_WSX_DIR)
        if in_wsx:
            inside = True
        elif inside:
            return f
    return None


def _report(loop: Loop, process: Process, frame: FrameType | None,
            innermost: FrameType | None, held: float) -> None:
    name = _callback_name(process, frame)
    where = ""
    if innermost is not None:
        where = f" (now at {innermost.f_code.co_filename}:{innermost.f_lineno})"
    logger.warning(
        "%r: callback %s has held loop %r for %.3f s, longer than its slow_callback "
        "(%s s)%s: every other client on this loop waits. Move blocking work off the "
        "loop, or start this client with loop=\"own\".",
        process, name, loop.name, held, loop.slow_callback, where)
    if isinstance(process, Client):
        loop.call_soon_threadsafe(_count, process, name, held)


def _count(client: Client, name: str, held: float) -> None:
    # On the loop thread, once the callback has returned.
    client.event("slow_callback", name, held)
    dbg = client.debug
    if dbg is not None and dbg.stats is not None:
        dbg.stats["slow_callbacks"] += 1


def _callback_name(process: Process, frame: FrameType | None) -> str:
    if frame is None:
        return "(a callback without a Python frame)"
    code = frame.f_code
    qualname = getattr(code, "co_qualname", None)  # Python 3.11+
    if qualname is None:
        module = getattr(process, "module", None)
        owner = getattr(module, "__qualname__", None) or type(module).__qualname__
        qualname = f"{owner}.{code.co_name}"
    return str(qualname)
