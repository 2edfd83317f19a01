"""Many connections on one loop: 1, 10, 100 and 1,000 clients pipelining 64 B messages.

Every connection keeps ``WINDOW`` (10) messages in flight through the same
picows echo server; the batch is shared evenly between them. wsx runs all
its clients on the default loop (``handle_frame`` replies with the next
message), picows all its connections on one uvloop. Figures: aggregate
messages per second and client CPU microseconds per message, medians of
``--reps`` rotating repetitions. The client scripts raise their own
``RLIMIT_NOFILE`` soft limit as far as the hard limit allows.

    python bench/fanout_bench.py [--quick] [--reps N] [--pin] [--connections 1,10,100,1000]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from e2e_bench import Column, run_matrix  # noqa: E402

CLIENTS = ["wsx-callback", "picows-uvloop"]
CONNECTIONS = [1, 10, 100, 1000]
WINDOW = 10
COUNT = 100000
METRICS = {
    "msgs_per_s": ("Fan-out: messages per second, all connections", "msgs/s", True),
    "cpu_us_per_msg": ("Fan-out: client CPU time per message (user+sys)", "us/msg", False),
}


def run(quick: bool = False, reps: int | None = None, pin: bool = False,
        connections: list[int] | None = None) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    count = COUNT // (5 if quick else 1)
    columns = [Column(f"{n} conn" + ("s" if n > 1 else ""), "pipelined", 64, max(count, n * 20),
                      extra=("--connections", str(n)), window=WINDOW)
               for n in connections or CONNECTIONS]
    return run_matrix("fanout", columns, CLIENTS, reps, pin, METRICS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--pin", action="store_true",
                    help="pin the server to the last CPU and the clients to the others")
    ap.add_argument("--connections", help="comma-separated counts (default 1,10,100,1000)")
    args = ap.parse_args(argv)
    info = common.machine_info()
    common.print_machine(info)
    result = run(args.quick, args.reps, args.pin,
                 [int(n) for n in args.connections.split(",")] if args.connections else None)
    print(f"\nresults: {common.save_results('fanout', {'machine': info, 'fanout': result})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
