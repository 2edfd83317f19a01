"""Which end of a WebSocket connection the core works for: the client or the server.

The side decides the rules that differ between the ends (RFC 6455 section
5.1, RFC 7692 section 7.1): a client masks what it sends and receives
unmasked frames, a server the opposite; permessage-deflate's parameters
named ``client_*`` apply to the client's sending and the server's receiving.
Everything else (the parser's rules, UTF-8, closing, limits) is the same for
both, written once.
"""

from __future__ import annotations

import enum

__all__ = ["Side"]


class Side(enum.Enum):
    """The end of the connection: :attr:`CLIENT` or :attr:`SERVER`."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def masks(self) -> bool:
        """True when this end masks the frames it sends (the client)."""
        return self is Side.CLIENT
