"""When a client connects again: its attempt count and the pace of immediate reconnects.

:class:`Reconnects` belongs to one client. It counts the attempts since the
last open connection (``handle_disconnect``'s ``attempt_number``) and the
attempts in a row that failed to connect, and says how long to wait before
the next attempt:

- ``("reconnect_after", seconds, state)``: those seconds.
- ``("reconnect", state)`` after a connection that was open: no wait, as in
  WebSockex.
- ``("reconnect", state)`` after an attempt that failed to connect: what is
  left of ``Conn.min_reconnect_interval`` since that attempt started, so
  that a server that is down is not tried as fast as the CPU allows.

Every attempt starts from the loop (a timer, even for no wait), never from
inside the failure of the one before: an attempt that fails at once (EMFILE,
a bad proxy setting) cannot recurse, and a stop always finds the client
between two attempts. After :data:`WARN_AFTER` failures in a row the client
logs one warning, until it connects again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .owner import ClientParts

__all__ = ["Reconnects", "WARN_AFTER"]

logger = logging.getLogger("wsx")

#: Failed attempts in a row after which a client logs that it keeps failing.
WARN_AFTER = 10


class Reconnects:
    """The attempt count and reconnect pace of one client (see the module documentation)."""

    def __init__(self, client: ClientParts) -> None:
        self.client = client
        #: Attempts since the last open connection (0: none failed yet).
        self.attempt = 0
        #: Attempts in a row that failed to connect.
        self.failures = 0
        self._started = 0.0  # time.monotonic() when the current attempt started

    def starting(self) -> None:
        """A connection attempt starts."""
        self._started = time.monotonic()

    def connected(self) -> None:
        """The attempt succeeded: the counts start again."""
        self.attempt = 0
        self.failures = 0

    def failed(self, error: Any) -> None:
        """The attempt failed to connect."""
        self.failures += 1
        if self.failures == WARN_AFTER:
            logger.warning(
                "%r: %d connection attempts in a row failed (the last: %s); it goes on "
                "reconnecting as handle_disconnect asks. Return (\"reconnect_after\", "
                "seconds, state), or use wsx.Backoff, to wait longer between attempts",
                self.client, self.failures, error)

    def disconnected(self) -> int:
        """The connection (or attempt) ended: the ``attempt_number`` for ``handle_disconnect``."""
        self.attempt += 1
        return self.attempt

    def wait(self, delay: float) -> float:
        """Seconds before the next attempt, for a reconnect asked with ``delay``."""
        if delay > 0 or not self.failures:
            return delay
        floor: float = self.client.conn.min_reconnect_interval
        return max(0.0, floor - (time.monotonic() - self._started))
