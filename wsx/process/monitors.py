"""Monitors: ``wsx.monitor(watcher, target)`` and ``wsx.demonitor(ref)``, as Erlang's.

When ``target`` exits, ``watcher`` receives ``("DOWN", ref, target, reason)``
in ``handle_info``, once; a monitor of a process that has already exited
fires at once with its exit reason. Unlike a link, a monitor is one-way and
never ends the watcher. ``demonitor(ref)`` removes it (True if it had not
fired). As in Erlang, the monitors of a watcher that exits are removed from
their targets: a target outliving many watchers keeps none of them.
"""

from __future__ import annotations

import itertools
from typing import Any

from .base import Process, resolve
from .client import client_of

__all__ = ["MonitorRef", "monitor", "demonitor"]

_refs = itertools.count(1)


class MonitorRef:
    """The reference of one monitor: in its DOWN message, and for :func:`demonitor`."""

    __slots__ = ("id", "watcher", "target")

    def __init__(self, watcher: Any, target: Process) -> None:
        self.id = next(_refs)
        #: The client told of the exit.
        self.watcher = watcher
        #: The process watched.
        self.target = target

    def __repr__(self) -> str:
        return f"<wsx.MonitorRef #{self.id} {self.watcher!r} -> {self.target!r}>"

    def fire(self, reason: Any) -> None:
        """The target exited with ``reason``: tell the watcher (any thread), if alive."""
        watcher = self.watcher
        watcher._release(self)
        if watcher.alive:
            watcher.loop.call_soon_threadsafe(
                watcher.mailbox.deliver, "info", ("DOWN", self, self.target, reason))


def monitor(watcher: Any, target: Any) -> MonitorRef:
    """Watch ``target`` (a client or supervisor, or a name) for ``watcher`` (a client).

    Returns the reference that the DOWN message carries. The monitor ends
    with the watcher: when the watcher exits first, it is removed from the
    target. A watcher that is not alive gets a reference that never fires.
    """
    w = client_of(watcher)
    t = resolve(target)
    ref = MonitorRef(w, t)
    if not w._hold(ref):
        return ref  # the watcher has exited: nobody to tell
    if not t._watch(ref):
        ref.fire(t.exit_reason)  # already gone: DOWN at once
    elif w._down:
        # The watcher's exit began meanwhile and may have removed its
        # monitors from their targets before this one was added: remove it.
        t._unwatch(ref)
    return ref


def demonitor(ref: MonitorRef) -> bool:
    """Remove the monitor ``ref``; True if it had not fired yet (no DOWN will come)."""
    if not isinstance(ref, MonitorRef):
        raise TypeError(f"wsx.demonitor takes a wsx.MonitorRef, not {ref!r}")
    ref.watcher._release(ref)
    return ref.target._unwatch(ref)
