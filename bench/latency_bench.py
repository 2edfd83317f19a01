"""Round-trip latency: 64 B ping-pong, p50 / p99 / p99.9 in microseconds.

Each client times every round trip with ``time.perf_counter_ns`` (send to
echo) against the picows echo server: wsx with the callback module replying
(``wsx-callback``), wsx from the application's thread (``wsx.send_frame``,
then waiting for ``handle_frame`` to release a semaphore: ``wsx-thread``),
picows on uvloop and websockets on asyncio. A repetition's percentiles come
from its own round trips; the table gives their medians over ``--reps``
rotating repetitions.

    python bench/latency_bench.py [--quick] [--reps N] [--pin]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from e2e_bench import Column, run_matrix  # noqa: E402

CLIENTS = ["wsx-callback", "wsx-thread", "picows-uvloop", "websockets-asyncio"]
COUNT = 20000
PERCENTILES = ["p50", "p99", "p99.9"]


def run(quick: bool = False, reps: int | None = None, pin: bool = False) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    column = Column("pingpong 64 B", "pingpong", 64, COUNT // (5 if quick else 1),
                    extra=("--latency",))
    metrics = {p: (f"Latency {p}", "us", False) for p in PERCENTILES}
    result = run_matrix("latency", [column], CLIENTS, reps, pin, metrics,
                        value=lambda out, p: float(out["rtt_us"][p]), tables=False)
    rows = {n: {p: result[p]["median"][n].get(column.label, float("nan")) for p in PERCENTILES}
            for n in CLIENTS}
    result["table"] = {"median": rows, "ratio_vs_best_anchor": common.print_table(
        "Latency: 64 B round trip", PERCENTILES, rows, result["anchors"], False, "us",
        result["kinds"])}
    return result


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
    print(f"\nresults: {common.save_results('latency', {'machine': info, 'latency': result})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
