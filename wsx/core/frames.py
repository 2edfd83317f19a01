"""RFC 6455 frame codec: opcodes, close payloads, frame encoder and parser.

Sans-I/O: this module turns bytes into frames and frames into bytes. It never
touches a socket, a thread or a clock.

The parser enforces every frame-level rule of RFC 6455 section 5 and reports
a violation as :class:`~wsx.errors.FrameError` carrying the close code to fail
the connection with (1002 protocol error, 1009 message too big). Message-level
rules (UTF-8 of text messages, close payloads) live in :mod:`wsx.core.protocol`,
which uses :func:`parse_close` from here.
"""

from __future__ import annotations

import os
import struct
from typing import Any, NamedTuple

from .._twins import compiled
from ..errors import CloseCode, FrameEncodeError, FrameError, InvalidFrameError
from ..mask import frame_masked, mask
from .utf8 import is_valid_utf8

__all__ = [
    "OP_CONTINUATION",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OPCODE_NAMES",
    "RSV1",
    "RSV2",
    "RSV3",
    "DEFAULT_MAX_SIZE",
    "Frame",
    "FrameParser",
    "MaskKeySource",
    "encode_frame",
    "encode_data",
    "byte_payload",
    "encode_close",
    "parse_close",
    "is_valid_close_code",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

OPCODE_NAMES = {
    OP_CONTINUATION: "continuation",
    OP_TEXT: "text",
    OP_BINARY: "binary",
    OP_CLOSE: "close",
    OP_PING: "ping",
    OP_PONG: "pong",
}

RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10

#: Default limit for one frame and for one message: 16 MiB.
DEFAULT_MAX_SIZE = 16 * 1024 * 1024

_MAX_CONTROL_PAYLOAD = 125
_pack_16 = struct.Struct("!H").pack
_pack_64 = struct.Struct("!Q").pack
_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


class Frame(NamedTuple):
    """One parsed frame. ``rsv`` holds the RSV bits as in the first byte (0x70 mask)."""

    opcode: int
    fin: bool
    rsv: int
    payload: bytes


class MaskKeySource:
    """Masking keys from the OS's strong random source, read in batches.

    RFC 6455 section 5.3 requires an unpredictable key per frame. Reading
    4 KiB from ``os.urandom`` at a time gives 1024 keys per system call.
    """

    __slots__ = ("_pool", "_pos", "_batch")

    def __init__(self, batch: int = 1024) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be at least 1 key, not {batch!r}")
        self._batch = batch * 4
        self._pool = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(self._batch)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


_default_keys = MaskKeySource()


def encode_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview = b"",
    fin: bool = True,
    rsv: int = 0,
    mask_key: bytes | None = None,
    masked: bool = True,
) -> bytes:
    """Encode one frame.

    A client's frames are masked (``masked=True``, the default) with
    ``mask_key`` or a fresh random key; ``masked=False`` encodes a server's
    frame. Control frames longer than 125 bytes or not final raise
    :class:`FrameEncodeError`.
    """
    payload = byte_payload(payload)
    length = len(payload)
    if opcode >= 0x8:
        if length > _MAX_CONTROL_PAYLOAD:
            raise FrameEncodeError(
                f"control frame payload is {length} bytes, the limit is 125",
                (OPCODE_NAMES.get(opcode, opcode), bytes(payload[:32])),
            )
        if not fin:
            raise FrameEncodeError(
                f"control frame ({OPCODE_NAMES.get(opcode, opcode)}) cannot be fragmented"
            )
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if masked else 0
    if length < 126:
        header = bytes((b0, mbit | length))
    elif length < 0x10000:
        header = bytes((b0, mbit | 126)) + _pack_16(length)
    else:
        header = bytes((b0, mbit | 127)) + _pack_64(length)
    if not masked:
        return header + payload
    key = mask_key if mask_key is not None else _default_keys()
    return frame_masked(header + key, payload, key)


def byte_payload(payload: Any, frame: Any = None) -> bytes | bytearray | memoryview:
    """A frame payload as bytes: ``len()`` of it is its size on the wire.

    bytes and bytearray are returned as they are; a memoryview of items
    larger than one byte (``array('i')``, numpy data) is cast to bytes.
    Raises :class:`InvalidFrameError` for a memoryview that is not
    contiguous (its bytes are not one run of memory), naming ``frame`` if
    given, and ``TypeError`` for an object that is not a buffer.
    """
    if type(payload) is bytes or type(payload) is bytearray:
        return payload
    view = payload if isinstance(payload, memoryview) else memoryview(payload)
    if not view.c_contiguous:
        raise InvalidFrameError(
            payload if frame is None else frame,
            "a memoryview payload must be contiguous (use bytes(view) to copy it)",
        )
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def encode_data(opcode: int, payload: bytes, masked: bool = True) -> bytes:
    """A whole data frame (``opcode`` text or binary): the send path's usual case.

    ``masked``: a client's frame (the default); ``False``: a server's. The
    same bytes as ``encode_frame(opcode, payload, masked=masked)``; the
    compiled twin takes its arguments without keyword handling.
    """
    return encode_frame(opcode, payload, masked=masked)


def is_valid_close_code(code: int) -> bool:
    """True for the codes that may appear in a close frame (RFC 6455 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_close(code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
    """Build a close frame payload. ``code=None`` gives an empty payload.

    Raises :class:`FrameEncodeError` for a code that may not be sent or a
    reason longer than 123 bytes of UTF-8.
    """
    if code is None:
        if reason:
            raise FrameEncodeError(f"a close reason ({reason!r}) needs a close code")
        return b""
    if not isinstance(code, int) or isinstance(code, bool) or not is_valid_close_code(code):
        raise FrameEncodeError(
            f"invalid close code {code!r}: use 1000-1003, 1007-1014 or 3000-4999"
        )
    data = reason.encode("utf-8")
    if len(data) > 123:
        raise FrameEncodeError(
            f"close reason is {len(data)} bytes of UTF-8, the limit is 123: {reason[:40]!r}..."
        )
    return _pack_16(code) + data


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """Parse a received close payload into ``(code, reason)``.

    An empty payload gives ``(None, "")`` (status 1005: no status received).
    Raises :class:`FrameError` with 1002 for a 1-byte payload or a code that
    may not be sent, and 1007 for a reason that is not valid UTF-8.
    """
    n = len(payload)
    if n == 0:
        return None, ""
    if n == 1:
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"close frame with a 1-byte payload {payload!r}")
    (code,) = _unpack_16(payload)
    if not is_valid_close_code(code):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"close frame with invalid close code {code}")
    raw = payload[2:]
    if not is_valid_utf8(raw):
        raise FrameError(
            CloseCode.INVALID_DATA, f"close reason is not valid UTF-8: {bytes(raw[:40])!r}"
        )
    return code, str(raw, "utf-8")


class FrameParser:
    """Incremental frame parser, for either side (``masked`` says which).

    Feed it bytes in chunks of any size with :meth:`feed`; it returns the
    complete frames found so far. It checks, raising :class:`FrameError`:

    * RSV bits not claimed by a negotiated extension (``allowed_rsv``): 1002;
    * reserved opcodes: 1002;
    * control frames longer than 125 bytes or fragmented: 1002;
    * a masked frame (servers must not mask): 1002;
    * a 64-bit length with the most significant bit set: 1002;
    * a continuation frame with no message in progress, or a new data frame
      inside a fragmented message: 1002;
    * a frame longer than ``max_frame_size`` or a fragmented message whose
      frames add up to more than ``max_message_size``: 1009, checked from the
      header before the payload is buffered.

    ``None`` disables a size limit. The frames completed before the bad
    header are not lost: they are on the exception, as ``exc.frames``.
    After an error the parser is unusable.

    ``masked=False`` (the default) parses what a server sends, for a
    client; ``masked=True`` what a client sends, for a server: every frame
    must be masked, and payloads are returned unmasked. The compiled parser
    (``wsx.core._codec``) has both modes too; this one stays reachable as
    ``wsx.core.frames.PyFrameParser`` whichever parser ``FrameParser`` names.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "max_frame_size",
        "max_message_size",
        "allowed_rsv",
        "_fragmented",
        "_message_len",
        "_pending",
        "masked",
    )

    def __init__(
        self,
        max_frame_size: int | None = DEFAULT_MAX_SIZE,
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        allowed_rsv: int = 0,
        masked: bool = False,
    ) -> None:
        self.masked = masked
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size
        self.max_message_size = max_message_size
        self.allowed_rsv = allowed_rsv
        self._fragmented = False  # a fragmented data message is in progress
        self._message_len = 0  # bytes of the message in progress so far
        # Header of the frame whose payload is incomplete:
        # (opcode, fin, rsv, payload_start, payload_length) or None.
        self._pending: tuple[int, bool, int, int, int] | None = None

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as frames."""
        return len(self._buf) - self._pos

    def pending_header(self) -> tuple[int, int] | None:
        """``(opcode, rsv)`` of a frame whose payload is still arriving, else ``None``."""
        p = self._pending
        return None if p is None else (p[0], p[2])

    def pending_bytes(self, skip: int = 0) -> bytes:
        """The payload received so far of the incomplete frame, less its first ``skip`` bytes.

        Used to validate the text of a large frame while it is still arriving
        (fail fast on invalid UTF-8).
        """
        p = self._pending
        if p is None:
            return b""
        start, length = p[3], p[4]
        stop = min(start + length, len(self._buf))
        data = bytes(self._buf[start + skip : stop])
        if self.masked and data:
            data = mask(data, bytes(self._buf[start - 4 : start]), skip)
        return data

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; return the frames they complete (possibly none)."""
        buf = self._buf
        pos = self._pos
        if pos:
            del buf[:pos]
            if self._pending is not None:
                op, fin, rsv, start, length = self._pending
                self._pending = (op, fin, rsv, start - pos, length)
            pos = self._pos = 0
        buf += data
        frames: list[Frame] = []
        end = len(buf)
        while True:
            pending = self._pending
            if pending is not None:
                opcode, fin, rsv, start, length = pending
            else:
                if end - pos < 2:
                    break
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                start = pos + 2
                if length == 126:
                    if end - pos < 4:
                        break
                    (length,) = _unpack_16(buf, pos + 2)
                    start = pos + 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    (length,) = _unpack_64(buf, pos + 2)
                    start = pos + 10
                if self.masked and b1 & 0x80:
                    if end - start < 4:
                        break  # the masking key is not all in: check the header later
                    start += 4
                try:
                    opcode, fin, rsv = self._check_header(b0, b1, length)
                except FrameError as exc:
                    exc.frames = frames
                    self._pos = pos
                    raise
                self._pending = (opcode, fin, rsv, start, length)
            stop = start + length
            if stop > end:
                break
            self._pending = None
            if length > 512:
                with memoryview(buf) as view:
                    payload = bytes(view[start:stop])
            else:
                payload = bytes(buf[start:stop])
            if self.masked and payload:
                payload = mask(payload, bytes(buf[start - 4 : start]))
            frames.append(Frame(opcode, fin, rsv, payload))
            pos = stop
        self._pos = pos
        if pos == end:
            buf.clear()
            self._pos = 0
        return frames

    def _check_header(self, b0: int, b1: int, length: int) -> tuple[int, bool, int]:
        opcode, fin, rsv, self._fragmented, self._message_len = check_header(
            b0, b1, length, self.allowed_rsv, self._fragmented, self._message_len,
            self.max_frame_size, self.max_message_size, self.masked,
        )
        return opcode, fin, rsv


def check_header(
    b0: int,
    b1: int,
    length: int,
    allowed_rsv: int,
    fragmented: bool,
    message_len: int,
    max_frame_size: int | None,
    max_message_size: int | None,
    masked: bool = False,
) -> tuple[int, bool, int, bool, int]:
    """Check a received frame header against RFC 6455 section 5 and the size limits.

    ``b0``/``b1`` are the first two header bytes, ``length`` the payload
    length; ``fragmented`` and ``message_len`` describe the data message in
    progress; ``masked`` says which direction: ``False`` for frames from a
    server (which must not be masked), ``True`` for frames from a client
    (which must be). Returns ``(opcode, fin, rsv, fragmented, message_len)`` (the last
    two updated for the next header) or raises :class:`FrameError`. Both
    parsers (this module's and the compiled one) use it, so the rules and
    their messages are written once.
    """
    opcode = b0 & 0x0F
    fin = bool(b0 & 0x80)
    rsv = b0 & 0x70
    if rsv & ~allowed_rsv:
        raise FrameError(
            CloseCode.PROTOCOL_ERROR,
            f"reserved bits 0x{rsv:02x} set without a negotiated extension "
            f"(frame byte 0x{b0:02x})",
        )
    if bool(b1 & 0x80) != masked:
        raise FrameError(
            CloseCode.PROTOCOL_ERROR,
            "the client sent an unmasked frame" if masked else "the server sent a masked frame",
        )
    if opcode >= 0x8:
        if opcode > OP_PONG:
            raise FrameError(CloseCode.PROTOCOL_ERROR, f"reserved control opcode 0x{opcode:x}")
        if rsv:
            raise FrameError(
                CloseCode.PROTOCOL_ERROR,
                f"{OPCODE_NAMES[opcode]} frame with reserved bits 0x{rsv:02x} "
                "(extensions never apply to control frames)",
            )
        if length > _MAX_CONTROL_PAYLOAD:
            raise FrameError(
                CloseCode.PROTOCOL_ERROR,
                f"{OPCODE_NAMES[opcode]} frame with a {length}-byte payload (limit 125)",
            )
        if not fin:
            raise FrameError(
                CloseCode.PROTOCOL_ERROR, f"fragmented {OPCODE_NAMES[opcode]} frame"
            )
        return opcode, fin, rsv, fragmented, message_len
    if opcode > OP_BINARY:
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"reserved data opcode 0x{opcode:x}")
    if length >> 63:
        raise FrameError(
            CloseCode.PROTOCOL_ERROR, f"64-bit payload length 0x{length:016x} has its top bit set"
        )
    if opcode == OP_CONTINUATION:
        if not fragmented:
            raise FrameError(
                CloseCode.PROTOCOL_ERROR, "continuation frame with no message in progress"
            )
    elif fragmented:
        raise FrameError(
            CloseCode.PROTOCOL_ERROR,
            f"new {OPCODE_NAMES[opcode]} frame inside a fragmented message",
        )
    limit = max_frame_size
    if limit is not None and length > limit:
        raise FrameError(
            CloseCode.MESSAGE_TOO_BIG, f"frame of {length} bytes exceeds the limit of {limit}"
        )
    total = length + message_len if opcode == OP_CONTINUATION else length
    limit = max_message_size
    if limit is not None and total > limit:
        raise FrameError(
            CloseCode.MESSAGE_TOO_BIG,
            f"message of at least {total} bytes exceeds the limit of {limit}",
        )
    return opcode, fin, rsv, not fin, 0 if fin else total


# The compiled codec (wsx/core/_codec.pyx), unless disabled or not built. The
# pure-Python versions stay reachable as PyFrameParser / py_encode_frame.
PyFrameParser = FrameParser
py_encode_frame = encode_frame
py_encode_data = encode_data
#: ``"cython"`` when the compiled parser and encoder are in use, else ``"python"``.
CODEC_IMPLEMENTATION = "python"
_codec: Any = compiled("wsx.core._codec")
if _codec is not None:
    _codec._bind(Frame, check_header, py_encode_frame, DEFAULT_MAX_SIZE, byte_payload)
    FrameParser = _codec.FrameParser  # type: ignore[misc]
    MaskKeySource = _codec.MaskKeySource  # type: ignore[misc]
    _default_keys = _codec.default_keys  # one key pool per process, whichever encoder runs
    encode_frame = _codec.encode_frame
    encode_data = _codec.encode_data
    CODEC_IMPLEMENTATION = "cython"
