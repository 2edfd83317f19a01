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
sets for every callback anyway, :func:`wsx.process.base.running_on`) and
which Python frame the callback is: the first frame outside wsx inside the
loop's own frames. The same frame object seen again means the same callback
is still running; a new frame is a new callback. So a warning comes between
``slow_callback`` and ``1.5 * slow_callback`` after the callback began, once
per callback, and the time it gives is a lower bound. The thread ends when
no watched loop is open.

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

from ..io.loop import Loop
from .base import Process, running_on
from .client import Client

__all__ = ["watch"]

logger = logging.getLogger("wsx.watchdog")

_WSX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MIN_INTERVAL = 0.005  # seconds between looks, whatever slow_callback is

_lock = threading.Lock()
_loops: weakref.WeakSet[Loop] = weakref.WeakSet()
_thread: threading.Thread | None = None


def watch(loop: Loop) -> None:
    """Watch ``loop`` for slow callbacks (a no-op when already watched)."""
    global _thread
    with _lock:
        _loops.add(loop)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="wsx-watchdog", daemon=True)
            _thread.start()


class _Episode:
    """The callback seen running on one loop: since when, and whether it was reported."""

    __slots__ = ("process", "frame", "since", "reported")

    def __init__(self, process: Process, frame: FrameType | None, since: float) -> None:
        self.process = process
        self.frame = frame
        self.since = since
        self.reported = False


def _run() -> None:
    global _thread
    seen: weakref.WeakKeyDictionary[Loop, _Episode] = weakref.WeakKeyDictionary()
    while True:
        with _lock:
            loops = [loop for loop in _loops if not loop._closed]
            if not loops:
                _loops.clear()
                _thread = None
                return
        limits = [loop.slow_callback for loop in loops if loop.slow_callback is not None]
        time.sleep(max(_MIN_INTERVAL, min(limits, default=0.2) / 2))
        now = time.monotonic()
        frames = sys._current_frames()
        for loop in loops:
            try:
                _look(loop, frames, now, seen)
            except Exception:  # noqa: BLE001 - the watchdog must outlive what it watches
                logger.exception("wsx watchdog: looking at loop %r failed", loop.name)
        del frames


def _look(loop: Loop, frames: dict[int, FrameType], now: float,
          seen: weakref.WeakKeyDictionary[Loop, _Episode]) -> None:
    limit = loop.slow_callback
    tid = loop._thread_id
    process = None
    if limit is not None and tid is not None:
        process = running_on(tid)
    if process is None or tid is None or limit is None:
        seen.pop(loop, None)
        return
    innermost = frames.get(tid)
    frame = _callback_frame(innermost)
    episode = seen.get(loop)
    if episode is None or episode.process is not process or episode.frame is not frame:
        seen[loop] = _Episode(process, frame, now)
        return
    held = now - episode.since
    if not episode.reported and held >= limit:
        episode.reported = True
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
