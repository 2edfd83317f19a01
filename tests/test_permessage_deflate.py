"""permessage-deflate (RFC 7692): configuration, negotiation, codec, limits, interop.

Unit tests drive :class:`wsx.core.extensions.permessage_deflate.PerMessageDeflate`
through :class:`wsx.core.protocol.Protocol` with recorded (unmasked) server frames
and unmasked client frames; integration tests talk to a ``websockets`` server
over real sockets; handshake rejections use a raw server.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import time
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsx
from conftest import accept_response, read_request, server_frame
from wsx.core.extensions.permessage_deflate import Deflate, PerMessageDeflate
from wsx.core.frames import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, RSV1, RSV2
from wsx.core.protocol import Protocol
from wsx.errors import CloseCode, FrameError, HandshakeError

TAIL = b"\x00\x00\xff\xff"
MiB = 1024 * 1024


# ------------------------------------------------------------------ helpers

def sent(proto: Any, frame: Any) -> bytes:
    """``proto.send(frame)`` and the bytes it buffered."""
    proto.send(frame)
    out: bytes = proto.data_to_send()
    return out

def h(text: str) -> bytes:
    return bytes.fromhex(text)


def unmask(frame: bytes) -> bytes:
    """A masked client frame as the same frame unmasked (server-side view)."""
    b0, b1 = frame[0], frame[1]
    assert b1 & 0x80, "client frames are masked"
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        n = int.from_bytes(frame[2:4], "big")
        pos = 4
    elif n == 127:
        n = int.from_bytes(frame[2:10], "big")
        pos = 10
    key = frame[pos : pos + 4]
    payload = frame[pos + 4 :]
    assert len(payload) == n
    plain = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else _xor(payload, key)
    return bytes([b0, b1 & 0x7F]) + frame[2:pos] + plain


def _xor(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def split_frame(frame: bytes) -> tuple[int, bool, int, bytes]:
    """An unmasked frame as ``(opcode, fin, rsv, payload)``."""
    b0, n = frame[0], frame[1] & 0x7F
    pos = 2
    if n == 126:
        pos = 4
    elif n == 127:
        pos = 10
    return b0 & 0x0F, bool(b0 & 0x80), b0 & 0x70, frame[pos:]


def deflate_message(comp: Any, data: bytes) -> bytes:
    """What a compliant server sends for one message: sync-flushed, tail removed."""
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


# ------------------------------------------------------ configuration / offer
def test_default_offer_and_conn_default():
    assert Deflate().offer() == "permessage-deflate; client_max_window_bits"
    conn = wsx.Conn("ws://example.com/")
    assert isinstance(conn.compress, Deflate)
    assert conn.compress.offer() == "permessage-deflate; client_max_window_bits"
    assert wsx.Conn("ws://example.com/", compress=False).compress is None
    custom = Deflate(threshold=0)
    assert wsx.Conn("ws://example.com/", compress=custom).compress is custom
    with pytest.raises(TypeError):
        wsx.Conn("ws://example.com/", compress="deflate")


def test_offer_with_all_four_parameters():
    d = Deflate(client_no_context_takeover=True, server_no_context_takeover=True,
                client_max_window_bits=10, server_max_window_bits=11)
    assert d.offer() == ("permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
                         "client_max_window_bits=10; server_max_window_bits=11")
    assert Deflate(client_max_window_bits=None).offer() == "permessage-deflate"


@pytest.mark.parametrize("kwargs", [
    {"client_max_window_bits": 7}, {"client_max_window_bits": 16}, {"client_max_window_bits": False},
    {"client_max_window_bits": "10"}, {"server_max_window_bits": True}, {"server_max_window_bits": 16},
    {"server_max_window_bits": 7}, {"threshold": -1}, {"threshold": 1.5}, {"level": 10},
    {"mem_level": 0}, {"mem_level": 10},
])
def test_bad_configuration_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        Deflate(**kwargs)


# ------------------------------------------------------- response validation
@pytest.mark.parametrize("deflate, params, expected", [
    (Deflate(), [], {"server_no_context_takeover": False, "client_no_context_takeover": False,
                     "server_max_window_bits": 15, "client_max_window_bits": 15}),
    (Deflate(), [("server_no_context_takeover", None), ("client_no_context_takeover", None),
                 ("server_max_window_bits", "10"), ("client_max_window_bits", "9")],
     {"server_no_context_takeover": True, "client_no_context_takeover": True,
      "server_max_window_bits": 10, "client_max_window_bits": 9}),
    # The client may reset its own context even if the server did not ask.
    (Deflate(client_no_context_takeover=True), [],
     {"client_no_context_takeover": True, "server_no_context_takeover": False}),
    (Deflate(server_no_context_takeover=True), [("server_no_context_takeover", None)],
     {"server_no_context_takeover": True}),
    # Offered a cap: the server may answer less, or nothing (the cap then holds).
    (Deflate(client_max_window_bits=10), [], {"client_max_window_bits": 10}),
    (Deflate(client_max_window_bits=10), [("client_max_window_bits", "8")], {"client_max_window_bits": 8}),
    (Deflate(server_max_window_bits=12), [("server_max_window_bits", "12")], {"server_max_window_bits": 12}),
    (Deflate(server_max_window_bits=12), [("server_max_window_bits", "9")], {"server_max_window_bits": 9}),
    # A server may limit its own window unasked.
    (Deflate(), [("server_max_window_bits", "8")], {"server_max_window_bits": 8}),
])
def test_accept_valid_responses(deflate, params, expected):
    ext = deflate.accept(params)
    assert isinstance(ext, PerMessageDeflate)
    for name, value in expected.items():
        assert getattr(ext, name) == value, name
    assert ext.rsv_mask == RSV1 and ext.name == "permessage-deflate"


def test_response_params_and_repr():
    ext = Deflate().accept([("server_no_context_takeover", None), ("client_max_window_bits", "10")])
    assert ext.response_params() == [("server_no_context_takeover", None), ("client_max_window_bits", "10")]
    assert "client_max_window_bits=10" in repr(ext)
    assert Deflate().accept([]).response_params() == []


BAD_RESPONSES = [
    (Deflate(), [("foo", None)], "'foo'"),
    (Deflate(), [("server_no_context_takeover", None)] * 2, "repeated"),
    (Deflate(), [("client_max_window_bits", "10"), ("client_max_window_bits", "10")], "repeated"),
    (Deflate(), [("server_no_context_takeover", "1")], "'1'"),
    (Deflate(), [("client_no_context_takeover", "x")], "'x'"),
    (Deflate(), [("server_max_window_bits", "7")], "'7'"),
    (Deflate(), [("server_max_window_bits", "16")], "'16'"),
    (Deflate(), [("server_max_window_bits", "0")], "'0'"),
    (Deflate(), [("server_max_window_bits", "08")], "'08'"),
    (Deflate(), [("server_max_window_bits", "abc")], "'abc'"),
    (Deflate(), [("server_max_window_bits", "\u00b2")], "server_max_window_bits"),
    (Deflate(), [("server_max_window_bits", None)], "None"),
    (Deflate(), [("client_max_window_bits", None)], "client_max_window_bits"),
    (Deflate(), [("client_max_window_bits", "16")], "'16'"),
    (Deflate(), [("client_max_window_bits", "-9")], "'-9'"),
    (Deflate(client_max_window_bits=None), [("client_max_window_bits", "10")], "not offered"),
    (Deflate(client_max_window_bits=10), [("client_max_window_bits", "11")], "11"),
    (Deflate(server_max_window_bits=10), [("server_max_window_bits", "12")], "12"),
    (Deflate(server_max_window_bits=10), [], "server_max_window_bits=10"),
    (Deflate(server_no_context_takeover=True), [], "server_no_context_takeover"),
]


@pytest.mark.parametrize("deflate, params, needle", BAD_RESPONSES)
def test_accept_rejects_bad_responses(deflate, params, needle):
    with pytest.raises(HandshakeError) as info:
        deflate.accept(params)
    assert needle in str(info.value)
    assert "permessage-deflate" in str(info.value)


# ------------------------------------------------ RFC 7692 section 7.2.3 frames
def receive(proto: Protocol, *frames: bytes, chunk: int | None = None) -> list[Any]:
    data = b"".join(frames)
    if chunk is None:
        return proto.receive_data(data)
    events: list[Any] = []
    for i in range(0, len(data), chunk):
        events += proto.receive_data(data[i : i + chunk])
    return events


def pmd_proto(max_message_size: int | None = 16 * MiB, **kw: Any) -> tuple[PerMessageDeflate, Protocol]:
    ext = PerMessageDeflate(**kw)
    return ext, Protocol(max_message_size=max_message_size, extensions=[ext])


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_rfc_7_2_3_1_hello_decode(chunk):
    _, proto = pmd_proto()
    assert receive(proto, h("c107f248cdc9c90700"), chunk=chunk) == [("text", "Hello")]


def test_rfc_7_2_3_1_hello_encode():
    _, proto = pmd_proto(threshold=0)
    assert unmask(sent(proto, ("text", "Hello"))) == h("c107f248cdc9c90700")
    ext = PerMessageDeflate(threshold=0)
    assert ext.encode(OP_TEXT, True, 0, b"Hello") == (RSV1, h("f248cdc9c90700"))


@pytest.mark.parametrize("chunk", [None, 1])
def test_rfc_7_2_3_2_fragmented_decode(chunk):
    _, proto = pmd_proto()
    assert receive(proto, h("4103f248cd"), h("8004c9c90700"), chunk=chunk) == [("text", "Hello")]


def test_rfc_7_2_3_3_context_takeover_encode_and_decode():
    _, proto = pmd_proto(threshold=0)
    assert unmask(sent(proto, ("text", "Hello"))) == h("c107f248cdc9c90700")
    assert unmask(sent(proto, ("text", "Hello"))) == h("c105f200110000")
    _, proto = pmd_proto()
    assert receive(proto, h("c107f248cdc9c90700"), h("c105f200110000")) == [("text", "Hello")] * 2


def test_rfc_7_2_3_3_without_context_takeover():
    # client_no_context_takeover: each message compressed independently.
    _, proto = pmd_proto(threshold=0, client_no_context_takeover=True)
    assert unmask(sent(proto, ("text", "Hello"))) == h("c107f248cdc9c90700")
    assert unmask(sent(proto, ("text", "Hello"))) == h("c107f248cdc9c90700")
    # server_no_context_takeover: the decoder starts afresh, so a message
    # referring to the previous one cannot be decoded (invalid distance).
    _, proto = pmd_proto(server_no_context_takeover=True)
    assert receive(proto, h("c107f248cdc9c90700"), h("c107f248cdc9c90700")) == [("text", "Hello")] * 2
    _, proto = pmd_proto(server_no_context_takeover=True)
    events = receive(proto, h("c107f248cdc9c90700"), h("c105f200110000"))
    assert events[0] == ("text", "Hello")
    assert events[1][0] == "error" and events[1][1].code == CloseCode.INVALID_DATA


def test_rfc_7_2_3_4_stored_block_decode():
    _, proto = pmd_proto()
    assert receive(proto, h("c10b0005 00faff48656c6c6f00".replace(" ", ""))) == [("text", "Hello")]


def test_rfc_7_2_3_5_bfinal_decode():
    _, proto = pmd_proto()
    assert receive(proto, h("c108f348cdc9c9070000")) == [("text", "Hello")]


def test_bfinal_message_followed_by_more_messages():
    # After a BFINAL block the stream is over: the next messages start new
    # DEFLATE streams and must not decode as empty (regression).
    _, proto = pmd_proto()
    events = receive(proto, h("c108f348cdc9c9070000"), h("c107f248cdc9c90700"),
                     h("c108f348cdc9c9070000"), h("c107f248cdc9c90700"))
    assert events == [("text", "Hello")] * 4


def test_data_after_the_final_block_is_invalid():
    _, proto = pmd_proto()
    # BFINAL block in the first fragment, more compressed data in the second.
    events = receive(proto, h("4107f348cdc9c90700"), h("8007f248cdc9c90700"))
    assert events[0][0] == "error" and events[0][1].code == CloseCode.INVALID_DATA


def test_rfc_7_2_3_6_two_deflate_blocks_decode():
    _, proto = pmd_proto()
    assert receive(proto, h("c10df248050000 00ffffcac9c90700".replace(" ", ""))) == [("text", "Hello")]


def test_binary_and_mixed_compressed_uncompressed_messages():
    _, proto = pmd_proto()
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    events = receive(
        proto,
        server_frame(OP_BINARY, deflate_message(comp, b"\x00\x01" * 100), rsv=RSV1),
        server_frame(OP_TEXT, b"plain"),  # uncompressed message in between
        server_frame(OP_BINARY, deflate_message(comp, b"\x00\x01" * 100), rsv=RSV1),
        server_frame(OP_TEXT, b"pla", fin=False), server_frame(OP_CONTINUATION, b"in"),
    )
    assert events == [("binary", b"\x00\x01" * 100), ("text", "plain"),
                      ("binary", b"\x00\x01" * 100), ("text", "plain")]


def test_empty_compressed_messages():
    # Compliant peers send b"\x00" for an empty message; a bare empty payload
    # is tolerated and must not disturb the inflater for the next message.
    _, proto = pmd_proto()
    events = receive(proto, server_frame(OP_TEXT, b"\x00", rsv=RSV1), server_frame(OP_TEXT, b"", rsv=RSV1),
                     server_frame(OP_BINARY, b"", rsv=RSV1, fin=False), server_frame(OP_CONTINUATION, b""),
                     h("c107f248cdc9c90700"), h("c105f200110000"))
    assert events == [("text", ""), ("text", ""), ("binary", b""), ("text", "Hello"), ("text", "Hello")]


def test_encode_empty_messages_and_empty_final_fragment():
    _, proto = pmd_proto(threshold=0)
    server = zlib.decompressobj(wbits=-15)
    frames = [split_frame(unmask(sent(proto, f))) for f in
              [("text", ""), ("fragment", "binary", b"abc" * 20), ("finish", b""), ("text", "Hello")]]
    assert [f[2] for f in frames] == [RSV1, RSV1, 0, RSV1]
    assert all(f[3] for f in frames), "a compressed frame with an empty payload cannot be decoded"
    assert server.decompress(frames[0][3] + TAIL) == b""
    assert server.decompress(frames[1][3] + frames[2][3] + TAIL) == b"abc" * 20
    assert server.decompress(frames[3][3] + TAIL) == b"Hello"


# --------------------------------------------------------- threshold / sending
def test_threshold_default_and_configurable():
    _, proto = pmd_proto()  # PerMessageDeflate default threshold: 32
    assert Deflate().threshold == 32 and Deflate().accept([]).threshold == 32
    small = split_frame(unmask(sent(proto, ("text", "x" * 31))))
    assert small == (OP_TEXT, True, 0, b"x" * 31)
    big = split_frame(unmask(sent(proto, ("text", "x" * 32))))
    assert big[2] == RSV1 and zlib.decompressobj(wbits=-15).decompress(big[3] + TAIL) == b"x" * 32
    ext = Deflate(threshold=1000).accept([])
    proto = Protocol(extensions=[ext])
    assert split_frame(unmask(sent(proto, ("binary", b"y" * 999))))[2] == 0
    assert split_frame(unmask(sent(proto, ("binary", b"y" * 1000))))[2] == RSV1


def test_fragmented_message_compressed_as_one_stream():
    _, proto = pmd_proto()
    # Even a short first fragment: the message length is not known yet.
    parts = [b"a", b"abcabcabc" * 50, b"", b"abcabcabc" * 50]
    frames = [sent(proto, ("fragment", "binary", parts[0]))]
    frames += [sent(proto, ("continuation", p)) for p in parts[1:-1]]
    frames.append(sent(proto, ("finish", parts[-1])))
    frames = [split_frame(unmask(f)) for f in frames]
    assert [f[0] for f in frames] == [OP_BINARY, 0, 0, 0]
    assert [f[1] for f in frames] == [False, False, False, True]
    assert [f[2] for f in frames] == [RSV1, 0, 0, 0]  # RSV1 on the first frame only
    stream = b"".join(f[3] for f in frames)
    assert not stream.endswith(TAIL)
    assert zlib.decompressobj(wbits=-15).decompress(stream + TAIL) == b"".join(parts)
    assert len(stream) < 100  # one stream: the second half refers to the first


def test_control_frames_never_compressed():
    _, proto = pmd_proto(threshold=0)
    assert split_frame(unmask(sent(proto, ("ping", b"p" * 100)))) == (OP_PING, True, 0, b"p" * 100)


def test_client_max_window_bits_8_sends_uncompressed():
    ext = Deflate().accept([("client_max_window_bits", "8")])
    assert ext.client_max_window_bits == 8
    proto = Protocol(extensions=[ext])
    msg = b"z" * 5000
    assert split_frame(unmask(sent(proto, ("binary", msg)))) == (OP_BINARY, True, 0, msg)
    assert split_frame(unmask(sent(proto, ("fragment", "text", "ab" * 40))))[2] == 0
    assert split_frame(unmask(sent(proto, ("finish", "cd" * 40))))[2] == 0


def test_server_max_window_bits_8_decodes():
    # zlib can't compress with a 256-byte window; messages of at most 256
    # bytes compressed with a 512-byte one only refer 256 bytes back.
    _, proto = pmd_proto(server_max_window_bits=8, server_no_context_takeover=True)
    for data in (b"q", b"abc" * 33, bytes(range(128)) * 2):
        payload = deflate_message(zlib.compressobj(9, zlib.DEFLATED, -9), data)
        assert proto.receive_data(server_frame(OP_BINARY, payload, rsv=RSV1)) == [("binary", data)]


@pytest.mark.parametrize("bits", range(9, 16))
def test_encoder_respects_client_window(bits):
    # Data with repeats just beyond the window: decoding with exactly the
    # negotiated window would fail with "invalid distance too far back" if
    # the encoder used a larger one.
    rnd = random.Random(bits)
    block = bytes(rnd.getrandbits(8) for _ in range((1 << bits) + 64))
    msg = block * 3
    ext = Deflate().accept([("client_max_window_bits", str(bits))])
    proto = Protocol(extensions=[ext])
    _, _, rsv, payload = split_frame(unmask(sent(proto, ("binary", msg))))
    assert rsv == RSV1
    assert zlib.decompressobj(wbits=-bits).decompress(payload + TAIL) == msg


# ------------------------------------------------------------ protocol errors
def _error_code(events: list[Any]) -> int:
    assert events and events[-1][0] == "error", events
    assert isinstance(events[-1][1], FrameError)
    return events[-1][1].code


@pytest.mark.parametrize("frames", [
    [server_frame(OP_PING, b"x", rsv=RSV1)],
    [server_frame(0xA, b"", rsv=RSV1)],
    [server_frame(0x8, b"\x03\xe8", rsv=RSV1)],
    # RSV1 on a continuation frame (compressed or not message)
    [h("4103f248cd"), server_frame(OP_CONTINUATION, h("c9c90700"), rsv=RSV1)],
    [server_frame(OP_TEXT, b"He", fin=False), server_frame(OP_CONTINUATION, b"llo", rsv=RSV1)],
    # RSV2 is not owned by permessage-deflate
    [server_frame(OP_TEXT, b"Hello", rsv=RSV2)],
])
def test_protocol_errors_1002_with_extension(frames):
    _, proto = pmd_proto()
    events = receive(proto, *frames)
    assert _error_code(events) == CloseCode.PROTOCOL_ERROR
    # A close frame with 1002 is owed to the peer.
    assert proto.answer_close()
    out = proto.data_to_send()
    assert proto.state == "closed"
    assert out[0] == 0x88 and _unmask_payload(out)[:2] == (1002).to_bytes(2, "big")


def _unmask_payload(frame: bytes) -> bytes:
    return split_frame(unmask(frame))[3]


def test_rsv1_without_negotiated_extension_is_a_protocol_error():
    proto = Protocol()
    assert _error_code(proto.receive_data(h("c107f248cdc9c90700"))) == CloseCode.PROTOCOL_ERROR


def test_corrupt_compressed_data_fails_the_connection():
    _, proto = pmd_proto()
    events = proto.receive_data(server_frame(OP_TEXT, b"\xff\xff\xff\xff", rsv=RSV1))
    assert _error_code(events) == CloseCode.INVALID_DATA
    # Valid deflate, invalid UTF-8 after inflating: 1007 too.
    _, proto = pmd_proto()
    bad = deflate_message(zlib.compressobj(6, zlib.DEFLATED, -15), b"\xc3\x28" * 40)
    assert _error_code(proto.receive_data(server_frame(OP_TEXT, bad, rsv=RSV1))) == CloseCode.INVALID_DATA


# ------------------------------------------------------------- size limits
def _zeros_stream(total: int, chunk: int = MiB) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero = bytes(chunk)
    parts = [comp.compress(zero) for _ in range(total // chunk)]
    parts.append(comp.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    return data[:-4]


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _zeros_stream(100 * 1000 * 1000)
    assert len(data) < 200_000  # ~100 KB that inflates to 100 MB
    return data


def test_decompression_bomb_fails_with_1009_and_small_peak_memory(bomb):
    frame = server_frame(OP_BINARY, bomb, rsv=RSV1)
    ext, proto = pmd_proto(max_message_size=MiB)
    tracemalloc.start()
    try:
        events = proto.receive_data(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _error_code(events) == CloseCode.MESSAGE_TOO_BIG
    assert ext._decoded <= MiB + 1  # at most one limit's worth of output
    assert peak < 8 * MiB, f"peak {peak} bytes while inflating a 100 MB bomb"
    proto.answer_close()
    assert proto.close_sent == (1009, "")


def test_fragmented_decompression_bomb(bomb):
    ext, proto = pmd_proto(max_message_size=MiB)
    step = 4096
    pieces = [bomb[i : i + step] for i in range(0, len(bomb), step)]
    frames = [server_frame(OP_BINARY, pieces[0], fin=False, rsv=RSV1)]
    frames += [server_frame(OP_CONTINUATION, p, fin=i == len(pieces) - 2) for i, p in enumerate(pieces[1:])]
    tracemalloc.start()
    try:
        events: list[Any] = []
        for f in frames:
            events += proto.receive_data(f)
            if events:
                break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _error_code(events) == CloseCode.MESSAGE_TOO_BIG
    assert ext._decoded <= MiB + 1
    assert peak < 8 * MiB


@pytest.mark.parametrize("fragmented", [False, True])
def test_limit_applies_to_decompressed_size_exactly(fragmented):
    limit = 10_000
    for size, ok in ((limit, True), (limit + 1, False)):
        data = b"a" * size
        payload = deflate_message(zlib.compressobj(6, zlib.DEFLATED, -15), data)
        assert len(payload) < 100
        if fragmented:
            frames = [server_frame(OP_BINARY, payload[:5], fin=False, rsv=RSV1),
                      server_frame(OP_CONTINUATION, payload[5:])]
        else:
            frames = [server_frame(OP_BINARY, payload, rsv=RSV1)]
        _, proto = pmd_proto(max_message_size=limit)
        events = receive(proto, *frames)
        if ok:
            assert events == [("binary", data)]
        else:
            assert _error_code(events) == CloseCode.MESSAGE_TOO_BIG


def test_no_limit():
    _, proto = pmd_proto(max_message_size=None)
    payload = _zeros_stream(20 * MiB)
    assert proto.receive_data(server_frame(OP_BINARY, payload, rsv=RSV1)) == [("binary", bytes(20 * MiB))]


# --------------------------------------------------- round trips (hypothesis)
CHUNKS = [b"Hello, world! ", b"\x00" * 64, bytes(range(256)), "héllo ✓ ".encode(), b"abcabcabcabc"]


@st.composite
def messages(draw: Any) -> list[tuple[bool, bytes, list[int]]]:
    """``(is_text, payload, fragment cut points)``, with repeats across messages."""
    out: list[tuple[bool, bytes, list[int]]] = []
    for _ in range(draw(st.integers(1, 6))):
        if out and draw(st.booleans()):
            is_text, data, _ = draw(st.sampled_from(out))  # repeat an earlier message
        else:
            is_text = draw(st.booleans())
            if is_text:
                data = draw(st.text(max_size=300)).encode()
                data += b"".join(draw(st.lists(st.sampled_from(CHUNKS[:1] + CHUNKS[3:]), max_size=30)))
            else:
                data = draw(st.binary(max_size=300))
                data += b"".join(draw(st.lists(st.sampled_from(CHUNKS), max_size=30)))
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
        out.append((is_text, data, cuts))
    return out


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=messages(), bits=st.integers(8, 15), no_takeover=st.booleans(), threshold=st.sampled_from([0, 32, 200]))
def test_roundtrip_client_to_server(msgs, bits, no_takeover, threshold):
    """Client encoder → a server's inflater configured with the negotiated client parameters."""
    params = [("client_max_window_bits", str(bits))]
    if no_takeover:
        params.append(("client_no_context_takeover", None))
    ext = Deflate(threshold=threshold).accept(params)
    proto = Protocol(extensions=[ext])
    inflater = None
    for is_text, data, cuts in msgs:
        parts = pieces(data, cuts)
        kind = "text" if is_text else "binary"
        if len(parts) == 1:
            wire = [sent(proto, (kind, data if not is_text else data.decode()))]
        else:
            wire = [sent(proto, ("fragment", kind, parts[0]))]
            wire += [sent(proto, ("continuation", p)) for p in parts[1:-1]]
            wire.append(sent(proto, ("finish", parts[-1])))
        frames = [split_frame(unmask(w)) for w in wire]
        assert frames[0][0] == (OP_TEXT if is_text else OP_BINARY)
        assert all(f[0] == OP_CONTINUATION and f[2] == 0 for f in frames[1:])
        assert [f[1] for f in frames] == [False] * (len(frames) - 1) + [True]
        stream = b"".join(f[3] for f in frames)
        compressed = frames[0][2] == RSV1
        if bits == 8 or (len(frames) == 1 and len(data) < threshold):
            assert not compressed
        else:
            assert compressed
        if not compressed:
            assert stream == data
            continue
        if inflater is None or no_takeover:
            # Exactly the negotiated window: a farther reference fails to inflate.
            inflater = zlib.decompressobj(wbits=-bits)
        assert inflater.decompress(stream + TAIL) == data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=messages(), bits=st.integers(9, 15), no_takeover=st.booleans(),
       compress_flags=st.lists(st.booleans(), min_size=6, max_size=6), chunk=st.sampled_from([None, 1, 7, 100]))
def test_roundtrip_server_to_client(msgs, bits, no_takeover, compress_flags, chunk):
    """A server's compressor (negotiated parameters) → client Protocol + PerMessageDeflate."""
    params = [("server_max_window_bits", str(bits))]
    if no_takeover:
        params.append(("server_no_context_takeover", None))
    ext = Deflate().accept(params)
    proto = Protocol(extensions=[ext])
    comp = None
    wire = []
    expected = []
    for (is_text, data, cuts), compress in zip(msgs, compress_flags, strict=False):
        if compress:
            if comp is None or no_takeover:
                comp = zlib.compressobj(6, zlib.DEFLATED, -bits)
            payload = deflate_message(comp, data)
        else:
            payload = data
        parts = pieces(payload, cuts if cuts and cuts[-1] <= len(payload) else [])
        opcode = OP_TEXT if is_text else OP_BINARY
        for i, p in enumerate(parts):
            wire.append(server_frame(opcode if i == 0 else OP_CONTINUATION, p, fin=i == len(parts) - 1,
                                     rsv=RSV1 if compress and i == 0 else 0))
        expected.append(("text", data.decode()) if is_text else ("binary", data))
    assert receive(proto, *wire, chunk=chunk) == expected


# ------------------------------------------------ integration (real sockets)
class Collect(wsx.WebSocket):
    def handle_frame(self, frame, state):
        state.append(frame)
        return ("ok", state)


def wait_for(client: Any, n: int, timeout: float = 20.0) -> list[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = wsx.sys.get_state(client)
        if len(state) >= n:
            return state
        time.sleep(0.01)
    raise AssertionError(f"only {len(wsx.sys.get_state(client))} of {n} messages received")


def _compressible_text(size: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "websocket", "deflate", "frame", "é", "✓"]
    out: list[str] = []
    n = 0
    while n < size:
        w = rnd.choice(words)
        out.append(w)
        n += len(w.encode()) + 1
    return " ".join(out).encode()[:size].decode("utf-8", "ignore")


def exchange(client: Any) -> tuple[int, int]:
    """Send a mix of messages; check the echoes. Returns (raw bytes, compressible bytes)."""
    big_text = _compressible_text(MiB)
    big_random = os.urandom(MiB)
    sends: list[tuple[list[Any], Any]] = [
        ([("text", "Hello")], ("text", "Hello")),
        ([("text", "")], ("text", "")),
        ([("binary", b"\x00\x01\x02")], ("binary", b"\x00\x01\x02")),
        ([("text", _compressible_text(1000, 2))], ("text", _compressible_text(1000, 2))),
        ([("binary", big_random[:70_000])], ("binary", big_random[:70_000])),
        ([("fragment", "text", "frag"), ("continuation", "mented "), ("finish", "héllo ✓" * 100)],
         ("text", "fragmented " + "héllo ✓" * 100)),
        ([("fragment", "binary", b"\x00" * 10), ("finish", b"\x01" * 10_000)],
         ("binary", b"\x00" * 10 + b"\x01" * 10_000)),
        ([("binary", big_random)], ("binary", big_random)),
        ([("text", big_text)], ("text", big_text)),
        ([("text", big_text)], ("text", big_text)),  # again: context takeover (or not)
    ]
    for frames, _ in sends:
        for f in frames:
            wsx.send_frame(client, f)
    got = wait_for(client, len(sends))
    assert len(got) == len(sends)
    for (_, want), have in zip(sends, got, strict=True):
        assert have == want, (have[0], len(have[1]), want[0], len(want[1]))
    raw = sum(len(w[1].encode() if isinstance(w[1], str) else w[1]) for _, w in sends)
    return raw, 2 * len(big_text.encode())


def _factory(**kw: Any) -> Any:
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    return ServerPerMessageDeflateFactory(**kw)


INTEROP = [
    # (id, server kwargs (factory kwargs or None: websockets defaults), client Deflate kwargs, expected params)
    ("defaults", None, {}, [("server_max_window_bits", "12"), ("client_max_window_bits", "12")]),
    ("plain-factory", {}, {}, []),
    ("server_no_context_takeover", {"server_no_context_takeover": True}, {},
     [("server_no_context_takeover", None)]),
    ("client_no_context_takeover-by-server", {"client_no_context_takeover": True}, {},
     [("client_no_context_takeover", None)]),
    ("client_no_context_takeover-by-client", {}, {"client_no_context_takeover": True},
     [("client_no_context_takeover", None)]),
    ("server_no_context_takeover-by-client", {}, {"server_no_context_takeover": True},
     [("server_no_context_takeover", None)]),
    ("server_max_window_bits=10-by-server", {"server_max_window_bits": 10}, {},
     [("server_max_window_bits", "10")]),
    ("server_max_window_bits=10-by-client", {}, {"server_max_window_bits": 10},
     [("server_max_window_bits", "10")]),
    ("all-four", {"server_no_context_takeover": True, "client_no_context_takeover": True,
                  "server_max_window_bits": 9, "client_max_window_bits": 11},
     {"client_max_window_bits": 12, "server_max_window_bits": 10},
     [("server_no_context_takeover", None), ("client_no_context_takeover", None),
      ("server_max_window_bits", "9"), ("client_max_window_bits", "11")]),
    *[(f"client_max_window_bits={b}", {"client_max_window_bits": b}, {}, [("client_max_window_bits", str(b))])
      for b in range(8, 16)],
]


@pytest.mark.parametrize("server_kw, client_kw, expected", [x[1:] for x in INTEROP], ids=[x[0] for x in INTEROP])
def test_interop_with_websockets(ws_server, server_kw, client_kw, expected):
    serve_kw: dict[str, Any] = {"max_size": 4 * MiB}
    if server_kw is not None:
        serve_kw["extensions"] = [_factory(**server_kw)]
    server = ws_server(**serve_kw)
    conn = wsx.Conn(server.url, compress=Deflate(**client_kw))
    client = wsx.start(conn, Collect, [], debug=["statistics"])
    try:
        assert len(conn.extensions) == 1
        name, params = conn.extensions[0]
        assert name == "permessage-deflate"
        assert sorted(params) == sorted(expected)
        raw, compressible = exchange(client)
        stats = wsx.sys.statistics(client)
        # The compressible megabytes shrank on the wire both ways (except that
        # a client window of 8 bits means we send uncompressed).
        assert stats["bytes_in"] < raw - compressible * 0.7
        if ("client_max_window_bits", "8") in params:
            assert stats["bytes_out"] > raw
        else:
            assert stats["bytes_out"] < raw - compressible * 0.7
    finally:
        assert wsx.stop(client)


@pytest.mark.parametrize("case", ["compress=False", "server-without-compression"])
def test_interop_without_compression(ws_server, case):
    if case == "compress=False":
        server = ws_server(max_size=4 * MiB)
        conn = wsx.Conn(server.url, compress=False)
    else:
        server = ws_server(max_size=4 * MiB, compression=None)
        conn = wsx.Conn(server.url)
    client = wsx.start(conn, Collect, [], debug=["statistics"])
    try:
        assert conn.extensions == []
        raw, _ = exchange(client)
        stats = wsx.sys.statistics(client)
        assert stats["bytes_out"] > raw and stats["bytes_in"] > raw
    finally:
        assert wsx.stop(client)


# ---------------------------------------------------- handshake (raw server)
def _raw_answer(raw_server: Any, header: str | None, requests: list[bytes] | None = None) -> Any:
    def handler(sock: socket.socket) -> None:
        request = read_request(sock)
        if requests is not None:
            requests.append(request)
        extra = f"Sec-WebSocket-Extensions: {header}\r\n" if header is not None else ""
        sock.sendall(accept_response(request, extra=extra))
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass

    return raw_server(handler)


def _offer(request: bytes) -> list[str]:
    lines = request.decode("latin-1").split("\r\n")
    return [line.split(":", 1)[1].strip() for line in lines
            if line.lower().startswith("sec-websocket-extensions:")]


def test_offer_sent_in_the_handshake(raw_server):
    requests: list[bytes] = []
    server = _raw_answer(raw_server, None, requests)
    for compress, offer in [
        (True, ["permessage-deflate; client_max_window_bits"]),
        (False, []),
        (Deflate(server_no_context_takeover=True, client_no_context_takeover=True,
                 server_max_window_bits=10, client_max_window_bits=9),
         [("permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
           "client_max_window_bits=9; server_max_window_bits=10")]),
    ]:
        conn = wsx.Conn(server.url, compress=compress)
        client = wsx.start(conn, Collect, [])
        assert conn.extensions == []  # the server accepted nothing: no compression
        wsx.stop(client)
        assert _offer(requests[-1]) == offer


HANDSHAKE_REJECTIONS = [
    (True, "permessage-deflate; foo=1", "'foo'"),
    (True, ("permessage-deflate; server_no_context_takeover; "
            "server_no_context_takeover"), "'server_no_context_takeover' repeated"),
    (True, "permessage-deflate; server_max_window_bits=16", "'16'"),
    (True, "permessage-deflate; server_max_window_bits=7", "'7'"),
    (True, "permessage-deflate; server_max_window_bits=08", "'08'"),
    (True, 'permessage-deflate; server_max_window_bits="abc"', "'abc'"),
    (True, "permessage-deflate; server_max_window_bits", "server_max_window_bits"),
    (True, "permessage-deflate; client_max_window_bits=16", "'16'"),
    (True, "permessage-deflate; client_max_window_bits", "client_max_window_bits"),
    (True, "permessage-deflate; client_no_context_takeover=1", "'1'"),
    (True, "x-webkit-deflate-frame", "'x-webkit-deflate-frame'"),
    (True, "permessage-deflate, permessage-deflate", "more than once"),
    (True, "permessage-deflate; client_max_window_bits=10, x-foo", "'x-foo'"),
    (False, "permessage-deflate", "not offered"),
    (Deflate(client_max_window_bits=None), "permessage-deflate; client_max_window_bits=10", "not offered"),
    (Deflate(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=11", "=11"),
    (Deflate(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=12", "=12"),
    (Deflate(server_max_window_bits=10), "permessage-deflate", "server_max_window_bits=10"),
    (Deflate(server_no_context_takeover=True), "permessage-deflate", "server_no_context_takeover"),
]


@pytest.mark.parametrize("compress, header, needle", HANDSHAKE_REJECTIONS)
def test_handshake_rejects_bad_extension_response(raw_server, compress, header, needle):
    server = _raw_answer(raw_server, header)
    conn = wsx.Conn(server.url, compress=compress)
    with pytest.raises(HandshakeError) as info:
        wsx.start(conn, Collect, [])
    assert needle in str(info.value)
    assert conn.extensions == []


def test_compress_option_accepted_by_start(raw_server):
    """``compress`` is a connection option like ``max_message_size`` (wsx.Conn documents it)."""
    requests: list[bytes] = []
    server = _raw_answer(raw_server, None, requests)
    client = wsx.start(server.url, Collect, [], compress=False)
    wsx.stop(client)
    assert _offer(requests[-1]) == []
