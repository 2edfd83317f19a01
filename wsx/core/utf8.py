"""Incremental, fail-fast UTF-8 decoding for text messages.

RFC 6455 requires a client to fail the connection (close code 1007) as soon
as a text message is known to be invalid UTF-8, even when the message arrives
in several frames or a frame arrives in several TCP segments. Autobahn
section 6 checks that the failure happens at the first byte that makes the
sequence invalid, not at the end of the message.

CPython's incremental UTF-8 decoder (implemented in C) already rejects
overlong forms, code points above U+10FFFF and most invalid prefixes at the
first bad byte. The one prefix it keeps waiting on is ``ED A0..BF`` (the start
of a UTF-16 surrogate), which can never become valid: :class:`Utf8Decoder`
checks the bytes the decoder holds back for that case.
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Decoder", "is_valid_utf8"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Decoder:
    """Decode a text message piece by piece, raising at the first invalid byte.

    ``decode(data)`` returns the text decoded so far (it may hold back the
    bytes of an incomplete character) and raises :class:`UnicodeDecodeError`
    as soon as the input cannot be the prefix of valid UTF-8. ``finish()``
    returns the rest and raises if the message ends inside a character.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def decode(self, data: bytes | bytearray | memoryview) -> str:
        """Decode one more piece of the message (not the last one)."""
        text: str = self._decoder.decode(data, False)
        pending = self._decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise UnicodeDecodeError(
                "utf-8", bytes(pending), 0, 2, "UTF-16 surrogate code point is not allowed"
            )
        return text

    def finish(self, data: bytes | bytearray | memoryview = b"") -> str:
        """Decode the last piece of the message and reset the decoder."""
        try:
            text: str = self._decoder.decode(data, True)
        finally:
            self._decoder.reset()
        return text

    def reset(self) -> None:
        """Forget any partial character (start a new message)."""
        self._decoder.reset()


def is_valid_utf8(data: bytes | bytearray | memoryview) -> bool:
    """Return True when ``data`` is complete, valid UTF-8."""
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True
