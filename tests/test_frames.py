"""Tests for wsx.core.frames: the RFC 6455 frame encoder, parser and close payloads."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import wsx.core.frames
from wsx.core.frames import (
    DEFAULT_MAX_SIZE,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    RSV2,
    RSV3,
    Frame,
    FrameParser,
    MaskKeySource,
    encode_close,
    encode_frame,
    is_valid_close_code,
    parse_close,
)
from wsx.errors import FrameEncodeError, FrameError

# Every test here runs against each codec built: the pure-Python one and, when
# the extension is compiled, wsx/_codec.pyx (bound by wsx.core.frames).
CODECS = {"python": (wsx.core.frames.PyFrameParser, wsx.core.frames.py_encode_frame)}
if wsx.core.frames.CODEC_IMPLEMENTATION == "cython":
    CODECS["cython"] = (wsx.core.frames.FrameParser, wsx.core.frames.encode_frame)
elif os.environ.get("WSX_REQUIRE_EXTENSIONS", "") not in ("", "0"):
    raise RuntimeError("WSX_REQUIRE_EXTENSIONS is set but the compiled codec is not in use")


@pytest.fixture(autouse=True, scope="module", params=sorted(CODECS))
def codec(request: pytest.FixtureRequest) -> str:
    """Bind FrameParser / encode_frame in this module to one implementation."""
    global FrameParser, encode_frame
    FrameParser, encode_frame = CODECS[request.param]  # type: ignore[misc]
    return str(request.param)


HELLO = b"Hello"
KEY = bytes.fromhex("37fa213d")


def xor_mask(data: bytes, key: bytes) -> bytes:
    """Reference masking, independent of wsx.mask."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def decode_client_frame(data: bytes) -> tuple[Frame, bytes, int]:
    """Decode one masked (client) frame: (Frame, mask key, bytes consumed)."""
    b0, b1 = data[0], data[1]
    assert b1 & 0x80, "client frames must be masked"
    length = b1 & 0x7F
    pos = 2
    if length == 126:
        (length,) = struct.unpack_from("!H", data, 2)
        assert length >= 126, "non-minimal 16-bit length"
        pos = 4
    elif length == 127:
        (length,) = struct.unpack_from("!Q", data, 2)
        assert length >= 0x10000, "non-minimal 64-bit length"
        pos = 10
    key = data[pos : pos + 4]
    pos += 4
    payload = xor_mask(data[pos : pos + length], key)
    assert len(payload) == length
    return Frame(b0 & 0x0F, bool(b0 & 0x80), b0 & 0x70, payload), key, pos + length


def feed_bytewise(parser: FrameParser, data: bytes) -> list[Frame]:
    frames: list[Frame] = []
    for i in range(len(data)):
        frames += parser.feed(data[i : i + 1])
    return frames


def feed_chunks(parser: FrameParser, data: bytes, cuts: list[int]) -> list[Frame]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    frames: list[Frame] = []
    prev = 0
    for p in points + [len(data)]:
        frames += parser.feed(data[prev:p])
        prev = p
    return frames


def parse_error(data: bytes, **kwargs: object) -> FrameError:
    parser = FrameParser(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(FrameError) as info:
        parser.feed(data)
    return info.value


# --------------------------------------------------------------- RFC 6455 5.7


class TestRfcExamples:
    def test_single_frame_unmasked_text(self) -> None:
        wire = bytes.fromhex("810548656c6c6f")
        assert encode_frame(OP_TEXT, HELLO, masked=False) == wire
        assert FrameParser().feed(wire) == [Frame(OP_TEXT, True, 0, HELLO)]

    def test_single_frame_masked_text(self) -> None:
        wire = bytes.fromhex("818537fa213d7f9f4d5158")
        assert encode_frame(OP_TEXT, HELLO, mask_key=KEY) == wire
        frame, key, used = decode_client_frame(wire)
        assert (frame, key, used) == (Frame(OP_TEXT, True, 0, HELLO), KEY, len(wire))

    def test_fragmented_unmasked_text(self) -> None:
        first = bytes.fromhex("010348656c")
        second = bytes.fromhex("80026c6f")
        assert encode_frame(OP_TEXT, b"Hel", fin=False, masked=False) == first
        assert encode_frame(OP_CONTINUATION, b"lo", masked=False) == second
        parser = FrameParser()
        assert parser.feed(first) == [Frame(OP_TEXT, False, 0, b"Hel")]
        assert parser.feed(second) == [Frame(OP_CONTINUATION, True, 0, b"lo")]
        assert FrameParser().feed(first + second) == [
            Frame(OP_TEXT, False, 0, b"Hel"),
            Frame(OP_CONTINUATION, True, 0, b"lo"),
        ]

    def test_unmasked_ping(self) -> None:
        wire = bytes.fromhex("890548656c6c6f")
        assert encode_frame(OP_PING, HELLO, masked=False) == wire
        assert FrameParser().feed(wire) == [Frame(OP_PING, True, 0, HELLO)]

    def test_masked_pong(self) -> None:
        wire = bytes.fromhex("8a8537fa213d7f9f4d5158")
        assert encode_frame(OP_PONG, HELLO, mask_key=KEY) == wire
        assert decode_client_frame(wire)[0] == Frame(OP_PONG, True, 0, HELLO)

    def test_256_bytes_binary(self) -> None:
        payload = os.urandom(256)
        wire = bytes.fromhex("827E0100") + payload
        assert encode_frame(OP_BINARY, payload, masked=False) == wire
        assert FrameParser().feed(wire) == [Frame(OP_BINARY, True, 0, payload)]
        masked = encode_frame(OP_BINARY, payload, mask_key=KEY)
        assert masked[:4] == bytes.fromhex("82FE0100") and masked[4:8] == KEY
        assert masked[8:] == xor_mask(payload, KEY)

    def test_64k_binary(self) -> None:
        payload = os.urandom(65536)
        wire = bytes.fromhex("827F0000000000010000") + payload
        assert encode_frame(OP_BINARY, payload, masked=False) == wire
        assert FrameParser().feed(wire) == [Frame(OP_BINARY, True, 0, payload)]
        masked = encode_frame(OP_BINARY, payload, mask_key=KEY)
        assert masked[:10] == bytes.fromhex("82FF0000000000010000") and masked[10:14] == KEY
        assert masked[14:] == xor_mask(payload, KEY)

    def test_examples_bytewise(self) -> None:
        wire = (
            bytes.fromhex("810548656c6c6f")
            + bytes.fromhex("010348656c")
            + bytes.fromhex("890548656c6c6f")
            + bytes.fromhex("80026c6f")
            + bytes.fromhex("827E0100")
            + bytes(256)
        )
        assert feed_bytewise(FrameParser(), wire) == [
            Frame(OP_TEXT, True, 0, HELLO),
            Frame(OP_TEXT, False, 0, b"Hel"),
            Frame(OP_PING, True, 0, HELLO),
            Frame(OP_CONTINUATION, True, 0, b"lo"),
            Frame(OP_BINARY, True, 0, bytes(256)),
        ]


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, "8200"),
        (125, "827D"),
        (126, "827E007E"),
        (65535, "827EFFFF"),
        (65536, "827F0000000000010000"),
    ],
)
def test_length_boundaries(length: int, header: str) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    wire = encode_frame(OP_BINARY, payload, masked=False)
    assert wire == bytes.fromhex(header) + payload
    assert FrameParser().feed(wire) == [Frame(OP_BINARY, True, 0, payload)]


def test_encode_rsv_and_fin_bits() -> None:
    wire = encode_frame(OP_BINARY, b"x", fin=False, rsv=RSV1 | RSV3, masked=False)
    assert wire == bytes((0x52, 0x01)) + b"x"


def test_encode_accepts_buffers() -> None:
    for payload in (bytearray(b"abc"), memoryview(b"abc")):
        assert encode_frame(OP_BINARY, payload, masked=False) == b"\x82\x03abc"
        assert encode_frame(OP_BINARY, payload, mask_key=KEY) == (
            b"\x82\x83" + KEY + xor_mask(b"abc", KEY)
        )


def test_encode_control_frame_limits() -> None:
    assert encode_frame(OP_PING, bytes(125), masked=False) == b"\x89\x7d" + bytes(125)
    for op in (OP_PING, OP_PONG, OP_CLOSE):
        with pytest.raises(FrameEncodeError):
            encode_frame(op, bytes(126))
        with pytest.raises(FrameEncodeError):
            encode_frame(op, b"", fin=False)


# ---------------------------------------------------------------- mask keys


class TestMaskKeys:
    def test_fresh_key_per_frame(self) -> None:
        a = encode_frame(OP_TEXT, HELLO)
        b = encode_frame(OP_TEXT, HELLO)
        assert a[:2] == b[:2] == b"\x81\x85"
        assert a[2:6] != b[2:6]
        assert a != b
        for wire in (a, b):
            assert decode_client_frame(wire)[0] == Frame(OP_TEXT, True, 0, HELLO)

    def test_many_keys_distinct(self) -> None:
        keys = {encode_frame(OP_BINARY, b"")[2:6] for _ in range(2000)}
        # 2000 random 32-bit keys: a collision is astronomically unlikely
        assert len(keys) >= 1995

    def test_source_batches_urandom(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []
        counter = iter(range(1, 1_000_000))

        def fake_urandom(n: int) -> bytes:
            calls.append(n)
            return bytes(next(counter) % 256 for _ in range(n))

        monkeypatch.setattr(os, "urandom", fake_urandom)
        source = MaskKeySource(batch=3)
        keys = [source() for _ in range(7)]
        assert calls == [12, 12, 12]
        assert all(len(k) == 4 for k in keys)
        assert len(set(keys)) == 7
        assert keys[0] == bytes((1, 2, 3, 4))
        assert keys[3] == bytes((13, 14, 15, 16))

    def test_default_source_is_used(self, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
        if codec == "cython":
            pytest.skip("the compiled encoder keeps its own key pool (test_keys_vary)")
        keys = iter([b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd"])
        monkeypatch.setattr(wsx.core.frames, "_default_keys", lambda: next(keys))
        assert encode_frame(OP_BINARY, b"\x00\x00")[2:6] == b"\x01\x02\x03\x04"
        assert encode_frame(OP_BINARY, b"\x00\x00") == b"\x82\x82\xaa\xbb\xcc\xdd\xaa\xbb"

    def test_keys_vary(self) -> None:
        keys = {encode_frame(OP_BINARY, b"\x00\x00\x00\x00")[2:6] for _ in range(3000)}
        # 3000 random 32-bit keys: a repeat is possible but very unlikely (p ~ 0.001).
        assert len(keys) >= 2999
        frames = [encode_frame(OP_BINARY, b"\x00" * 8) for _ in range(50)]
        # The payload of zeros masked is the key twice: header key == payload.
        assert all(f[6:10] == f[2:6] and f[10:14] == f[2:6] for f in frames)

    def test_default_source_type(self) -> None:
        assert isinstance(wsx.core.frames._default_keys, MaskKeySource)


# ------------------------------------------------------------- round trips

LENGTHS = st.one_of(
    st.integers(0, 3),
    st.integers(123, 128),
    st.integers(65533, 65537),
    st.integers(0, 300),
)


@st.composite
def payloads(draw: st.DrawFn, max_len: int | None = None) -> bytes:
    n = draw(LENGTHS)
    if max_len is not None:
        n = min(n, max_len)
    seed = draw(st.binary(min_size=1, max_size=8))
    return (seed * (n // len(seed) + 1))[:n]


@st.composite
def frame_sequences(draw: st.DrawFn) -> list[Frame]:
    """A valid server frame sequence: messages, some fragmented, with control frames."""
    frames: list[Frame] = []
    for _ in range(draw(st.integers(1, 4))):
        opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
        payload = draw(payloads())
        n_frag = draw(st.integers(1, 4))
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), min_size=n_frag - 1,
                                    max_size=n_frag - 1)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            if draw(st.booleans()):
                frames.append(Frame(draw(st.sampled_from([OP_PING, OP_PONG])), True, 0,
                                    draw(payloads(max_len=125))))
            frames.append(Frame(opcode if i == 0 else OP_CONTINUATION,
                                i == len(pieces) - 1, 0, piece))
    return frames


def wire_of(frames: list[Frame]) -> bytes:
    return b"".join(encode_frame(f.opcode, f.payload, f.fin, f.rsv, masked=False) for f in frames)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_sequences(), st.lists(st.integers(0, 300_000), max_size=20))
def test_round_trip_any_chunking(frames: list[Frame], cuts: list[int]) -> None:
    wire = wire_of(frames)
    assert FrameParser().feed(wire) == frames
    assert feed_chunks(FrameParser(), wire, cuts) == frames
    # cuts concentrated in the headers / small offsets
    small = [c % 300 for c in cuts]
    assert feed_chunks(FrameParser(), wire, small) == frames


@settings(max_examples=25, deadline=None)
@given(frame_sequences())
def test_round_trip_bytewise(frames: list[Frame]) -> None:
    assume(sum(len(f.payload) for f in frames) < 20_000)
    parser = FrameParser()
    assert feed_bytewise(parser, wire_of(frames)) == frames
    assert parser.buffered == 0


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG]),
    payloads(),
    st.booleans(),
    st.sampled_from([0, RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3]),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)
def test_masked_encoding_unmasks(
    opcode: int, payload: bytes, fin: bool, rsv: int, key: bytes | None
) -> None:
    if opcode >= 8:
        payload = payload[:125]
        fin = True
    wire = encode_frame(opcode, payload, fin, rsv, mask_key=key)
    frame, used_key, used = decode_client_frame(wire)
    assert used == len(wire)
    assert frame == Frame(opcode, fin, rsv, payload)
    if key is not None:
        assert used_key == key
    unmasked = encode_frame(opcode, payload, fin, rsv, masked=False)
    # same header apart from the mask bit and key
    hlen = len(unmasked) - len(payload)
    assert wire[0] == unmasked[0]
    assert wire[1] == unmasked[1] | 0x80
    assert wire[2:hlen] == unmasked[2:hlen]


def test_buffered_and_pending() -> None:
    parser = FrameParser()
    wire = encode_frame(OP_TEXT, b"abcdef", masked=False)
    assert parser.feed(wire[:1]) == []
    assert parser.pending_header() is None
    assert parser.buffered == 1
    assert parser.feed(wire[1:4]) == []
    assert parser.pending_header() == (OP_TEXT, 0)
    assert parser.pending_bytes() == b"ab"
    assert parser.pending_bytes(1) == b"b"
    assert parser.feed(wire[4:] + b"\x89") == [Frame(OP_TEXT, True, 0, b"abcdef")]
    assert parser.pending_header() is None
    assert parser.buffered == 1


# --------------------------------------------------------------- rejections


class TestRejections:
    @pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV3])
    def test_rsv_without_extension(self, rsv: int) -> None:
        assert parse_error(bytes((0x81 | rsv, 0x00))).code == 1002

    def test_rsv_allowed(self) -> None:
        wire = bytes((0x81 | RSV1, 0x01)) + b"x"
        assert FrameParser(allowed_rsv=RSV1).feed(wire) == [Frame(OP_TEXT, True, RSV1, b"x")]
        # RSV2 is still refused when only RSV1 is allowed
        assert parse_error(bytes((0x81 | RSV2, 0x00)), allowed_rsv=RSV1).code == 1002
        wire = bytes((0x82 | RSV1 | RSV2 | RSV3, 0x00))
        assert FrameParser(allowed_rsv=0x70).feed(wire) == [Frame(OP_BINARY, True, 0x70, b"")]

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcodes(self, opcode: int) -> None:
        assert parse_error(bytes((0x80 | opcode, 0x00))).code == 1002
        assert parse_error(bytes((0x80 | opcode, 0x01)) + b"x").code == 1002

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_control_frame_too_long(self, opcode: int) -> None:
        # header only: the 126-byte payload is not needed to reject it
        assert parse_error(bytes((0x80 | opcode, 126, 0, 126))).code == 1002
        wire = bytes((0x80 | opcode, 125)) + bytes(125)
        assert FrameParser().feed(wire) == [Frame(opcode, True, 0, bytes(125))]

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_fragmented_control_frame(self, opcode: int) -> None:
        assert parse_error(bytes((opcode, 0x00))).code == 1002

    def test_masked_frame_from_server(self) -> None:
        assert parse_error(encode_frame(OP_TEXT, HELLO, mask_key=KEY)).code == 1002
        assert parse_error(bytes.fromhex("8a8537fa213d7f9f4d5158")).code == 1002

    @pytest.mark.parametrize("max_size", [DEFAULT_MAX_SIZE, None])
    def test_64bit_length_top_bit(self, max_size: int | None) -> None:
        header = bytes((0x82, 127)) + struct.pack("!Q", 1 << 63)
        exc = parse_error(header, max_frame_size=max_size, max_message_size=max_size)
        assert exc.code == 1002
        header = bytes((0x82, 127)) + struct.pack("!Q", 0xFFFFFFFFFFFFFFFF)
        assert parse_error(header, max_frame_size=None, max_message_size=None).code == 1002

    def test_continuation_without_message(self) -> None:
        assert parse_error(b"\x80\x00").code == 1002
        assert parse_error(b"\x00\x01x").code == 1002
        # a finished message does not leave room for a continuation
        assert parse_error(b"\x81\x01a\x80\x01b").code == 1002

    @pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
    def test_new_message_inside_fragmented(self, opcode: int) -> None:
        wire = b"\x01\x01a" + bytes((0x80 | opcode, 0x01)) + b"b"
        exc = parse_error(wire)
        assert exc.code == 1002
        assert exc.frames == [Frame(OP_TEXT, False, 0, b"a")]

    def test_frame_too_big_from_header_alone(self) -> None:
        parser = FrameParser(max_frame_size=1000, max_message_size=None)
        header = bytes((0x82, 127)) + struct.pack("!Q", 1 << 40)
        assert parser.feed(header[:9]) == []  # the length is not known yet
        with pytest.raises(FrameError) as info:
            parser.feed(header[9:])
        assert info.value.code == 1009
        # 16-bit length
        exc = parse_error(b"\x82\x7e\x03\xe9", max_frame_size=1000)
        assert exc.code == 1009
        # 7-bit length
        assert parse_error(b"\x81\x0b", max_frame_size=10).code == 1009

    def test_frame_at_limit_accepted(self) -> None:
        parser = FrameParser(max_frame_size=1000, max_message_size=1000)
        wire = encode_frame(OP_BINARY, bytes(1000), masked=False)
        assert parser.feed(wire) == [Frame(OP_BINARY, True, 0, bytes(1000))]

    def test_default_limit(self) -> None:
        header = bytes((0x82, 127)) + struct.pack("!Q", DEFAULT_MAX_SIZE + 1)
        assert parse_error(header).code == 1009
        header = bytes((0x82, 127)) + struct.pack("!Q", DEFAULT_MAX_SIZE)
        parser = FrameParser()
        assert parser.feed(header) == []
        assert parser.pending_header() == (OP_BINARY, 0)

    def test_message_too_big(self) -> None:
        parser = FrameParser(max_frame_size=None, max_message_size=10)
        assert parser.feed(b"\x01\x06abcdef") == [Frame(OP_TEXT, False, 0, b"abcdef")]
        assert parser.feed(b"\x89\x0bping-ping-p") == [Frame(OP_PING, True, 0, b"ping-ping-p")]
        assert parser.feed(b"\x00\x04ghij") == [Frame(OP_CONTINUATION, False, 0, b"ghij")]
        with pytest.raises(FrameError) as info:
            parser.feed(b"\x80\x01")  # header only: 11 bytes in all
        assert info.value.code == 1009

    def test_message_size_resets_between_messages(self) -> None:
        parser = FrameParser(max_frame_size=None, max_message_size=10)
        for _ in range(3):
            assert len(parser.feed(b"\x02\x05abcde\x80\x05fghij")) == 2

    def test_unlimited(self) -> None:
        parser = FrameParser(max_frame_size=None, max_message_size=None)
        header = bytes((0x82, 127)) + struct.pack("!Q", (1 << 62) + 5)
        assert parser.feed(header) == []
        assert parser.pending_header() == (OP_BINARY, 0)
        parser = FrameParser(max_frame_size=None, max_message_size=None)
        big = bytes(DEFAULT_MAX_SIZE + 1)
        wire = b"\x02\x7f" + struct.pack("!Q", len(big)) + big + b"\x80\x01x"
        frames = parser.feed(wire)
        assert [(f.opcode, f.fin, len(f.payload)) for f in frames] == [
            (OP_BINARY, False, len(big)),
            (OP_CONTINUATION, True, 1),
        ]

    def test_frames_before_error_kept(self) -> None:
        wire = b"\x81\x05Hello\x89\x00\x83\x00"
        exc = parse_error(wire)
        assert exc.code == 1002
        assert exc.frames == [Frame(OP_TEXT, True, 0, HELLO), Frame(OP_PING, True, 0, b"")]

    def test_frames_before_error_kept_chunked(self) -> None:
        parser = FrameParser()
        assert parser.feed(b"\x81\x05Hel") == []
        with pytest.raises(FrameError) as info:
            parser.feed(b"lo\x82\x01z\xc1\x00")
        assert info.value.code == 1002
        assert info.value.frames == [Frame(OP_TEXT, True, 0, HELLO), Frame(OP_BINARY, True, 0, b"z")]


# ------------------------------------------------------------ close payloads


class TestClose:
    def test_empty(self) -> None:
        assert parse_close(b"") == (None, "")

    def test_one_byte(self) -> None:
        with pytest.raises(FrameError) as info:
            parse_close(b"\x03")
        assert info.value.code == 1002

    @pytest.mark.parametrize(
        "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    )
    def test_invalid_codes(self, code: int) -> None:
        with pytest.raises(FrameError) as info:
            parse_close(struct.pack("!H", code))
        assert info.value.code == 1002
        with pytest.raises(FrameError) as info:
            parse_close(struct.pack("!H", code) + b"reason")
        assert info.value.code == 1002
        assert not is_valid_close_code(code)
        with pytest.raises(FrameEncodeError):
            encode_close(code)

    @pytest.mark.parametrize(
        "code",
        [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999],
    )
    def test_valid_codes(self, code: int) -> None:
        assert parse_close(struct.pack("!H", code)) == (code, "")
        assert parse_close(struct.pack("!H", code) + "κόσμε".encode()) == (code, "κόσμε")
        assert encode_close(code, "bye") == struct.pack("!H", code) + b"bye"
        assert parse_close(encode_close(code, "x" * 123)) == (code, "x" * 123)

    @pytest.mark.parametrize(
        "reason", [b"\xff", b"ok\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82"]
    )
    def test_invalid_utf8_reason(self, reason: bytes) -> None:
        with pytest.raises(FrameError) as info:
            parse_close(b"\x03\xe8" + reason)
        assert info.value.code == 1007

    def test_encode_close(self) -> None:
        assert encode_close() == b"\x03\xe8"
        assert encode_close(None) == b""
        assert encode_close(1001, "é") == b"\x03\xe9\xc3\xa9"
        assert encode_close(1000, "é" * 61 + "a") == b"\x03\xe8" + "é".encode() * 61 + b"a"

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            (1000, "x" * 124),
            (1000, "é" * 62),  # 124 bytes of UTF-8
            (None, "reason without code"),
            (1005, ""),
            (1006, ""),
            (999, ""),
            (5000, ""),
            (True, ""),
            ("1000", ""),
            (1000.0, ""),
        ],
    )
    def test_encode_close_rejects(self, code: object, reason: str) -> None:
        with pytest.raises(FrameEncodeError):
            encode_close(code, reason)  # type: ignore[arg-type]

    @given(st.sampled_from([1000, 1001, 1003, 1011, 3000, 4999]), st.text(max_size=30))
    def test_close_round_trip(self, code: int, reason: str) -> None:
        if len(reason.encode("utf-8", "surrogatepass")) > 123:
            return
        try:
            payload = encode_close(code, reason)
        except UnicodeEncodeError:
            assume(False)  # lone surrogates are not encodable
        assert parse_close(payload) == (code, reason)


class TestServerRole:
    """PyFrameParser(masked=True): client-to-server frames (the echo server's side)."""

    def test_masked_frames_are_unmasked_whatever_the_chunking(self) -> None:
        wire = (wsx.core.frames.py_encode_frame(OP_TEXT, b"Hello", mask_key=KEY)
                + wsx.core.frames.py_encode_frame(OP_BINARY, b"x" * 300, mask_key=b"\x01\x02\x03\x04")
                + wsx.core.frames.py_encode_frame(OP_PING, b"", mask_key=KEY))
        expected = [(OP_TEXT, True, 0, b"Hello"), (OP_BINARY, True, 0, b"x" * 300),
                    (OP_PING, True, 0, b"")]
        for step in (1, 3, 7, len(wire)):
            parser = wsx.core.frames.PyFrameParser(masked=True)
            frames = []
            for i in range(0, len(wire), step):
                frames += parser.feed(wire[i : i + step])
            assert [tuple(f) for f in frames] == expected

    def test_unmasked_frame_from_a_client_is_1002(self) -> None:
        parser = wsx.core.frames.PyFrameParser(masked=True)
        with pytest.raises(FrameError, match="client sent an unmasked frame") as info:
            parser.feed(b"\x81\x02hi")
        assert info.value.code == 1002

    def test_size_limit_applies_before_the_key_and_payload(self) -> None:
        parser = wsx.core.frames.PyFrameParser(max_frame_size=10, max_message_size=10, masked=True)
        with pytest.raises(FrameError) as info:
            parser.feed(b"\x82\xfe\x10\x00" + KEY)  # 4096 bytes announced, none sent
        assert info.value.code == 1009


@pytest.mark.parametrize("batch", [0, -1])
def test_a_key_source_needs_at_least_one_key_per_batch(batch: int) -> None:
    for source in {MaskKeySource, wsx.core.frames.MaskKeySource}:
        with pytest.raises(ValueError, match=f"batch must be at least 1 key, not {batch}"):
            source(batch=batch)
