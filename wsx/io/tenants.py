"""What runs on a loop and must hear when that loop is closed under it.

A loop that is closed runs nothing more: a client left on it could never
read, write, time out or end, and would hold its socket forever. Each loop
(:class:`wsx.io.loop.Loop`, :class:`wsx.io.aioloop.AsyncioLoop`) keeps its
tenants in a :class:`Tenants`, held weakly, and evicts them once it is found
closed: each live tenant's ``host_loop_closed()`` is called, on the thread
that found it or on a thread of its own (:meth:`Tenants.evict_soon`, when
that thread may hold a tenant's lock), while no loop thread runs anything of
theirs.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["Tenants"]


class Tenants:
    """The objects (with a ``host_loop_closed()`` method) that run on one loop."""

    __slots__ = ("_owners", "_lock")

    def __init__(self) -> None:
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, owner: Any) -> None:
        """``owner`` runs on the loop from now on (until it is garbage)."""
        with self._lock:
            self._owners.add(owner)

    def evict(self) -> None:
        """The loop is closed: tell every tenant (once), and forget them."""
        with self._lock:
            owners = list(self._owners)
            self._owners.clear()
        for owner in owners:
            owner.host_loop_closed()

    def evict_soon(self) -> None:
        """:meth:`evict` on a thread of its own: for a caller that may hold a tenant's
        lock (a post from a sender, a garbage collection anywhere)."""
        if len(self._owners):
            threading.Thread(target=self.evict, name="wsx-evict", daemon=True).start()
