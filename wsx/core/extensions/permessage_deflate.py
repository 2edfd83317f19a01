"""permessage-deflate (RFC 7692): per-message compression.

Sans-I/O. :class:`Deflate` holds the configuration of either side. A
client's writes the offer for the opening handshake (:meth:`Deflate.offer`)
and, from the server's answer (validated strictly), builds a
:class:`PerMessageDeflate` (:meth:`Deflate.accept`); a server's picks the
first of a client's offers it can take and answers it
(:meth:`Deflate.negotiate`). :class:`PerMessageDeflate` is the negotiated
extension that the protocol layer calls for every data frame; its side
decides which of the ``client_*`` / ``server_*`` parameters rule its
compressor and which its decompressor.

Memory per connection (documented choice):

* the compressor is created on the first message that is compressed (and
  dropped after each message with this side's ``*_no_context_takeover``).
  With the default ``memLevel=8`` and a window of ``2**bits`` bytes, zlib
  needs about ``2**(bits+2) + 2**(memLevel+9)`` bytes: 256 KiB at 15 bits,
  132 KiB at 12 bits (``mem_level`` and this side's ``*_max_window_bits``
  lower it);
* the decompressor's window (``2**bits`` bytes, 32 KiB at 15 bits) is
  allocated by zlib on the first compressed message received;
* an idle connection that never exchanged a compressed message holds neither.

Decompression is bounded: output is produced at most up to the message size
limit (plus one byte to detect the overflow), so a small frame that inflates
to gigabytes fails with 1009 after one limit's worth of output.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

from ...errors import CloseCode, FrameError, HandshakeError
from ..frames import OP_CONTINUATION, RSV1
from ..side import Side

__all__ = ["Deflate", "PerMessageDeflate", "EXTENSION_NAME"]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
# What may follow a BFINAL block (RFC 7692 7.2.3.5) before / at the message end.
_AFTER_FINAL = (b"", b"\x00")
_AFTER_FINAL_END = (_TAIL, b"\x00" + _TAIL)
_PARAMS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


def _check_bits(name: str, value: Any, allow_true: bool = False) -> None:
    if allow_true and value is True:
        return
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 15:
        raise ValueError(f"{name} must be an int from 8 to 15{' or True' if allow_true else ''}, "
                         f"not {value!r}")


class Deflate:
    """Configuration of permessage-deflate (``compress=`` option), for either side.

    As a client's (``offer``, ``accept``):

    :param client_no_context_takeover: ask to reset our compressor after each
        message (less memory, worse ratio). The server may also impose it.
    :param server_no_context_takeover: ask the server to reset its compressor
        after each message.
    :param client_max_window_bits: ``True`` (default) offers the parameter
        without a value, letting the server pick our window; an int 8..15
        caps it; ``None`` does not offer it.
    :param server_max_window_bits: an int 8..15 asks the server to use at
        most that window; ``None`` (default) does not ask.

    As a server's (``negotiate``), the same four parameters say what the
    server asks of every connection: ``client_no_context_takeover`` makes
    the client reset its compressor after each message (the server's
    decompressor then holds no window between messages);
    ``server_no_context_takeover`` resets the server's own compressor;
    ``server_max_window_bits`` caps the server's window (and a client's
    smaller request is honoured); ``client_max_window_bits`` as an int caps
    the client's window, and an offer that does not allow that cap is
    declined (``True`` or ``None``: no cap). Both sides:

    :param threshold: messages shorter than this many bytes are sent
        uncompressed (default 32).
    :param level: zlib compression level (default -1: zlib's default, 6).
    :param mem_level: zlib memLevel for our compressor (1..9, default 8).
    """

    def __init__(
        self,
        *,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
        client_max_window_bits: int | bool | None = True,
        server_max_window_bits: int | None = None,
        threshold: int = 32,
        level: int = -1,
        mem_level: int = 8,
    ) -> None:
        _check_bits("client_max_window_bits", client_max_window_bits, allow_true=True)
        _check_bits("server_max_window_bits", server_max_window_bits)
        if not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"threshold must be an int >= 0, not {threshold!r}")
        if not -1 <= level <= 9:
            raise ValueError(f"level must be -1..9, not {level!r}")
        if not 1 <= mem_level <= 9:
            raise ValueError(f"mem_level must be 1..9, not {mem_level!r}")
        self.client_no_context_takeover = bool(client_no_context_takeover)
        self.server_no_context_takeover = bool(server_no_context_takeover)
        self.client_max_window_bits = client_max_window_bits
        self.server_max_window_bits = server_max_window_bits
        self.threshold = threshold
        self.level = level
        self.mem_level = mem_level

    def offer(self) -> str:
        """The ``Sec-WebSocket-Extensions`` offer.

        For example ``permessage-deflate; client_max_window_bits``.
        """
        parts = [EXTENSION_NAME]
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_max_window_bits is True:
            parts.append("client_max_window_bits")
        elif self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)

    def negotiate(
        self, offers: Sequence[tuple[str, Sequence[tuple[str, str | None]]]]
    ) -> tuple[PerMessageDeflate, str] | None:
        """As the server: take the first acceptable permessage-deflate offer of ``offers``.

        ``offers`` are the client's ``Sec-WebSocket-Extensions`` as parsed
        (``(name, params)`` pairs, in the client's order of preference);
        offers of other extensions are skipped. Returns the negotiated
        extension (the server's side) and the response value for
        ``Sec-WebSocket-Extensions``, or ``None`` when no offer can be taken
        (an offer with an unknown, repeated or invalid parameter is declined,
        RFC 7692 section 5).
        """
        for name, params in offers:
            if name != EXTENSION_NAME:
                continue
            try:
                answer = self._answer(_check_params(params, "offer"))
            except HandshakeError:
                continue  # a broken offer is declined
            if answer is None:
                continue
            extension = PerMessageDeflate(
                side=Side.SERVER,
                server_no_context_takeover="server_no_context_takeover" in answer,
                client_no_context_takeover="client_no_context_takeover" in answer,
                server_max_window_bits=int(answer.get("server_max_window_bits") or 15),
                client_max_window_bits=int(answer.get("client_max_window_bits") or 15),
                threshold=self.threshold,
                level=self.level,
                mem_level=self.mem_level,
            )
            response = "; ".join(
                [EXTENSION_NAME]
                + [k if v is None else f"{k}={v}" for k, v in answer.items()])
            return extension, response
        return None

    def _answer(self, offered: dict[str, str | None]) -> dict[str, str | None] | None:
        """The response parameters to a client's offer (validated), or None to decline it."""
        answer: dict[str, str | None] = {}
        if self.server_no_context_takeover or "server_no_context_takeover" in offered:
            answer["server_no_context_takeover"] = None
        if self.client_no_context_takeover or "client_no_context_takeover" in offered:
            answer["client_no_context_takeover"] = None
        ours = self.server_max_window_bits
        if "server_max_window_bits" in offered:
            bits = _parse_bits("server_max_window_bits", offered["server_max_window_bits"])
            answer["server_max_window_bits"] = str(bits if ours is None else min(bits, ours))
        elif ours is not None:
            answer["server_max_window_bits"] = str(ours)
        cap = self.client_max_window_bits
        cap = cap if isinstance(cap, int) and cap is not True else None
        if "client_max_window_bits" in offered:
            value = offered["client_max_window_bits"]
            hint = 15 if value is None else _parse_bits("client_max_window_bits", value)
            if cap is not None or value is not None:
                answer["client_max_window_bits"] = str(hint if cap is None else min(hint, cap))
        elif cap is not None:
            return None  # the client cannot take a cap on its window: decline
        return answer

    def accept(self, params: Sequence[tuple[str, str | None]]) -> PerMessageDeflate:
        """Validate the server's parameters; return the negotiated extension.

        Raises :class:`HandshakeError` for unknown or repeated parameters, bad
        values, values outside 8..15, or a parameter the offer did not allow.
        """
        seen = _check_params(params, "response")
        server_bits = 15
        if "server_max_window_bits" in seen:
            server_bits = _parse_bits("server_max_window_bits", seen["server_max_window_bits"])
            offered_bits = self.server_max_window_bits
            if offered_bits is not None and server_bits > offered_bits:
                raise HandshakeError(
                    f"{EXTENSION_NAME}: server_max_window_bits={server_bits} exceeds the "
                    f"{self.server_max_window_bits} offered")
        elif self.server_max_window_bits is not None:
            # RFC 7692 7.1.2.1: the server must answer a server_max_window_bits offer.
            raise HandshakeError(f"{EXTENSION_NAME}: the server ignored server_max_window_bits="
                                 f"{self.server_max_window_bits}")
        if self.server_no_context_takeover and "server_no_context_takeover" not in seen:
            raise HandshakeError(f"{EXTENSION_NAME}: the server did not accept "
                                 "server_no_context_takeover")
        offered = self.client_max_window_bits
        client_bits = offered if isinstance(offered, int) and offered is not True else 15
        if "client_max_window_bits" in seen:
            if self.client_max_window_bits is None:
                raise HandshakeError(f"{EXTENSION_NAME}: client_max_window_bits in the response "
                                     "but not offered")
            bits = _parse_bits("client_max_window_bits", seen["client_max_window_bits"])
            if bits > client_bits:
                raise HandshakeError(f"{EXTENSION_NAME}: client_max_window_bits={bits} exceeds "
                                     f"the {client_bits} offered")
            client_bits = bits
        return PerMessageDeflate(
            server_no_context_takeover="server_no_context_takeover" in seen,
            client_no_context_takeover=(self.client_no_context_takeover
                                        or "client_no_context_takeover" in seen),
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            threshold=self.threshold,
            level=self.level,
            mem_level=self.mem_level,
        )


def _check_params(params: Sequence[tuple[str, str | None]], where: str) -> dict[str, str | None]:
    """The parameters of an offer or a response by name; HandshakeError for a bad one.

    Unknown and repeated parameters, and a value on a flag, break RFC 7692
    section 7 in either direction; window sizes are checked where they are
    read (``_parse_bits``).
    """
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name not in _PARAMS:
            raise HandshakeError(f"{EXTENSION_NAME}: unknown parameter {name!r} in the {where}")
        if name in seen:
            raise HandshakeError(f"{EXTENSION_NAME}: parameter {name!r} repeated in the {where}")
        seen[name] = value
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in seen and seen[flag] is not None:
            raise HandshakeError(f"{EXTENSION_NAME}: {flag} takes no value, got {seen[flag]!r}")
    return seen


# RFC 7692 7.1.2: "a decimal integer value without leading zeroes between 8
# to 15, inclusive" (ASCII digits only: str.isdigit() also accepts e.g. "²").
_BITS_RE = re.compile(r"[89]|1[0-5]")


def _parse_bits(name: str, value: str | None) -> int:
    if value is None or _BITS_RE.fullmatch(value) is None:
        raise HandshakeError(f"{EXTENSION_NAME}: {name} must be an integer from 8 to 15 "
                             f"without leading zeros, got {value!r}")
    return int(value)


class PerMessageDeflate:
    """The negotiated extension: compresses and decompresses data frames (owns RSV1).

    ``side`` is the end it works for: a client compresses with the
    ``client_*`` parameters and decompresses with the ``server_*`` ones, a
    server the opposite.
    """

    name = EXTENSION_NAME
    rsv_mask = RSV1

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        client_max_window_bits: int = 15,
        threshold: int = 32,
        level: int = -1,
        mem_level: int = 8,
        side: Side = Side.CLIENT,
    ) -> None:
        self.side = side
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.threshold = threshold
        self.level = level
        self.mem_level = mem_level
        if side is Side.CLIENT:
            send_bits, self._send_reset = client_max_window_bits, client_no_context_takeover
            recv_bits, self._recv_reset = server_max_window_bits, server_no_context_takeover
        else:
            send_bits, self._send_reset = server_max_window_bits, server_no_context_takeover
            recv_bits, self._recv_reset = client_max_window_bits, client_no_context_takeover
        self._deflate_bits = send_bits
        # zlib cannot compress with a 256-byte window (it silently uses 512),
        # so with a window of 8 bits we send messages uncompressed, which
        # RFC 7692 allows for any message.
        self._can_compress = send_bits >= 9
        # A window of 8 bits is decoded with 9: larger windows decode any stream.
        self._inflate_bits = max(9, recv_bits)
        self._inflater: Any = None
        self._deflater: Any = None
        self._decoding = False  # the message being received is compressed
        self._decoded = 0  # its decompressed size so far
        self._fed = False  # compressed bytes of that message given to the inflater
        self._encoding = False  # the message being sent is compressed

    def __repr__(self) -> str:
        return (f"PerMessageDeflate(side={self.side.value}, "
                f"server_no_context_takeover={self.server_no_context_takeover}, "
                f"client_no_context_takeover={self.client_no_context_takeover}, "
                f"server_max_window_bits={self.server_max_window_bits}, "
                f"client_max_window_bits={self.client_max_window_bits})")

    def response_params(self) -> list[tuple[str, str | None]]:
        """The negotiated parameters, as the server would state them."""
        params: list[tuple[str, str | None]] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits != 15:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits != 15:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    # ------------------------------------------------------------- receiving
    def decode(
        self, opcode: int, fin: bool, rsv: int, payload: bytes, max_size: int | None
    ) -> tuple[int, bytes]:
        """Decompress a received data frame when its message is compressed."""
        if opcode != OP_CONTINUATION:
            self._decoding = bool(rsv & RSV1)
            self._decoded = 0
            self._fed = False
        elif rsv & RSV1:
            raise FrameError(CloseCode.PROTOCOL_ERROR, "RSV1 set on a continuation frame")
        if not self._decoding:
            return rsv, payload
        if fin and not payload and not self._fed:
            # A compressed message with an empty payload (compliant peers send
            # at least b"\x00"). Appending 00 00 ff ff would leave the
            # inflater inside a stored-block header and corrupt the next
            # message, so it is taken as the empty message without inflating.
            self._decoding = False
            return rsv & ~RSV1, b""
        self._fed = self._fed or bool(payload)
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(wbits=-self._inflate_bits)
        data = payload + _TAIL if fin else payload
        budget = 0 if max_size is None else max_size - self._decoded + 1
        try:
            out = inflater.decompress(data, budget)
        except zlib.error as exc:
            raise FrameError(CloseCode.INVALID_DATA,
                             f"cannot decompress the message: {exc}") from None
        # After a BFINAL block (RFC 7692 7.2.3.5) the DEFLATE stream is over.
        # Only the header byte of an empty stored block (0x00, as in the
        # RFC's example) and our appended 00 00 ff ff may follow it: zlib
        # would silently drop anything else (unused_data).
        if inflater.eof and inflater.unused_data not in (
                _AFTER_FINAL_END if fin else _AFTER_FINAL):
            raise FrameError(
                CloseCode.INVALID_DATA, "compressed data after the final DEFLATE block"
            )
        self._decoded += len(out)
        if max_size is not None and (self._decoded > max_size or inflater.unconsumed_tail):
            raise FrameError(CloseCode.MESSAGE_TOO_BIG,
                             f"decompressed message exceeds the limit of {max_size} bytes")
        if fin:
            self._decoding = False
            # After a BFINAL block the inflater accepts no more data (zlib would
            # return b"" for every later message): the next message starts a
            # new DEFLATE stream.
            if self._recv_reset or inflater.eof:
                self._inflater = None
        return rsv & ~RSV1, out

    def wire_size(self, size: int) -> int:
        """``size`` plus DEFLATE's worst-case overhead (zlib's ``deflateBound`` for any settings).

        A message that does not compress (random bytes) is a little larger
        compressed than decoded: ``max_message_size`` bounds the decoded
        message, and its compressed frames may be larger by this much.
        """
        return size + ((size + 7) >> 3) + ((size + 63) >> 6) + 5

    # --------------------------------------------------------------- sending
    def encode(self, opcode: int, fin: bool, rsv: int, payload: bytes) -> tuple[int, bytes]:
        """Compress a data frame to send (the whole message as one deflate stream)."""
        if opcode != OP_CONTINUATION:
            self._encoding = self._can_compress and (not fin or len(payload) >= self.threshold)
            if not self._encoding:
                return rsv, payload
            rsv |= RSV1
        elif not self._encoding:
            return rsv, payload
        deflater = self._deflater
        if deflater is None:
            deflater = self._deflater = zlib.compressobj(
                self.level, zlib.DEFLATED, -self._deflate_bits, self.mem_level)
        data = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if data.endswith(_TAIL):
                data = data[:-4]
            self._encoding = False
            if self._send_reset:
                self._deflater = None
        return rsv, data
