"""A client's mailbox: the casts, infos and calls sent to it.

``wsx.cast``, ``wsx.send`` and ``wsx.call`` deliver here. A message is
handled at once (``handle_cast`` / ``handle_info`` / ``handle_call``) when the
client is open, neither suspended nor awaiting an ``async def`` callback, and
has nothing older waiting; otherwise it
waits, in order, until the client is open and free again (:meth:`drain`).
Messages to a client that is ending (its ``terminate`` runs) or has ended are
dropped (logged at debug level).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from .lifecycle import TERMINATED, TERMINATING

__all__ = ["Mailbox"]

logger = logging.getLogger("wsx")


class Mailbox:
    """The messages of one client (see the module documentation)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._held: deque[tuple[str, Any]] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        """Drop the messages waiting (the client ends)."""
        self._held.clear()

    def deliver(self, kind: str, msg: Any) -> None:
        """A ``"cast"``, ``"info"`` or ``"call"`` (``(request, caller)``): now, or held."""
        lifecycle = self.client.lifecycle
        if lifecycle.state is TERMINATED or lifecycle.state is TERMINATING:
            logger.debug("%r: %s %r dropped: the client is ending", self.client, kind, msg)
        elif lifecycle.free and not self._held:
            self._handle(kind, msg)
        else:
            self._held.append((kind, msg))

    def drain(self) -> None:
        """Handle the messages held, in order, while the client is open and free."""
        lifecycle = self.client.lifecycle
        while self._held and lifecycle.free:
            kind, msg = self._held.popleft()
            self._handle(kind, msg)

    def _handle(self, kind: str, msg: Any) -> None:
        client = self.client
        dbg = client.dispatcher.dbg
        if dbg is not None:
            dbg.event(client, kind, msg)
            if dbg.stats is not None:
                dbg.stats["messages_in"] += 1
        if kind == "call":
            client.dispatcher.call_request(*msg)
        else:
            client.dispatcher.call("handle_cast" if kind == "cast" else "handle_info", msg)
