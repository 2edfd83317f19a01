"""The one place that chooses between the compiled twins and the pure-Python modules.

Some modules of wsx have a compiled twin that speeds the same rules up:

* ``wsx._mask`` (from ``wsx/_mask.pyx``) for ``wsx._mask_py``;
* ``wsx.core._codec`` (``wsx/core/_codec.pyx``) for the parser and encoder
  of ``wsx.core.frames``;
* ``wsx.io._handoff`` (``wsx/io/_handoff.pyx``) for ``wsx.io.handoff.Signal``;
* ``wsx.io._epoll`` (``wsx/io/_epoll.pyx``): ``epoll_wait(2)`` for the
  loop's readiness backend, in place of ``select.epoll.poll`` (Linux);
* ``wsx.io._syscalls`` (``wsx/io/_syscalls.pyx``): ``send(2)`` and
  ``recv(2)`` for the transport's plain TCP sockets, in place of
  ``socket.send`` and ``socket.recv_into``;
* ``wsx.core._protocol``, ``wsx.io._transport``, ``wsx.io._schedule`` and
  ``wsx.process._dispatcher``: the very sources ``wsx/core/protocol.py``,
  ``wsx/io/transport.py``, ``wsx/io/schedule.py`` (the loop's iteration)
  and ``wsx/process/dispatcher.py`` compiled by Cython, their classes given
  C fields by ``_protocol.pxd``, ``_transport.pxd``, ``_schedule.pxd`` and
  ``_dispatcher.pxd``;
* ``wsx.process._reader`` (``wsx/process/_reader.pyx``): the compiled read
  path, in front of ``wsx.process.reader``.

Each of those modules asks :func:`compiled` for its twin. It returns
``None`` when the environment variable ``WSX_NO_EXTENSIONS`` is set to a
non-empty value other than ``"0"``, or when the twin was not built (no C
compiler at install time, or a platform it does not build on); the pure
module is used then. :func:`implementations` says what was chosen.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["DISABLED", "compiled", "implementations", "extensions_disabled"]


def extensions_disabled() -> bool:
    """True when ``WSX_NO_EXTENSIONS`` asks for the pure-Python modules."""
    return os.environ.get("WSX_NO_EXTENSIONS", "") not in ("", "0")


#: Read once, at the first import of wsx.
DISABLED = extensions_disabled()

#: Every compiled twin and what stands in for it when it is not used.
TWINS = {
    "wsx._mask": "wsx._mask_py",
    "wsx.core._codec": "wsx.core.frames (Python parser and encoder)",
    "wsx.io._handoff": "wsx.io.handoff.Signal",
    "wsx.io._epoll": "select.epoll.poll",
    "wsx.io._syscalls": "socket.socket.send and recv_into",
    "wsx.core._protocol": "wsx.core.protocol",
    "wsx.io._transport": "wsx.io.transport",
    "wsx.io._schedule": "wsx.io.schedule",
    "wsx.process._dispatcher": "wsx.process.dispatcher",
    "wsx.process._reader": "wsx.process.reader",
}

_chosen: dict[str, ModuleType | None] = {}


def compiled(name: str) -> ModuleType | None:
    """The compiled twin ``name`` (one of :data:`TWINS`), or None: use the pure module."""
    if name not in TWINS:
        raise KeyError(f"{name!r} is not a compiled twin of wsx (known: {', '.join(TWINS)})")
    if name in _chosen:
        return _chosen[name]
    module: ModuleType | None = None
    if not DISABLED:
        try:
            module = importlib.import_module(name)
        except ImportError:
            module = None
    _chosen[name] = module
    return module


def implementations() -> dict[str, str]:
    """``{twin: "cython" | "python"}`` for every twin (importing them if not done yet)."""
    return {name: "cython" if compiled(name) is not None else "python" for name in TWINS}
