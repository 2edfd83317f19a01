"""The compiled codec (wsx/_codec.pyx) against the pure-Python one, input for input.

Both parsers are fed the same byte streams cut at the same places: they must
return the same frames, report the same incomplete frame, and fail with the
same close code and message (carrying the same frames completed before the
error). The encoders must produce the same bytes for the same key.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsx.core.frames
from wsx.core.frames import py_encode_frame
from wsx.errors import FrameEncodeError, FrameError

if wsx.core.frames.CODEC_IMPLEMENTATION != "cython":
    if os.environ.get("WSX_REQUIRE_EXTENSIONS", "") not in ("", "0"):
        raise RuntimeError("WSX_REQUIRE_EXTENSIONS is set but the compiled codec is not in use")
    pytest.skip("the compiled codec is not built or disabled", allow_module_level=True)

CParser = wsx.core.frames.FrameParser
PyParser = wsx.core.frames.PyFrameParser
c_encode = wsx.core.frames.encode_frame


def run(parser: Any, chunks: list[bytes]) -> list[Any]:
    """Feed chunks; record frames, pending state and the error, if any."""
    out: list[Any] = []
    for chunk in chunks:
        try:
            frames = parser.feed(chunk)
        except FrameError as exc:
            out.append(("error", exc.code, str(exc), [tuple(f) for f in exc.frames]))
            return out
        out.append(([tuple(f) for f in frames], parser.pending_header(), parser.buffered,
                    parser.pending_bytes(), parser.pending_bytes(1), parser.pending_bytes(3),
                    parser.pending_bytes(6)))
    return out


def frame_bytes(masked_side: bool = False) -> st.SearchStrategy[bytes]:
    """Mostly well-formed frames of one side (``masked_side``: a client's), sometimes broken."""
    header = st.tuples(
        st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
        st.booleans(),
        st.sampled_from([0, 0, 0, 0x40, 0x20, 0x10]),
        st.sampled_from([masked_side] * 3 + [not masked_side]),
        st.binary(max_size=300),
        st.sampled_from([None, None, 126, 127]),
        st.binary(min_size=4, max_size=4),
    )

    def build(t: tuple[int, bool, int, bool, bytes, int | None, bytes]) -> bytes:
        opcode, fin, rsv, masked, payload, force, key = t
        n = len(payload)
        b0 = (0x80 if fin else 0) | rsv | opcode
        m = 0x80 if masked else 0
        if force == 126 or (force is None and 126 <= n < 0x10000):
            head = bytes((b0, m | 126)) + n.to_bytes(2, "big")
        elif force == 127 or n >= 0x10000:
            head = bytes((b0, m | 127)) + n.to_bytes(8, "big")
        else:
            head = bytes((b0, m | n))
        return head + (key if masked else b"") + payload

    return header.map(build)


@st.composite
def streams(draw: st.DrawFn, masked_side: bool = False) -> tuple[bytes, list[int]]:
    data = b"".join(draw(st.lists(frame_bytes(masked_side), max_size=8)))
    if draw(st.booleans()):
        data += draw(st.binary(max_size=20))  # trailing garbage or a partial header
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return data, cuts


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=600, deadline=None)
@given(
    st.booleans().flatmap(lambda masked: st.tuples(st.just(masked), streams(masked))),
    st.sampled_from([None, 0, 5, 130, 70000]),
    st.sampled_from([None, 0, 10, 300, 70000]),
    st.sampled_from([0, 0x40, 0x70]),
)
def test_parsers_agree(side_stream: tuple[bool, tuple[bytes, list[int]]], max_frame: int | None,
                       max_message: int | None, rsv: int) -> None:
    # masked: a server's parsers (frames from a client, random keys), else a client's.
    masked, (data, cuts) = side_stream
    chunks = split(data, cuts)
    a = run(CParser(max_frame, max_message, rsv, masked), chunks)
    b = run(PyParser(max_frame, max_message, rsv, masked), chunks)
    assert a == b


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50), st.booleans())
def test_parsers_agree_on_noise(data: bytes, step: int, masked: bool) -> None:
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    assert (run(CParser(None, None, 0x40, masked), chunks)
            == run(PyParser(None, None, 0x40, masked), chunks))


def test_huge_lengths_agree() -> None:
    for length in (2**63, 2**64 - 1, 2**63 - 1, 2**32, 16 * 1024 * 1024 + 1):
        head = b"\x82\x7f" + length.to_bytes(8, "big")
        assert run(CParser(), [head]) == run(PyParser(), [head])
        assert run(CParser(None, None), [head]) == run(PyParser(None, None), [head])


def test_one_byte_at_a_time_large_frame() -> None:
    payload = os.urandom(70_000)
    wire = py_encode_frame(0x2, payload, masked=False) + py_encode_frame(0x9, b"x", masked=False)
    chunks = [wire[i : i + 997] for i in range(0, len(wire), 997)]
    a = run(CParser(), chunks)
    assert a == run(PyParser(), chunks)
    assert a[-1][0] == [(0x2, True, 0, payload), (0x9, True, 0, b"x")]


def test_frames_are_frame_tuples() -> None:
    (frame,) = CParser().feed(b"\x81\x02hi")
    assert isinstance(frame, wsx.core.frames.Frame)
    assert (frame.opcode, frame.fin, frame.rsv, frame.payload) == (1, True, 0, b"hi")


def test_limits_are_settable_and_checked() -> None:
    p = CParser()
    assert p.max_frame_size == wsx.core.frames.DEFAULT_MAX_SIZE
    p.max_message_size = None
    assert p.max_message_size is None
    with pytest.raises(ValueError, match="max_frame_size.*-1"):
        p.max_frame_size = -1
    with pytest.raises(ValueError, match="max_message_size.*'x'"):
        CParser(10, "x")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA]),
    st.binary(max_size=70_000) | st.binary(max_size=130),
    st.booleans(),
    st.sampled_from([0, 0x40]),
    st.binary(min_size=4, max_size=4),
    st.booleans(),
)
def test_encoders_agree(opcode: int, payload: bytes, fin: bool, rsv: int, key: bytes,
                        masked: bool) -> None:
    def enc(f: Any) -> Any:
        try:
            return f(opcode, payload, fin, rsv, key, masked)
        except FrameEncodeError as exc:
            return ("error", str(exc))

    assert enc(c_encode) == enc(py_encode_frame)


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("payload", [b"", b"x", b"y" * 126, os.urandom(70_000)])
def test_encode_data_is_encode_frame_per_side(payload: bytes, masked: bool) -> None:
    # The send path's short form, both sides, both builds: the frame
    # encode_frame writes (a masked one is unmasked to compare: its key is random).
    for encode_data in (wsx.core.frames.encode_data, wsx.core.frames.py_encode_data):
        wire = encode_data(0x2, payload, masked)
        (frame,) = PyParser(None, None, 0, masked).feed(wire)
        assert frame == (0x2, True, 0, payload)
        if not masked:
            assert wire == py_encode_frame(0x2, payload, masked=False)


@pytest.mark.parametrize("payload", [b"", b"a" * 125, bytearray(b"xyz" * 9000), memoryview(b"m" * 300)])
def test_encoder_random_key_roundtrip(payload: Any) -> None:
    wire = c_encode(0x2, payload)
    key = wire[-len(payload) - 4 : len(wire) - len(payload)] if len(payload) else wire[-4:]
    masked = wire[len(wire) - len(payload):]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(masked)) == bytes(payload)


def test_encoder_rejects_like_python() -> None:
    with pytest.raises(FrameEncodeError, match="125"):
        c_encode(0x9, b"x" * 126)
    with pytest.raises(FrameEncodeError, match="fragmented"):
        c_encode(0x9, b"", fin=False)
    with pytest.raises(TypeError):
        c_encode(0x1, "text is not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4 bytes"):
        c_encode(0x1, b"abc", mask_key=b"abc")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("size", [300_000, 5 * 1024 * 1024])  # in place; gathered (> 4 MiB)
def test_large_frames_in_uneven_pieces(size: int, masked: bool) -> None:
    # A big payload between small frames, cut where the pieces straddle
    # frame boundaries: received in place (up to 4 MiB) or gathered; sent
    # by a server (unmasked) or by a client (masked, for a server's parser).
    payload = os.urandom(size)
    wire = (py_encode_frame(0x9, b"p", masked=masked)
            + py_encode_frame(0x2, payload, masked=masked)
            + py_encode_frame(0x1, b"after", masked=masked))
    extra = 4 if masked else 0  # the masking key after each header
    cuts = [1, 3, 5, 7, 64_000, 64_001, size // 2, size + 8 + extra, size + 9 + extra,
            len(wire) - 2]
    chunks = split(wire, cuts)
    a = run(CParser(None, None, 0, masked), chunks)
    assert a == run(PyParser(None, None, 0, masked), chunks)
    frames = [f for step in a for f in step[0]]
    assert frames == [(0x9, True, 0, b"p"), (0x2, True, 0, payload), (0x1, True, 0, b"after")]
