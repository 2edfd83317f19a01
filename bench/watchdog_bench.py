"""What the slow-callback watchdog costs: its thread's CPU time against the client's.

The loop thread does no work for the watchdog; its cost is the
``wsx-watchdog`` thread's own CPU time (read from
``/proc/self/task/<tid>/schedstat``, Linux). One wsx client ping-pongs 64 B
messages with the picows echo server (``handle_frame`` replies) for
``--seconds``; then the client stays idle for as long. Printed: the
watchdog's CPU time in both phases, as a share of the client process's CPU
(busy) or of one core (idle), and the same for a bare Python thread waking
as often (the floor of any thread that wakes up).

    python bench/watchdog_bench.py [--seconds 10]

Run the installed build from outside the repository (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from typing import Any

import common  # noqa: E402

common.use_checkout()
from e2e_bench import EchoServer  # noqa: E402

import wsx  # noqa: E402


class PingPong(wsx.WebSocket):
    def handle_cast(self, msg: Any, d: dict[str, Any]) -> Any:
        return ("reply", ("binary", b"x" * 64), d)

    def handle_frame(self, frame: Any, d: dict[str, Any]) -> Any:
        d["n"] += 1
        if time.monotonic() < d["until"]:
            return ("reply", ("binary", b"x" * 64), d)
        d["done"].set()
        return ("ok", d)


def thread_cpu(thread: threading.Thread) -> float:
    """Seconds of CPU ``thread`` has used."""
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bare_thread_cpu(interval: float, seconds: float) -> float:
    """CPU seconds per second of a thread doing nothing but waking every ``interval``."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            time.sleep(interval)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(interval * 2)
    c0 = thread_cpu(t)
    time.sleep(seconds)
    used = thread_cpu(t) - c0
    stop.set()
    return used / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    server = EchoServer()
    try:
        d: dict[str, Any] = {"n": 0, "until": 0.0, "done": threading.Event()}
        client = wsx.start_link(server.url, PingPong, d, compress=False)
        loop = client.loop
        watchdog = next(t for t in threading.enumerate() if t.name == "wsx-watchdog")
        p0, w0 = process_cpu(), thread_cpu(watchdog)
        d["until"] = time.monotonic() + args.seconds
        wsx.cast(client, "go")
        if not d["done"].wait(args.seconds + 30):
            raise SystemExit("the ping-pong did not end")
        busy_process, busy_watchdog = process_cpu() - p0, thread_cpu(watchdog) - w0
        time.sleep(0.5)
        w0 = thread_cpu(watchdog)
        time.sleep(args.seconds)
        idle_watchdog = (thread_cpu(watchdog) - w0) / args.seconds
        wsx.stop(client)
    finally:
        server.close()
    interval = (loop.slow_callback or 0.2) / 2
    bare = bare_thread_cpu(interval, args.seconds)
    result = {
        "implementation": wsx.implementation,
        "slow_callback": loop.slow_callback,
        "messages": d["n"],
        "busy_client_cpu_s": busy_process,
        "busy_watchdog_cpu_s": busy_watchdog,
        "busy_share_of_client_cpu": busy_watchdog / busy_process,
        "busy_watchdog_ns_per_message": busy_watchdog / d["n"] * 1e9,
        "idle_watchdog_share_of_a_core": idle_watchdog,
        "bare_thread_share_of_a_core": bare,
    }
    print(f"wsx.implementation {wsx.implementation}, slow_callback {loop.slow_callback} s "
          f"(a look every {interval * 1000:.0f} ms)")
    print(f"busy ({d['n']} messages in {args.seconds:.0f} s): watchdog "
          f"{busy_watchdog * 1000:.2f} ms of CPU = {busy_watchdog / busy_process:.3%} of the "
          f"client's CPU ({result['busy_watchdog_ns_per_message']:.0f} ns per message)")
    print(f"idle: watchdog {idle_watchdog:.3%} of a core; a bare thread waking every "
          f"{interval * 1000:.0f} ms: "
          f"{bare:.3%}")
    print("results:", common.save_results("watchdog", result))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
