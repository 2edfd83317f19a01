"""Sending from the application's own threads: streams and request/response.

The same picows echo server and client scripts as ``e2e_bench.py``:

* **stream** -- the application's thread sends the whole batch back to back
  (``wsx.send_frame`` in a loop; ``handle_frame`` counts the echoes), against
  picows sending the batch from its own loop, websockets' sync client and
  websocket-client (send everything, then receive everything);
* **request** -- the application's thread sends one message and waits for
  its echo: ``wsx.send_frame`` + a semaphore released by ``handle_frame``
  (``wsx-thread``), ``wsx.call`` answered by ``wsx.reply`` from
  ``handle_frame`` (``wsx-call``), a picows round trip in its loop,
  websockets sync and websocket-client ``send`` + ``recv``.

Figures: messages per second and client CPU microseconds per message (all
threads of the client process), medians of ``--reps`` rotating repetitions.

    python bench/threads_bench.py [--quick] [--reps N] [--pin]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from e2e_bench import Column, run_matrix  # noqa: E402

STREAM = ["wsx-thread", "picows-uvloop", "websockets-sync", "websocket-client"]
REQUEST = ["wsx-thread", "wsx-call", "picows-uvloop", "websockets-sync", "websocket-client"]
COUNTS = {("stream", 64): 50000, ("stream", 4096): 20000,
          ("request", 64): 10000, ("request", 4096): 10000}
METRICS = {
    "msgs_per_s": ("Threads: messages per second", "msgs/s", True),
    "cpu_us_per_msg": ("Threads: client CPU time per message (user+sys)", "us/msg", False),
}


def run(quick: bool = False, reps: int | None = None, pin: bool = False) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    div = 5 if quick else 1
    columns = [Column(f"stream {common.size_label(size)}", "stream", size,
                      COUNTS[("stream", size)] // div, clients=STREAM) for size in (64, 4096)]
    columns += [Column(f"request {common.size_label(size)}", "pingpong", size,
                       COUNTS[("request", size)] // div, clients=REQUEST) for size in (64, 4096)]
    return run_matrix("threads", columns, REQUEST, reps, pin, METRICS)


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
    print(f"\nresults: {common.save_results('threads', {'machine': info, 'threads': result})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
