"""The states of the WebSocket protocol on one connection (not of the process's lifecycle)."""

from __future__ import annotations

import enum

__all__ = ["ProtocolState"]


class ProtocolState(str, enum.Enum):
    """The state of the WebSocket protocol on one connection (:class:`~wsx.core.protocol.Protocol`).

    ``OPEN`` → ``CLOSING`` (a close frame sent, the peer's awaited) →
    ``CLOSED`` (both exchanged, or the connection failed). Its values are
    the strings ``"open"``, ``"closing"``, ``"closed"``. The process above
    has a lifecycle of its own (:class:`wsx.process.lifecycle.State`).
    """

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
