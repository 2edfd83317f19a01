"""WebSocket extensions (RFC 6455 section 9).

An extension is negotiated in the opening handshake and then transforms data
frames on their way in and out. It owns one or more RSV bits. The protocol
layer (:mod:`wsx.core.protocol`) calls it per data frame; the frame codec knows
nothing about any particular extension.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Extension"]


class Extension(Protocol):
    """What the protocol layer needs from a negotiated extension."""

    #: Extension name as in ``Sec-WebSocket-Extensions``.
    name: str
    #: RSV bits this extension may set (e.g. 0x40 for RSV1).
    rsv_mask: int

    def decode(
        self, opcode: int, fin: bool, rsv: int, payload: bytes, max_size: int | None
    ) -> tuple[int, bytes]:
        """Transform a received data frame; return the remaining RSV bits and payload.

        ``opcode`` is the frame's opcode (0 for a continuation frame), so the
        extension can tell the first frame of a message. ``max_size`` bounds the decoded output: an
        extension must raise :class:`~wsx.errors.FrameError` (1009) rather
        than produce more. Bad input raises ``FrameError`` (1002/1007).
        """
        ...

    def encode(self, opcode: int, fin: bool, rsv: int, payload: bytes) -> tuple[int, bytes]:
        """Transform a data frame to send; return its RSV bits and payload."""
        ...

    def wire_size(self, size: int) -> int:
        """The most bytes a message of ``size`` decoded bytes may take on the wire.

        The frame parser bounds received frames by it; the decoded message is
        bounded by ``size`` itself (``max_size`` of :meth:`decode`). Optional:
        an extension without it leaves the wire size at ``size``.
        """
        ...
