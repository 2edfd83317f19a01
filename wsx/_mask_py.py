"""RFC 6455 section 5.3 payload masking in pure Python.

The twin of the compiled ``wsx._mask``: same functions, same results, same
exceptions.  Instead of a byte-by-byte loop it turns the payload and a
repeated key into two big integers and XORs those, which runs at C speed
inside ``int.from_bytes`` / ``int.to_bytes`` (linear in the length).

``wsx.mask`` uses this module when the extension is not available or when
``WSX_NO_EXTENSIONS`` is set.
"""

from __future__ import annotations

from operator import index
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # collections.abc.Buffer is 3.12+; the annotations are never evaluated
    from typing_extensions import Buffer

__all__ = ["frame_masked", "mask", "mask_inplace"]


def _byte_view(obj: Buffer, what: str) -> memoryview:
    """A flat unsigned-byte view of a C-contiguous buffer."""
    view = memoryview(obj)  # TypeError for str, int, ...
    if not view.c_contiguous:
        view.release()
        raise ValueError(f"{what} must be a C-contiguous buffer")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _key_bytes(key: Buffer, offset: int) -> bytes:
    """The 4-byte key rotated so that it starts at key position offset % 4."""
    with _byte_view(key, "key") as kv:
        if kv.nbytes != 4:
            raise ValueError(f"mask key must be exactly 4 bytes long, got {kv.nbytes}")
        k = kv.tobytes()
    rot = index(offset) & 3
    return k[rot:] + k[:rot]


def _xor(view: memoryview, k: bytes) -> bytes:
    """``view`` XORed with the (already rotated) key ``k``."""
    n = view.nbytes
    if n == 0:
        return b""
    q, r = divmod(n, 4)
    stream = k * q + k[:r]
    value = int.from_bytes(view, "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(n, "little")


def mask(data: Buffer, key: Buffer, offset: int = 0) -> bytes:
    """Return ``data`` XORed with the 4-byte ``key`` as new ``bytes``.

    ``data`` is any C-contiguous buffer (bytes, bytearray, memoryview, ...).
    Masking starts at key position ``offset % 4``, so a payload can be masked
    chunk by chunk by passing the number of bytes already masked.

    Raises TypeError if ``data`` or ``key`` is not bytes-like, ValueError if
    a buffer is not C-contiguous or ``key`` is not exactly 4 bytes long.
    """
    k = _key_bytes(key, offset)
    with _byte_view(data, "data") as view:
        return _xor(view, k)


def mask_inplace(buf: Buffer, key: Buffer, offset: int = 0) -> None:
    """XOR the writable buffer ``buf`` with the 4-byte ``key`` in place.

    ``buf`` is a bytearray, a writable memoryview (a slice of a bytearray at
    any alignment included) or another writable C-contiguous buffer.  Masking
    starts at key position ``offset % 4``.  Returns None.

    Raises TypeError if ``buf`` is read-only or not bytes-like, ValueError if
    it is not C-contiguous or ``key`` is not exactly 4 bytes long.
    """
    k = _key_bytes(key, offset)
    with _byte_view(buf, "buffer") as view:
        if view.readonly:
            raise TypeError(
                f"mask_inplace() needs a writable buffer, got a read-only {type(buf).__name__}"
            )
        if view.nbytes:
            view[:] = _xor(view, k)


def frame_masked(header: Buffer, payload: Buffer, key: Buffer) -> bytes:
    """Return ``header + mask(payload, key)``.

    This is the send hot path: a frame header (which, for a client frame,
    ends with the masking key itself) followed by the masked payload.
    """
    k = _key_bytes(key, 0)
    with _byte_view(header, "header") as hv, _byte_view(payload, "payload") as pv:
        return hv.tobytes() + _xor(pv, k)
