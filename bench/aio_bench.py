"""wsx on asyncio (``wsx.aio``): a client on uvloop against picows, websockets and aiohttp.

The same picows echo server and client scripts as ``e2e_bench.py``, ping-pong
(one message in flight) and pipelined (100 in flight), 64 B and 4 KiB:

* ``wsx-aio-uvloop`` -- a ``wsx.aio`` client on uvloop whose plain
  ``handle_frame`` sends the next message (``("reply", frame, state)``);
* ``wsx-aio-uvloop-async`` -- the same with ``async def handle_frame``: the
  cost of async callbacks against plain ones;
* ``wsx-aio-asyncio`` -- the plain one on asyncio's default loop;
* the anchors: ``picows-uvloop`` (its listener sends the next message),
  ``websockets-asyncio`` and ``aiohttp`` (a coroutine that sends and
  receives).

Figures: messages per second and client CPU microseconds per message,
medians of ``--reps`` rotating repetitions.

    python bench/aio_bench.py [--quick] [--reps N] [--pin]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from e2e_bench import COUNTS, Column, run_matrix  # noqa: E402

CLIENTS = ["wsx-aio-uvloop", "wsx-aio-uvloop-async", "wsx-aio-asyncio", "picows-uvloop",
           "websockets-asyncio", "aiohttp"]
METRICS = {
    "msgs_per_s": ("asyncio: messages echoed per second", "msgs/s", True),
    "cpu_us_per_msg": ("asyncio: client CPU time per message (user+sys)", "us/msg", False),
}


def run(quick: bool = False, reps: int | None = None, pin: bool = False) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    columns = [Column(f"{mode} {common.size_label(size)}", mode, size,
                      COUNTS[(mode, size)] // (5 if quick else 1))
               for mode in ("pingpong", "pipelined") for size in (64, 4096)]
    return run_matrix("aio", columns, CLIENTS, reps, pin, METRICS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--pin", action="store_true",
                    help="pin the server to the last CPU and the clients to the others")
    args = ap.parse_args(argv)
    info = common.machine_info()
    common.print_machine(info)
    result = run(args.quick, args.reps, args.pin)
    print(f"\nresults: {common.save_results('aio', {'machine': info, 'aio': result})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
