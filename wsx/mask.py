"""WebSocket payload masking (RFC 6455 section 5.3), fastest implementation available.

Two implementations share one API:

* ``wsx._mask`` -- a Cython extension that XORs 8 bytes per step (vectorised
  by the C compiler) and releases the GIL for large buffers.  It is compiled
  when wsx is installed, if a C compiler is there.
* ``wsx._mask_py`` -- the pure-Python twin, with the same results and errors.

At import, this module takes the extension unless :mod:`wsx._twins` says
otherwise (it was not built, or the environment variable ``WSX_NO_EXTENSIONS``
is set to a non-empty value other than ``"0"``); then it falls back to pure
Python.  ``IMPLEMENTATION`` says which one was chosen: ``"cython"`` or
``"python"``.

Exported functions:

``mask(data, key, offset=0) -> bytes``
    ``data`` XORed with the 4-byte ``key``, starting at key position
    ``offset % 4`` (so a payload can be masked in chunks).
``mask_inplace(buf, key, offset=0) -> None``
    The same, in place, on a writable buffer.
``frame_masked(header, payload, key) -> bytes``
    ``header + mask(payload, key)`` in one allocation: the send path.
"""

from __future__ import annotations

from typing import Any

from ._twins import compiled

__all__ = ["IMPLEMENTATION", "frame_masked", "mask", "mask_inplace"]

IMPLEMENTATION: str
_mask: Any = compiled("wsx._mask")
if _mask is None:
    from ._mask_py import frame_masked, mask, mask_inplace

    IMPLEMENTATION = "python"
else:
    frame_masked, mask, mask_inplace = _mask.frame_masked, _mask.mask, _mask.mask_inplace
    IMPLEMENTATION = "cython"
