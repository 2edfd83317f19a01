"""Reconnect delays: exponential backoff, capped, with full jitter.

Use it from ``handle_disconnect`` without blocking the loop::

    backoff = wsx.Backoff(base=0.5, cap=30)

    def handle_disconnect(self, status, state):
        if status.clean:                        # 1000/1001, or we closed normally
            return ("ok", state)
        if status.code == 1008:                 # policy violation: give up
            return ("ok", state)
        return ("reconnect_after", backoff.delay(status.attempt_number), state)

``status.attempt_number`` restarts at 1 after each successful connection, so
the delays grow only while the server stays unreachable. See
:class:`wsx.DisconnectStatus` for ``clean``, ``code``, ``remote`` and ``error``.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays for attempt ``n`` (1-based): uniform in ``[0, min(cap, base * factor**(n-1))]``.

    "Full jitter" spreads reconnecting clients apart so that a server that
    comes back is not hit by all of them at once. ``jitter=False`` gives the
    plain capped exponential. ``rng`` can be a seeded ``random.Random``.
    """

    def __init__(self, base: float = 0.5, cap: float = 30.0, factor: float = 2.0,
                 jitter: bool = True, rng: random.Random | None = None) -> None:
        if base <= 0 or cap <= 0 or factor < 1:
            raise ValueError(f"need base > 0, cap > 0, factor >= 1 (got {base}, {cap}, {factor})")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The largest delay for ``attempt`` (before jitter)."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt!r}")
        exp = min(attempt - 1, 64)
        try:
            grown = self.base * self.factor**exp
        except OverflowError:  # a large float factor: the cap applies anyway
            return float(self.cap)
        return float(min(self.cap, grown))

    def delay(self, attempt: int) -> float:
        """The delay in seconds before reconnect ``attempt``."""
        ceiling = self.ceiling(attempt)
        return self._rng.uniform(0.0, ceiling) if self.jitter else ceiling
