"""Masking throughput (RFC 6455 section 5.3): bytes per second by payload size.

Contenders:

* ``wsx-cython``          -- ``wsx._mask.mask(data, key)``: a new ``bytes``;
* ``wsx-cython-inplace``  -- ``wsx._mask.mask_inplace(bytearray, key)``;
* ``wsx-python``          -- ``wsx._mask_py.mask`` (the pure-Python fallback);
* ``websockets``          -- ``websockets.speedups.apply_mask(data, key)`` (new bytes);
* ``aiohttp``             -- aiohttp's Cython ``_websocket_mask_cython(key, bytearray)``
  (in place);
* ``copy``                -- ``bytes(bytearray)``: one read and one write of the
  payload, the memory-bandwidth limit of any masking routine that returns a
  new buffer.

Anchors for the ratio column: websockets and aiohttp. Every call is a
``functools.partial`` (no Python-level wrapper), so that small sizes measure
the routines' own call overhead.

Run alone: ``python bench/mask_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SIZES = [16, 125, 1024, 16 * 1024, 64 * 1024, 1 << 20, 16 << 20]
KEY = b"\x37\xfa\x21\x3d"
ANCHORS = ["websockets", "aiohttp"]

Factory = Callable[[bytes, bytearray], Callable[[], Any]]


def contenders() -> tuple[dict[str, Factory], dict[str, str], dict[str, str]]:
    """``name -> factory(data, buf) -> zero-argument call``; kinds; skipped (name -> why)."""
    found: dict[str, Factory] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    key = KEY

    try:
        from wsx import _mask as cy

        found["wsx-cython"] = lambda data, buf: partial(cy.mask, data, key)
        found["wsx-cython-inplace"] = lambda data, buf: partial(cy.mask_inplace, buf, key)
        kinds["wsx-cython"] = kinds["wsx-cython-inplace"] = "wsx"
    except ImportError as exc:
        skipped["wsx-cython"] = f"wsx._mask not built: {exc}"

    from wsx import _mask_py as py

    found["wsx-python"] = lambda data, buf: partial(py.mask, data, key)
    kinds["wsx-python"] = "wsx"

    try:
        from websockets.speedups import apply_mask

        found["websockets"] = lambda data, buf: partial(apply_mask, data, key)
        kinds["websockets"] = "anchor"
    except ImportError as exc:
        skipped["websockets"] = str(exc)

    aio_mask = None
    try:  # aiohttp >= 3.10
        from aiohttp._websocket.mask import _websocket_mask_cython as aio_mask
    except ImportError:
        try:
            from aiohttp._websocket import _websocket_mask_cython as aio_mask  # type: ignore
        except ImportError:
            try:
                from aiohttp._websocket.helpers import websocket_mask as aio_mask
            except ImportError:
                try:
                    from aiohttp.http_websocket import websocket_mask as aio_mask  # type: ignore
                except ImportError as exc:
                    skipped["aiohttp"] = str(exc)
    if aio_mask is not None:
        name = getattr(aio_mask, "__name__", "")
        if "python" in name:
            skipped["aiohttp"] = f"only the pure-Python mask is available ({name})"
        else:
            found["aiohttp"] = lambda data, buf: partial(aio_mask, key, buf)
            kinds["aiohttp"] = "anchor"

    found["copy"] = lambda data, buf: partial(bytes, buf)
    kinds["copy"] = "limit"
    return found, kinds, skipped


def check_correctness(found: dict[str, Factory]) -> None:
    """All contenders that return new bytes agree on a sample (in-place ones checked too)."""
    from wsx import _mask_py as py

    data = bytes(range(256)) * 5 + b"xyz"
    expected = py.mask(data, KEY)
    for name, factory in found.items():
        if name == "copy":
            continue
        buf = bytearray(data)
        out = factory(data, buf)()
        got = bytes(buf) if out is None else out
        if got != expected:
            raise AssertionError(f"mask contender {name} gives a wrong result")


def run(
    quick: bool = False, reps: int | None = None, sizes: list[int] | None = None
) -> dict[str, Any]:
    found, kinds, skipped = contenders()
    check_correctness(found)
    reps = reps or (3 if quick else 5)
    min_time = 0.04 if quick else 0.2
    sizes = sizes or SIZES
    names = list(found)
    # samples[name][size] = list of bytes/s
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    labels = [common.size_label(s) for s in sizes]
    for size, label in zip(sizes, labels, strict=True):
        data = os.urandom(size)
        for order in common.rotations(names, reps):
            fns = {name: found[name](data, bytearray(data)) for name in order}
            # One sample each: the fastest of 10 loops, the contenders in turns.
            times = common.interleaved_times(fns, min_time * len(fns))
            for name in order:
                samples[name].setdefault(label, []).append(size / times[name])
    medians = {n: {lab: common.median(v) for lab, v in samples[n].items()} for n in names}
    ratios = common.print_table("Masking throughput", labels, medians, ANCHORS, True,
                                "bytes/s", kinds)
    for name, why in skipped.items():
        print(f"  (skipped {name}: {why})")
    return {"unit": "bytes/s", "higher_is_better": True, "anchors": ANCHORS, "kinds": kinds,
            "reps": reps, "median": medians, "ratio_vs_best_anchor": ratios,
            "samples": samples, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    args = ap.parse_args(argv)
    info = common.machine_info()
    common.print_machine(info)
    result = run(args.quick, args.reps)
    path = common.save_results("mask", {"machine": info, "mask": result})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
