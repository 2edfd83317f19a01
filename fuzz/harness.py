"""Fuzz targets for wsx's sans-I/O parsers, shared by every fuzzer in this directory.

Two targets, each a function of one ``bytes`` blob (so that any finding is a
single reproducible input):

* :func:`run_frames`: ``blob[0]`` picks a configuration (permessage-deflate
  negotiated or not and with which parameters, the size limit; bit 7: the
  server-role parser ``PyFrameParser(masked=True)`` of the embedded echo
  server instead), ``blob[1]`` seeds the chunking (bit 7: the protocol sent
  its close frame first, so frames arrive in the CLOSING state),
  ``blob[2:]`` is what the peer sent after the handshake. It drives
  :class:`wsx.core.frames.FrameParser` and the whole :class:`wsx.core.protocol.Protocol`.
* :func:`run_handshake`: ``blob[0]`` picks what the client offered
  (subprotocols, permessage-deflate parameters, small head/body limits),
  ``blob[1]`` seeds the chunking, ``blob[2:]`` is the server's answer to the
  upgrade request. It drives :class:`wsx.core.handshake.ClientHandshake`, the
  extension negotiation of the client and a :class:`Protocol` fed the bytes
  that followed the header block.

Allowed outcomes are results and the library's documented errors
(:class:`~wsx.errors.FrameError` from the parser, which ``Protocol`` turns
into an ``("error", exc)`` event; :class:`~wsx.errors.HandshakeError` and its
subclass :class:`~wsx.errors.RequestError` from the handshake). Any other
exception escapes and is a bug. On top of that, oracles raise
:class:`Finding`:

* chunking must not matter: the blob fed in one piece and in arbitrary
  pieces must give the same frames, events, errors (close codes) and
  handshake results;
* when the compiled frame parser (``wsx/_codec.pyx``) is active, it must
  behave exactly like the pure-Python ``PyFrameParser`` after every piece:
  frames, ``buffered``, ``pending_header()``, ``pending_bytes()`` and the
  error's code and message;
* every frame the parser returns obeys RFC 6455 section 5 (opcodes, control
  frame rules, RSV bits, fragmentation sequence, size limits);
* every message the protocol returns obeys its size limit (also after
  decompression), text is ``str``, binary is ``bytes``; after an error event
  the protocol owes a close frame with the error's code and then ignores
  input.

Sans-I/O only: nothing here opens a socket or starts a thread.
"""

from __future__ import annotations

import random
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from wsx.core.conn import Conn
from wsx.core.extensions.permessage_deflate import Deflate, PerMessageDeflate
from wsx.core.frames import RSV1, FrameParser, PyFrameParser, py_encode_frame
from wsx.core.handshake import ClientHandshake, accept_key
from wsx.core.protocol import CLOSED, Protocol
from wsx.core.url import parse_url
from wsx.errors import FrameError, HandshakeError, RequestError
from wsx.process.upgrade import negotiate as _negotiate

__all__ = [
    "Finding",
    "run_frames",
    "run_handshake",
    "chunk_sizes",
    "frame_seeds",
    "handshake_seeds",
    "FRAME_SIZES",
    "KEY",
    "ACCEPT",
]

#: The Sec-WebSocket-Key the handshake target always sends (RFC 6455's example).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = accept_key(KEY)  # "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
_URL = parse_url("ws://127.0.0.1:9/chat")

#: Size limits the frames target picks from (``max_message_size``).
FRAME_SIZES: tuple[int | None, ...] = (None, 0, 1, 7, 125, 126, 1000, 70000)
_WINDOW_BITS = (15, 8, 9, 12)


class Finding(AssertionError):
    """An oracle failed: the input shows a bug that raised no exception by itself."""


# ------------------------------------------------------------------ chunking
def chunk_sizes(n: int, seed: int) -> list[int]:
    """Split ``n`` bytes into pieces, deterministically from ``seed`` (0..255).

    Seed 0 gives one-byte pieces (every boundary) up to 512 bytes, seed 1 a
    single piece, others a mix of tiny and larger pieces.
    """
    if n == 0:
        return [0]
    if seed == 0 and n <= 512:
        return [1] * n
    if seed == 1:
        return [n]
    rng = random.Random(seed * 1_000_003 + n)
    sizes = []
    left = n
    while left > 0:
        r = rng.random()
        size = rng.randint(1, 3) if r < 0.25 else rng.randint(1, 64) if r < 0.85 else left
        size = min(size, left)
        sizes.append(size)
        left -= size
    return sizes


def _pieces(data: bytes, seed: int) -> Iterator[bytes]:
    pos = 0
    for size in chunk_sizes(len(data), seed):
        yield data[pos : pos + size]
        pos += size


# -------------------------------------------------------------- frame target
def _frames_config(b: int) -> tuple[bool, int | None, bool, int, bool]:
    """``(deflate, max_size, server_no_context_takeover, server_max_window_bits, masked)``."""
    return (bool(b & 1), FRAME_SIZES[(b >> 1) & 7], bool(b & 0x10), _WINDOW_BITS[(b >> 5) & 3],
            bool(b & 0x80))


def _parse_all(stream: bytes, seed: int, max_size: int | None, allowed_rsv: int,
               parser_class: Any = None, trace: list[Any] | None = None, masked: bool = False
               ) -> tuple[list[tuple[int, bool, int, bytes]], int | None]:
    """Run a parser over ``stream`` fed in pieces; ``(frames, error code or None)``.

    With ``trace``, records after each piece what the parser's API shows
    (frames returned, ``buffered``, ``pending_header()``, ``pending_bytes()``)
    and the error's code and message, to compare two implementations.
    """
    parser: Any
    if masked:  # the server-role mode (client frames), pure-Python parser only
        parser = PyFrameParser(max_frame_size=max_size, max_message_size=max_size,
                               allowed_rsv=allowed_rsv, masked=True)
    else:
        parser = (parser_class or FrameParser)(max_frame_size=max_size,
                                               max_message_size=max_size, allowed_rsv=allowed_rsv)
    frames: list[tuple[int, bool, int, bytes]] = []
    for piece in _pieces(stream, seed):
        try:
            got = parser.feed(piece)
        except FrameError as exc:
            if exc.code not in (1002, 1009):
                raise Finding(f"parser error with close code {exc.code}: {exc}") from exc
            if not isinstance(exc.frames, list):
                raise Finding(f"exc.frames is {exc.frames!r}") from exc
            frames.extend(tuple(f) for f in exc.frames)
            if trace is not None:
                trace.append(("error", [tuple(f) for f in exc.frames], exc.code, str(exc)))
            return frames, exc.code
        frames.extend(tuple(f) for f in got)
        buffered = parser.buffered
        if buffered < 0 or buffered > len(stream):
            raise Finding(f"buffered count {buffered} for a {len(stream)}-byte stream")
        if trace is not None:
            trace.append(([tuple(f) for f in got], buffered, parser.pending_header(),
                          parser.pending_bytes(), parser.pending_bytes(1)))
    return frames, None


def _check_frame_rules(frames: list[tuple[int, bool, int, bytes]], max_size: int | None,
                       allowed_rsv: int) -> None:
    fragmented = False
    message = 0
    for opcode, fin, rsv, payload in frames:
        if type(payload) is not bytes:
            raise Finding(f"payload of type {type(payload).__name__}")
        if rsv & ~allowed_rsv or rsv & ~0x70:
            raise Finding(f"frame with rsv 0x{rsv:02x} returned (allowed 0x{allowed_rsv:02x})")
        if opcode in (8, 9, 10):
            if not fin or len(payload) > 125 or rsv:
                raise Finding(f"bad control frame returned: {(opcode, fin, rsv, len(payload))}")
            continue
        if opcode not in (0, 1, 2):
            raise Finding(f"frame with reserved opcode {opcode} returned")
        if (opcode == 0) != fragmented:
            raise Finding(f"frame sequence broken: opcode {opcode} while fragmented={fragmented}")
        message = len(payload) + (message if opcode == 0 else 0)
        if max_size is not None and (len(payload) > max_size or message > max_size):
            raise Finding(f"frame or message over the limit {max_size}: {len(payload)}/{message}")
        fragmented = not fin


def _event_key(event: Any) -> Any:
    if type(event) is tuple and event and event[0] == "error":
        return ("error", event[1].code)
    return event


def _run_protocol(stream: bytes, seed: int, max_size: int | None,
                  ext_args: dict[str, Any] | None, closing: bool = False) -> list[Any]:
    extensions = [] if ext_args is None else [PerMessageDeflate(**ext_args)]
    proto = Protocol(max_message_size=max_size, extensions=extensions)
    if closing:  # we sent our close frame first: the peer's frames arrive in CLOSING
        if not proto.send_close(1000, "bye") or not proto.data_to_send().startswith(b"\x88"):
            raise Finding("send_close did not buffer a close frame")
    events: list[Any] = []
    error_code: int | None = None
    for piece in _pieces(stream, seed):
        got = proto.receive_data(piece)
        if type(got) is not list:
            raise Finding(f"receive_data returned {got!r}")
        if proto.data_to_send():
            raise Finding("bytes buffered by receive_data alone (the owed close waits)")
        proto.answer_close()  # the events are handled: the close owed goes now
        out = proto.data_to_send()
        if type(out) is not bytes:
            raise Finding(f"data_to_send returned {type(out).__name__}")
        for event in got:
            _check_event(event, max_size, error_code is not None)
            if type(event) is tuple and event[0] in ("error", "close"):
                if error_code is not None:
                    raise Finding(f"event {event!r} after the connection ended")
                error_code = event[1].code if event[0] == "error" else -1
        if closing and error_code is not None:
            if out:
                raise Finding(f"bytes sent after our close: {out!r}")
            if proto.state is not CLOSED:
                raise Finding(f"state {proto.state!r} after the close handshake or an error")
        elif error_code is not None and error_code > 0 and got and got[-1][0] == "error":
            # The close frame owed for the error goes out now, with its code.
            if len(out) < 8 or out[0] != 0x88:
                raise Finding(f"no close frame sent after error {error_code}: {out!r}")
            key = out[2:6]
            code = struct.unpack("!H", bytes(b ^ key[i] for i, b in enumerate(out[6:8])))[0]
            if code != error_code:
                raise Finding(f"close frame with code {code} after error {error_code}")
            if proto.state is not CLOSED:
                raise Finding(f"state {proto.state!r} after a protocol error")
        events.extend(_event_key(e) for e in got)
    return events


def _check_event(event: Any, max_size: int | None, ended: bool) -> None:
    if ended:
        raise Finding(f"event {event!r} after the input was closed")
    if event in ("ping", "pong"):
        return
    if type(event) is not tuple:
        raise Finding(f"unknown event {event!r}")
    kind = event[0]
    if kind == "text":
        if type(event[1]) is not str:
            raise Finding(f"text event with {type(event[1]).__name__}")
        size = len(event[1].encode("utf-8", "surrogatepass"))
    elif kind in ("binary", "ping", "pong"):
        if type(event[1]) is not bytes:
            raise Finding(f"{kind} event with {type(event[1]).__name__}")
        size = len(event[1])
    elif kind == "close":
        code, reason = event[1], event[2]
        if code is not None and not (1000 <= code <= 4999):
            raise Finding(f"close event with code {code}")
        if type(reason) is not str:
            raise Finding(f"close reason {reason!r}")
        return
    elif kind == "error":
        if not isinstance(event[1], FrameError) or event[1].code not in (1002, 1007, 1009):
            raise Finding(f"bad error event {event!r}")
        return
    else:
        raise Finding(f"unknown event {event!r}")
    if kind in ("text", "binary") and max_size is not None and size > max_size:
        raise Finding(f"{kind} message of {size} bytes over the limit {max_size}")


def kinds_of(events: list[Any]) -> str:
    """The kinds of events (``text``, ``error:1007``...), without their payloads."""
    return ",".join(e if isinstance(e, str) else f"{e[0]}:{e[1]}" if e[0] in ("error", "close")
                    else str(e[0]) for e in events)


_NUMBERS_RE = re.compile(r"0x[0-9a-f]+|\d+|b?'[^']*'|b?\"[^\"]*\"")


_KIND_RE = re.compile(r"[0-9'\"(]")


def _feature(text: str) -> str:
    """An error message with its numbers and quoted values blanked: which check fired."""
    return _NUMBERS_RE.sub("#", text)[:120]


def run_frames(blob: bytes) -> frozenset[str]:
    """The frame target: FrameParser and Protocol over ``blob[2:]`` (see the module doc).

    Returns features of what happened (for the mutation fuzzer's feedback).
    """
    if len(blob) < 2:
        return frozenset()
    deflate, max_size, no_takeover, bits, masked = _frames_config(blob[0])
    seed, closing = blob[1] & 0x7F, bool(blob[1] & 0x80)
    stream = bytes(blob[2:])
    allowed = RSV1 if deflate else 0
    if masked:
        # Server role (the embedded echo server): client frames, masked.
        whole = _parse_all(stream, 1, max_size, allowed, masked=True)
        _check_frame_rules(whole[0], max_size, allowed)
        split = _parse_all(stream, seed, max_size, allowed, masked=True)
        if split != whole:
            raise Finding(f"masked parser: chunking (seed {seed}) changed the result: "
                          f"{_short(split)} != {_short(whole)}")
        return frozenset({f"masked:{whole[1]}:{len(whole[0]) > 1}", f"cfg:{blob[0] & 0x7f}"})

    whole = _parse_all(stream, 1, max_size, allowed)
    _check_frame_rules(whole[0], max_size, allowed)
    compiled_trace: list[Any] = []
    split = _parse_all(stream, seed, max_size, allowed, trace=compiled_trace)
    if split != whole:
        raise Finding(f"parser: chunking (seed {seed}) changed the result: "
                      f"{_short(split)} != {_short(whole)}")
    if FrameParser is not PyFrameParser:
        # The compiled parser must behave exactly like the pure-Python one,
        # piece by piece: frames, buffered, pending header and bytes, errors.
        py_trace: list[Any] = []
        _parse_all(stream, seed, max_size, allowed, PyFrameParser, py_trace)
        if py_trace != compiled_trace:
            step = 0
            while py_trace[step : step + 1] == compiled_trace[step : step + 1]:
                step += 1
            raise Finding(f"parser: compiled and pure-Python parsers differ at piece {step} "
                          f"(seed {seed}): {_short(compiled_trace[step:step + 1])} != "
                          f"{_short(py_trace[step:step + 1])}")

    ext = (dict(server_no_context_takeover=no_takeover, server_max_window_bits=bits)
           if deflate else None)
    events = _run_protocol(stream, 1, max_size, ext, closing)
    if seed != 1:
        split_events = _run_protocol(stream, seed, max_size, ext, closing)
        if split_events != events:
            raise Finding(f"protocol: chunking (seed {seed}) changed the events: "
                          f"{_short(split_events)} != {_short(events)}")
    features = {f"cfg:{blob[0] & 0x7f}", f"parser:{whole[1]}:{len(whole[0]) > 1}",
                f"closing:{closing}:{kinds_of(events[-1:])}"}
    kinds = []
    for event in events:
        kind = event if isinstance(event, str) else f"{event[0]}:{event[1]}" \
            if event[0] in ("error", "close") else f"{event[0]}:{min(len(event[1]), 200) // 50}"
        kinds.append(kind)
        features.add(kind)
    features.add("seq:" + ",".join(kinds[:2]))
    return frozenset(features)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 400 else text[:400] + "..."


# ---------------------------------------------------------- handshake target
_OFFERS: tuple[Deflate | None, ...] = (
    None,
    Deflate(),
    Deflate(client_no_context_takeover=True, server_no_context_takeover=True),
    Deflate(client_max_window_bits=10, server_max_window_bits=12),
    Deflate(client_max_window_bits=None),
    Deflate(client_max_window_bits=8, server_max_window_bits=8),
    Deflate(server_no_context_takeover=True, client_max_window_bits=9),
    Deflate(server_max_window_bits=15),
)
_SUBPROTOCOLS: tuple[tuple[str, ...], ...] = ((), ("chat",), ("chat", "superchat"), ("v2.wsx",))


def _handshake_config(b: int) -> tuple[Deflate | None, tuple[str, ...], bool]:
    return _OFFERS[b & 7], _SUBPROTOCOLS[(b >> 3) & 3], bool(b & 0x20)


def _make_handshake(offer: Deflate | None, protocols: tuple[str, ...], small: bool
                    ) -> ClientHandshake:
    limits = dict(max_line=64, max_headers=6, max_body=40) if small else {}
    return ClientHandshake(_URL, subprotocols=protocols, key=KEY,
                           extensions=[offer.offer()] if offer is not None else None,
                           **limits)  # type: ignore[arg-type]


def _handshake_outcome(data: bytes, seed: int, offer: Deflate | None,
                       protocols: tuple[str, ...], small: bool) -> tuple[Any, Any]:
    """Feed ``data`` in pieces; ``(comparable outcome, response or None)``."""
    hs = _make_handshake(offer, protocols, small)
    response = None
    consumed = 0
    try:
        for piece in _pieces(data, seed):
            consumed += len(piece)
            response = hs.receive_data(piece)
            if response is not None:
                break
        else:
            hs.receive_eof()
            raise Finding("receive_eof returned instead of raising")
    except RequestError as exc:
        if not (0 <= exc.status <= 999) or type(exc.body) is not bytes:
            raise Finding(f"RequestError fields {exc.status!r} {exc.body!r}") from exc
        if len(exc.body) > hs.max_body:
            raise Finding(f"RequestError body of {len(exc.body)} bytes > max_body") from exc
        return ("request_error", exc.status, exc.reason, exc.headers, exc.body), None
    except HandshakeError as exc:
        # Which check failed (the message up to the first value it quotes):
        # the bytes it shows may differ with the chunking.
        return ("handshake_error", type(exc).__name__, _KIND_RE.split(str(exc), 1)[0]), None
    # A response: the parser must refuse more input.
    late_calls: list[Callable[[], object]] = [lambda: hs.receive_data(b"x"), hs.receive_eof]
    for late in late_calls:
        try:
            late()
        except HandshakeError:
            pass
        else:
            raise Finding("the handshake accepted input after its result")
    if response.status != 101:
        raise Finding(f"response with status {response.status}")
    if response.subprotocol is not None and response.subprotocol not in protocols:
        raise Finding(f"subprotocol {response.subprotocol!r} was not offered")
    # What followed the header block: the leftover, then what the transport
    # would hand to the protocol afterwards.
    response.leftover += data[consumed:]
    key = ("response", response.status, response.reason, response.headers.items(),
           response.subprotocol, response.extensions, response.leftover)
    return key, response


def run_handshake(blob: bytes) -> frozenset[str]:
    """The handshake target: ClientHandshake, negotiation, Protocol (see the module doc).

    Returns features of what happened (for the mutation fuzzer's feedback).
    """
    if len(blob) < 2:
        return frozenset()
    offer, protocols, small = _handshake_config(blob[0])
    seed = blob[1]
    data = bytes(blob[2:])
    whole, response = _handshake_outcome(data, 1, offer, protocols, small)
    if seed != 1:
        split, _ = _handshake_outcome(data, seed, offer, protocols, small)
        if split != whole:
            raise Finding(f"handshake: chunking (seed {seed}) changed the outcome: "
                          f"{_short(split)} != {_short(whole)}")
    features = {f"cfg:{blob[0] & 0x3f}", f"outcome:{whole[0]}:{_feature(str(whole[1:3]))}"}
    if response is None:
        if whole[0] == "handshake_error":
            features.add(whole[2])
        return frozenset(features)
    conn = Conn("ws://127.0.0.1:9/chat", compress=offer if offer is not None else False,
                max_message_size=1000)
    try:
        extensions = _negotiate(conn, response)
    except HandshakeError as exc:
        features.add("negotiate:" + _feature(str(exc)))
        return frozenset(features)
    features.add(f"negotiated:{extensions!r}")
    if offer is None and extensions:
        raise Finding(f"extensions {extensions!r} negotiated without an offer")
    proto = Protocol(max_message_size=1000, extensions=extensions)
    for event in proto.receive_data(response.leftover):
        _check_event(event, 1000, False)
        features.add("event:" + (event if isinstance(event, str) else str(event[0])))
    proto.answer_close()
    if proto.state == "open":
        # The negotiated parameters must be usable for sending too.
        proto.send(("text", "hello " * 20))
        proto.send(("fragment", "binary", b"\x00" * 50))
        proto.send(("finish", b"\x01" * 50))
    return frozenset(features)


# --------------------------------------------------------------------- seeds
def _frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
           length_form: int = 0) -> bytes:
    """A server frame; ``length_form`` 0 minimal, 1 forces 16-bit, 2 forces 64-bit."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if length_form == 2 or n >= 65536:
        head += bytes([127]) + n.to_bytes(8, "big")
    elif length_form == 1 or n >= 126:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([n])
    return head + payload


def _deflate(data: bytes, bits: int = 15, final: bool = False) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    if final:
        return c.compress(data) + c.flush(zlib.Z_FINISH)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def frame_seeds() -> list[bytes]:
    """Valid (and a few invalid) server byte streams, as frame-target blobs."""
    text = "héllo wörld ✓ 𝄞".encode()
    long_text = ("ünïcode " * 40).encode()
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    ctx1 = c.compress(b"context takeover " * 4) + c.flush(zlib.Z_SYNC_FLUSH)
    ctx2 = c.compress(b"context takeover " * 4) + c.flush(zlib.Z_SYNC_FLUSH)
    comp = _deflate(long_text)
    streams = [
        _frame(1, b"hello"),
        _frame(2, bytes(range(256))),
        _frame(1, text) + _frame(9, b"ping!") + _frame(10),
        _frame(1, text[:3], fin=False) + _frame(9) + _frame(0, text[3:9], fin=False)
        + _frame(0, text[9:]),
        _frame(2, b"x" * 300, length_form=1) + _frame(2, b"y" * 10, length_form=2),
        _frame(1, long_text),
        _frame(8, struct.pack("!H", 1000) + b"bye") + _frame(1, b"after close"),
        _frame(8) + _frame(8, struct.pack("!H", 4000)),
        _frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
        _frame(2, b"\x00" * 70000),
        _frame(1, comp, rsv=RSV1),
        _frame(1, comp[:5], fin=False, rsv=RSV1) + _frame(10, b"p")
        + _frame(0, comp[5:], fin=True),
        _frame(2, ctx1[:-4], rsv=RSV1) + _frame(2, ctx2[:-4], rsv=RSV1),
        _frame(2, _deflate(b"final block", final=True), rsv=RSV1) + _frame(1, b"plain"),
        _frame(2, b"", rsv=RSV1) + _frame(2, b"\x00", rsv=RSV1),
        _frame(1, _deflate(b"\x00" * 60000), rsv=RSV1),
        _frame(1, _deflate(b"\xff\xfe invalid utf-8"), rsv=RSV1),
        _frame(2, b"a", fin=False) + _frame(0, b"b", fin=False) + _frame(0, b"c"),
        _frame(9, b"x" * 125) + _frame(10, b"y" * 125),
    ]
    blobs = []
    for i, stream in enumerate(streams):
        deflate_cfg = 0x01 if i >= 10 else 0x00
        blobs.append(bytes([deflate_cfg, i % 7 + 1]) + stream)
        blobs.append(bytes([deflate_cfg | 0x08 | ((i & 3) << 5), 0]) + stream[:600])
        if i % 3 == 0:  # CLOSING: our close frame went out first
            blobs.append(bytes([deflate_cfg, 0x80 | (i % 5)]) + stream[:600])
    # Server role: masked client frames, as the embedded echo server reads them.
    key = b"\x37\xfa\x21\x3d"
    client = [
        py_encode_frame(1, b"Hello", mask_key=key),
        py_encode_frame(2, bytes(range(200)), mask_key=key)
        + py_encode_frame(9, b"ping", mask_key=key),
        py_encode_frame(1, text[:4], fin=False, mask_key=key)
        + py_encode_frame(0, text[4:], mask_key=key)
        + py_encode_frame(8, struct.pack("!H", 1001), mask_key=key),
        py_encode_frame(2, b"z" * 70000, mask_key=key)[:3000],
    ]
    for i, stream in enumerate(client):
        blobs.append(bytes([0x80 | (i % 2), i + 2]) + stream)
        blobs.append(bytes([0x80 | 0x0A, 0]) + stream[:400])
    return blobs


def _response(status: str = "101 Switching Protocols", headers: list[tuple[str, str]] | None = None,
              body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    if headers is None:
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Accept", ACCEPT)]
    head = f"{version} {status}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return head.encode("latin-1") + body


def handshake_seeds() -> list[bytes]:
    """Valid and rejected server answers, as handshake-target blobs."""
    base = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)]
    pmd = "Sec-WebSocket-Extensions"
    answers: list[tuple[int, bytes]] = [
        (0x00, _response()),
        (0x00, _response(body=_frame(1, b"early frame") + _frame(9))),
        (0x08, _response(headers=base + [("Sec-WebSocket-Protocol", "chat")])),
        (0x01, _response(headers=base + [(pmd, "permessage-deflate")])),
        (0x01, _response(headers=base + [(pmd, "permessage-deflate; client_max_window_bits=10;"
                                               " server_max_window_bits=\"12\"")])),
        (0x02, _response(headers=base + [(pmd, "permessage-deflate; server_no_context_takeover;"
                                               " client_no_context_takeover")])),
        (0x03, _response(headers=base + [(pmd, "permessage-deflate; server_max_window_bits=12;"
                                               " client_max_window_bits=9")],
                         body=_frame(1, _deflate(b"compressed hello", 12), rsv=RSV1))),
        (0x05, _response(headers=base + [(pmd, "permessage-deflate; server_max_window_bits=8;"
                                               " client_max_window_bits=8")])),
        (0x01, _response(headers=base + [(pmd, "permessage-deflate, permessage-deflate")])),
        (0x00, _response("404 Not Found", [("Content-Length", "9")], b"not here!")),
        (0x00, _response("500 Oops", [("Transfer-Encoding", "chunked")],
                         b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n")),
        (0x20, _response("302 Found", [("Location", "/x"), ("Content-Length", "100")],
                         b"z" * 100)),
        (0x00, _response("200 OK", [("Connection", "close")], b"body until eof")),
        (0x00, _response("101 Switching Protocols", version="HTTP/1.0")),
        (0x00, _response("204 No Content", [("Content-Length", "5")])),
        (0x10, _response(headers=[("upgrade", "WebSocket"), ("connection", "keep-alive, Upgrade"),
                                  ("sec-websocket-accept", ACCEPT),
                                  ("Sec-WebSocket-Protocol", "superchat")])),
        (0x00, b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n"
               b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\n\n"),
    ]
    return [bytes([cfg, i % 9 + 1]) + data for i, (cfg, data) in enumerate(answers)] + [
        bytes([cfg | 0x20, 0]) + data for cfg, data in answers[:6]
    ]
