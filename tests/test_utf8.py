"""Tests for wsx.core.utf8: fail-fast incremental UTF-8 validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsx.core.utf8 import Utf8Decoder, is_valid_utf8

# ------------------------------------------------------- reference automaton
#
# RFC 3629 section 4:
#   UTF8-1 = %x00-7F
#   UTF8-2 = %xC2-DF UTF8-tail
#   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
#            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
#   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
#            %xF4 %x80-8F 2( UTF8-tail )
#   UTF8-tail = %x80-BF
#
# State: a tuple of the (lo, hi) ranges the next bytes of the current character
# must fall in; () between characters.

_TAIL = (0x80, 0xBF)


def _lead(b: int) -> tuple[tuple[int, int], ...] | None:
    if b <= 0x7F:
        return ()
    if 0xC2 <= b <= 0xDF:
        return (_TAIL,)
    if b == 0xE0:
        return ((0xA0, 0xBF), _TAIL)
    if 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
        return (_TAIL, _TAIL)
    if b == 0xED:
        return ((0x80, 0x9F), _TAIL)
    if b == 0xF0:
        return ((0x90, 0xBF), _TAIL, _TAIL)
    if 0xF1 <= b <= 0xF3:
        return (_TAIL, _TAIL, _TAIL)
    if b == 0xF4:
        return ((0x80, 0x8F), _TAIL, _TAIL)
    return None  # 80-C1, F5-FF


def dfa_first_reject(data: bytes) -> int | None:
    """Index of the first byte after which ``data[:i+1]`` is no valid UTF-8 prefix."""
    need: tuple[tuple[int, int], ...] = ()
    for i, b in enumerate(data):
        if need:
            lo, hi = need[0]
            if not lo <= b <= hi:
                return i
            need = need[1:]
        else:
            nxt = _lead(b)
            if nxt is None:
                return i
            need = nxt
    return None


def dfa_complete(data: bytes) -> bool:
    """True when ``data`` is complete, valid UTF-8 (per the reference automaton)."""
    need: tuple[tuple[int, int], ...] = ()
    for b in data:
        if need:
            lo, hi = need[0]
            if not lo <= b <= hi:
                return False
            need = need[1:]
        else:
            nxt = _lead(b)
            if nxt is None:
                return False
            need = nxt
    return not need


def test_reference_dfa_agrees_with_python_on_complete_input() -> None:
    # sanity check of the reference itself on all 1- and 2-byte strings
    for a in range(256):
        assert dfa_complete(bytes((a,))) == _py_valid(bytes((a,)))
        for b in range(256):
            data = bytes((a, b))
            assert dfa_complete(data) == _py_valid(data)


def _py_valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ----------------------------------------------------------------- helpers


def fail_index_bytewise(data: bytes) -> int | None:
    """Feed one byte at a time; index of the byte whose decode() raised."""
    dec = Utf8Decoder()
    for i in range(len(data)):
        try:
            dec.decode(data[i : i + 1])
        except UnicodeDecodeError:
            return i
    return None


# ------------------------------------------------------------ fixed cases


@pytest.mark.parametrize(
    ("hexdata", "fail_at"),
    [
        ("c080", 0),  # overlong NUL: C0 can never start a sequence
        ("c1bf", 0),
        ("e08080", 1),  # overlong 3-byte: fails at the second byte
        ("e09fbf", 1),
        ("f0808080", 1),  # overlong 4-byte
        ("f08fbfbf", 1),
        ("eda080", 1),  # surrogate D800: fails after ED A0, before the third byte
        ("edbfbf", 1),  # surrogate DFFF
        ("f4908080", 1),  # U+110000
        ("f4bfbfbf", 1),
        ("80", 0),  # stray continuation bytes
        ("bf", 0),
        ("41bf", 1),
        ("c3a980", 2),
        ("e282ac80", 3),
        ("c341", 1),  # lead byte followed by a non-continuation
        ("e28241", 2),
        ("f0908041", 3),
        ("f5", 0),
        ("f7bfbfbf", 0),
        ("f8888080", 0),
        ("fc", 0),
        ("fe", 0),
        ("ff", 0),
        ("cebae1bdb9cf83cebcceb5eda080656469746564", 12),
    ],
)
def test_fail_fast(hexdata: str, fail_at: int) -> None:
    data = bytes.fromhex(hexdata)
    assert dfa_first_reject(data) == fail_at
    assert fail_index_bytewise(data) == fail_at
    # given everything up to the bad byte, decode() does not raise
    dec = Utf8Decoder()
    dec.decode(data[:fail_at])
    with pytest.raises(UnicodeDecodeError):
        dec.decode(data[fail_at : fail_at + 1])
    # and given everything at once it raises too
    with pytest.raises(UnicodeDecodeError):
        Utf8Decoder().decode(data)
    assert not is_valid_utf8(data)


def test_surrogate_prefix_alone_raises() -> None:
    # no third byte at all: ED A0 is already hopeless
    with pytest.raises(UnicodeDecodeError):
        Utf8Decoder().decode(b"abc\xed\xa0")
    dec = Utf8Decoder()
    assert dec.decode(b"abc\xed") == "abc"
    with pytest.raises(UnicodeDecodeError):
        dec.decode(b"\xbf")


def test_above_max_prefix_alone_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        Utf8Decoder().decode(b"\xf4\x90")


@pytest.mark.parametrize(
    "hexdata", ["c2", "e0a0", "ed9f", "f090", "f09080", "f48f", "f48fbf", "e1", "ef bf"]
)
def test_valid_prefixes_wait(hexdata: str) -> None:
    data = bytes.fromhex(hexdata)
    dec = Utf8Decoder()
    assert dec.decode(data) == ""
    with pytest.raises(UnicodeDecodeError):
        dec.finish()


def test_finish_and_reset() -> None:
    dec = Utf8Decoder()
    assert dec.decode(b"a\xe2\x82") == "a"
    assert dec.finish(b"\xac!") == "€!"
    # finish resets: the next message starts clean
    assert dec.decode(b"\xc3") == ""
    dec.reset()
    assert dec.finish(b"ok") == "ok"
    # finish raises on a truncated character, and still resets
    assert dec.decode(b"\xf0\x9f") == ""
    with pytest.raises(UnicodeDecodeError):
        dec.finish(b"\x98")
    assert dec.finish(b"x") == "x"


def test_boundaries_valid() -> None:
    for cp in (0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF):
        data = chr(cp).encode("utf-8")
        assert dfa_first_reject(data) is None
        dec = Utf8Decoder()
        text = "".join(dec.decode(data[i : i + 1]) for i in range(len(data))) + dec.finish()
        assert text == chr(cp)
        assert is_valid_utf8(data)


def test_is_valid_utf8_buffers() -> None:
    assert is_valid_utf8(b"")
    assert is_valid_utf8(bytearray("κόσμε".encode()))
    assert is_valid_utf8(memoryview("κόσμε".encode()))
    assert not is_valid_utf8(memoryview(b"\xce"))
    assert not is_valid_utf8(b"\xed\xa0\x80")


# ---------------------------------------------------------- property tests

_chars = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0x7FF),
    st.characters(min_codepoint=0x800, max_codepoint=0xFFFF, blacklist_categories=("Cs",)),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)
_interesting_bytes = st.sampled_from(
    [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
     0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF]
)
_pieces = st.one_of(
    _chars.map(lambda c: c.encode("utf-8")),
    _chars.map(lambda c: c.encode("utf-8")[:-1]),  # truncated character
    _interesting_bytes.map(lambda b: bytes((b,))),
    st.binary(min_size=1, max_size=3),
)
mixed_bytes = st.lists(_pieces, max_size=30).map(b"".join)


@settings(max_examples=500)
@given(mixed_bytes)
def test_bytewise_matches_dfa(data: bytes) -> None:
    expected = dfa_first_reject(data)
    assert fail_index_bytewise(data) == expected
    assert is_valid_utf8(data) == dfa_complete(data)


@settings(max_examples=500)
@given(mixed_bytes, st.lists(st.integers(0, 120), max_size=10))
def test_chunked_matches_dfa(data: bytes, cuts: list[int]) -> None:
    points = sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]
    expected = dfa_first_reject(data)
    dec = Utf8Decoder()
    out = []
    prev = 0
    for p in points:
        chunk = data[prev:p]
        if expected is not None and prev <= expected < p:
            with pytest.raises(UnicodeDecodeError):
                dec.decode(chunk)
            return
        out.append(dec.decode(chunk))  # must not raise: still a valid prefix
        prev = p
    assert expected is None
    if dfa_complete(data):
        out.append(dec.finish())
        assert "".join(out) == data.decode("utf-8")
    else:
        with pytest.raises(UnicodeDecodeError):
            dec.finish()


@settings(max_examples=300)
@given(st.text(alphabet=_chars, max_size=200), st.lists(st.integers(0, 800), max_size=12))
def test_valid_text_any_chunking(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    points = sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]
    dec = Utf8Decoder()
    out = []
    prev = 0
    for p in points:
        out.append(dec.decode(data[prev:p]))
        prev = p
    out.append(dec.finish())
    assert "".join(out) == text
