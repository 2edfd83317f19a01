"""Tests for payload masking: the Cython kernel, its pure-Python twin and wsx.mask."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsx
import wsx._mask_py
import wsx.mask

REQUIRE_EXTENSIONS = os.environ.get("WSX_REQUIRE_EXTENSIONS", "") not in ("", "0")


def _load_extension() -> ModuleType:
    """wsx._mask, or skip -- or fail when WSX_REQUIRE_EXTENSIONS is set."""
    try:
        return importlib.import_module("wsx._mask")
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            pytest.fail(f"WSX_REQUIRE_EXTENSIONS is set but wsx._mask cannot be imported: {exc}")
        pytest.skip(f"wsx._mask is not built: {exc}")


@pytest.fixture(params=["cython", "python", "selected"])
def impl(request: pytest.FixtureRequest) -> Any:
    if request.param == "cython":
        if not REQUIRE_EXTENSIONS:
            return pytest.importorskip("wsx._mask")
        return _load_extension()
    if request.param == "python":
        return wsx._mask_py
    return wsx.mask


def _implementations() -> list[ModuleType]:
    mods: list[ModuleType] = [wsx._mask_py, wsx.mask]
    try:
        mods.append(importlib.import_module("wsx._mask"))
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
    return mods


IMPLS = _implementations()


def reference(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """The RFC 6455 definition, byte by byte."""
    return bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(data))


keys = st.binary(min_size=4, max_size=4)
payloads = st.binary(min_size=0, max_size=10000)
offsets = st.integers(min_value=0, max_value=7)


# --- RFC 6455 example -------------------------------------------------------


def test_rfc6455_example(impl: Any) -> None:
    # RFC 6455 section 5.7: a masked "Hello" from client to server.
    key = bytes([0x37, 0xFA, 0x21, 0x3D])
    masked = bytes([0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert impl.mask(b"Hello", key) == masked
    assert impl.mask(masked, key) == b"Hello"
    frame = impl.frame_masked(b"\x81\x85" + key, b"Hello", key)
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")
    buf = bytearray(b"Hello")
    assert impl.mask_inplace(buf, key) is None
    assert buf == masked


def test_empty(impl: Any) -> None:
    assert impl.mask(b"", b"abcd") == b""
    assert type(impl.mask(b"", b"abcd")) is bytes
    buf = bytearray()
    impl.mask_inplace(buf, b"abcd")
    assert buf == b""
    assert impl.frame_masked(b"", b"", b"abcd") == b""
    assert impl.frame_masked(b"\x82\x80", b"", b"abcd") == b"\x82\x80"


@pytest.mark.parametrize(
    "n", [1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 8191, 8192, 8193, 65536 + 5, 262143, 262144, 262145]
)
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5, 6, 7, 1001])
def test_sizes_around_block_and_nogil_thresholds(impl: Any, n: int, offset: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    key = b"\x01\x80\xfe\x7f"
    expected = reference(data, key, offset)
    assert impl.mask(data, key, offset) == expected
    buf = bytearray(data)
    impl.mask_inplace(buf, key, offset)
    assert buf == expected


def test_offset_is_taken_modulo_4(impl: Any) -> None:
    data = bytes(range(50))
    key = b"\x10\x20\x30\x40"
    for offset in range(12):
        assert impl.mask(data, key, offset) == impl.mask(data, key, offset % 4)
    assert impl.mask(data, key, -1) == reference(data, key, 3)


def test_streaming_chunks_match_whole(impl: Any) -> None:
    data = os.urandom(1000)
    key = os.urandom(4)
    whole = impl.mask(data, key)
    pos = 0
    parts = []
    for size in (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 392):
        parts.append(impl.mask(data[pos : pos + size], key, pos))
        pos += size
    assert pos == len(data)
    assert b"".join(parts) == whole


def test_accepts_any_contiguous_buffer(impl: Any) -> None:
    data = bytes(range(256)) * 3
    key = b"wxyz"
    expected = reference(data, key)
    assert impl.mask(bytearray(data), key) == expected
    assert impl.mask(memoryview(data), key) == expected
    assert impl.mask(data, bytearray(key)) == expected
    assert impl.mask(data, memoryview(key)) == expected
    # A non-byte format is treated as its raw bytes.
    words = memoryview(bytearray(data)).cast("I")
    assert impl.mask(words, key) == expected
    assert impl.frame_masked(memoryview(b"hd"), bytearray(data), key) == b"hd" + expected


# --- property tests ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=payloads, key=keys, offset=offsets)
def test_matches_reference(data: bytes, key: bytes, offset: int) -> None:
    expected = reference(data, key, offset)
    for mod in IMPLS:
        result = mod.mask(data, key, offset)
        assert type(result) is bytes
        assert result == expected, mod.__name__


@settings(max_examples=200, deadline=None)
@given(data=payloads, key=keys, offset=offsets, start=st.integers(0, 15), tail=st.integers(0, 15))
def test_misaligned_slices(data: bytes, key: bytes, offset: int, start: int, tail: int) -> None:
    backing = bytes(range(start)) + data + bytes(range(tail))
    expected = reference(data, key, offset)
    for mod in IMPLS:
        arr = bytearray(backing)
        view = memoryview(arr)[start : start + len(data)]
        assert mod.mask(view, key, offset) == expected, mod.__name__
        mod.mask_inplace(view, key, offset)
        # The slice is masked, the bytes around it are untouched.
        assert arr == backing[:start] + expected + backing[start + len(data) :], mod.__name__


@settings(max_examples=100, deadline=None)
@given(data=payloads, key=keys, offset=offsets)
def test_mask_twice_is_identity(data: bytes, key: bytes, offset: int) -> None:
    for mod in IMPLS:
        assert mod.mask(mod.mask(data, key, offset), key, offset) == data
        buf = bytearray(data)
        mod.mask_inplace(buf, key, offset)
        mod.mask_inplace(buf, key, offset)
        assert buf == data


@settings(max_examples=100, deadline=None)
@given(data=payloads, key=keys, offset=offsets)
def test_inplace_equals_new_buffer(data: bytes, key: bytes, offset: int) -> None:
    for mod in IMPLS:
        buf = bytearray(data)
        assert mod.mask_inplace(buf, key, offset) is None
        assert bytes(buf) == mod.mask(data, key, offset)


@settings(max_examples=100, deadline=None)
@given(header=st.binary(max_size=14), data=payloads, key=keys)
def test_frame_masked_equals_header_plus_mask(header: bytes, data: bytes, key: bytes) -> None:
    for mod in IMPLS:
        result = mod.frame_masked(header, data, key)
        assert type(result) is bytes
        assert result == header + mod.mask(data, key) == header + reference(data, key)


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize("bad_key", [b"abc", b"abcde", b"", bytearray(3), memoryview(b"12345")])
def test_key_length(impl: Any, bad_key: Any) -> None:
    n = len(bad_key)
    with pytest.raises(ValueError, match=f"exactly 4 bytes.*got {n}"):
        impl.mask(b"data", bad_key)
    with pytest.raises(ValueError, match=f"got {n}"):
        impl.mask_inplace(bytearray(b"data"), bad_key)
    with pytest.raises(ValueError, match=f"got {n}"):
        impl.frame_masked(b"\x82\x84", b"data", bad_key)


def test_read_only_buffer_for_inplace(impl: Any) -> None:
    for ro in (b"data", memoryview(b"data"), memoryview(bytearray(b"data")).toreadonly()):
        with pytest.raises(TypeError, match="writable"):
            impl.mask_inplace(ro, b"abcd")
    assert bytes(ro) == b"data"


def test_str_and_other_non_buffers(impl: Any) -> None:
    with pytest.raises(TypeError):
        impl.mask("Hello", b"abcd")
    with pytest.raises(TypeError):
        impl.mask(b"Hello", "abcd")
    with pytest.raises(TypeError):
        impl.mask_inplace("Hello", b"abcd")
    with pytest.raises(TypeError):
        impl.frame_masked("hd", b"Hello", b"abcd")
    with pytest.raises(TypeError):
        impl.frame_masked(b"hd", "Hello", b"abcd")
    with pytest.raises(TypeError):
        impl.mask(12345, b"abcd")
    with pytest.raises(TypeError):
        impl.mask(b"Hello", b"abcd", 1.5)


def test_non_contiguous_buffer(impl: Any) -> None:
    strided = memoryview(bytearray(range(20)))[::2]
    with pytest.raises(ValueError, match="contiguous"):
        impl.mask(strided, b"abcd")
    with pytest.raises(ValueError, match="contiguous"):
        impl.mask_inplace(strided, b"abcd")
    with pytest.raises(ValueError, match="contiguous"):
        impl.frame_masked(b"", strided, b"abcd")


def test_error_types_agree_between_implementations() -> None:
    cases: list[tuple[str, tuple[Any, ...]]] = [
        ("mask", ("x", b"abcd")),
        ("mask", (b"x", b"abc")),
        ("mask", (memoryview(bytearray(8))[::2], b"abcd")),
        ("mask_inplace", (b"x", b"abcd")),
        ("mask_inplace", (bytearray(b"x"), b"abcde")),
        ("frame_masked", (b"", b"x", b"ab")),
        ("frame_masked", (None, b"x", b"abcd")),
    ]
    for name, args in cases:
        raised = set()
        for mod in IMPLS:
            with pytest.raises((TypeError, ValueError)) as info:
                getattr(mod, name)(*args)
            raised.add(info.type)
        assert len(raised) == 1, (name, raised)


# --- implementation selection ---------------------------------------------------------


def _implementation_in_subprocess(cwd: Path, **env_changes: str | None) -> str:
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    # Make the child import the same wsx as this process.
    root = str(Path(wsx.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # Run from a directory without a wsx/ in it: ``python -c`` puts the
    # working directory first on sys.path, ahead of PYTHONPATH.
    out = subprocess.run(
        [sys.executable, "-c", "import wsx.mask as m; print(m.IMPLEMENTATION)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_implementation_is_reported() -> None:
    assert wsx.mask.IMPLEMENTATION in ("cython", "python")
    expected = (
        "cython"
        if wsx.mask.mask is getattr(sys.modules.get("wsx._mask"), "mask", None)
        else "python"
    )
    assert wsx.mask.IMPLEMENTATION == expected


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_no_extensions_env_var_selects_python(value: str, tmp_path: Path) -> None:
    assert _implementation_in_subprocess(tmp_path, WSX_NO_EXTENSIONS=value) == "python"


@pytest.mark.parametrize("value", [None, "", "0"])
def test_extension_selected_when_built(value: str | None, tmp_path: Path) -> None:
    _load_extension()
    assert _implementation_in_subprocess(tmp_path, WSX_NO_EXTENSIONS=value) == "cython"
