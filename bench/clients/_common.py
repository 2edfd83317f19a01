"""What every end-to-end client script shares: arguments, the meter, the JSON line.

A client script connects to the echo server, runs a warm-up batch, then the
measured batch, and prints one JSON line::

    {"client": ..., "size": ..., "mode": ..., "count": ..., "seconds": ...,
     "cpu_seconds": ..., "msgs_per_s": ..., "mb_per_s": ...,
     "cpu_us_per_msg": ...}

``mode`` is ``pingpong`` (send one message, wait for its echo),
``pipelined`` (keep ``window`` messages in flight) or ``stream`` (send the
whole batch back to back, then wait for the echoes: every message may be in
flight). With ``--latency`` (pingpong) the line also has the round-trip
percentiles ``rtt_us`` (p50, p99, p99.9, max), each round trip timed with
``time.perf_counter_ns``. ``cpu_seconds`` is
user + system time of this process (all its threads) from
``resource.getrusage(RUSAGE_SELF)`` over the measured batch; ``mb_per_s`` is
payload megabytes (10**6) echoed per second, counted once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def use_checkout() -> None:
    try:
        import wsx  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--mode", choices=["pingpong", "pipelined", "stream"], default="pingpong")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--variant", default="")
    ap.add_argument("--latency", action="store_true", help="time every round trip (pingpong)")
    ap.add_argument("--connections", type=int, default=1,
                    help="connections sharing the batch (each with its own window)")
    args = ap.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(10, min(1000, args.count // 10))
    return args


def window(args: argparse.Namespace) -> int:
    """Messages in flight at most: 1 (pingpong), ``--window`` (pipelined), all (stream)."""
    if args.mode == "pipelined":
        return int(args.window)
    if args.mode == "stream":
        return 1 << 62
    return 1


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and max of round-trip times, in microseconds."""
    s = sorted(samples_ns)
    if not s:
        return {}

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] / 1000

    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999), "max": s[-1] / 1000}


def payload(size: int) -> bytes:
    return os.urandom(size)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    def __init__(self) -> None:
        self.wall0 = self.cpu0 = 0.0
        self.seconds = self.cpu_seconds = 0.0

    def start(self) -> None:
        self.cpu0 = _cpu()
        self.wall0 = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.wall0
        self.cpu_seconds = _cpu() - self.cpu0


def emit(client: str, args: argparse.Namespace, meter: Meter, **extra: Any) -> None:
    n = args.count
    if args.connections != 1:
        extra.setdefault("connections", args.connections)
    secs = meter.seconds or float("nan")
    out = {
        "client": client,
        "size": args.size,
        "mode": args.mode,
        "window": min(window(args), n),
        "count": n,
        "seconds": meter.seconds,
        "cpu_seconds": meter.cpu_seconds,
        "msgs_per_s": n / secs,
        "mb_per_s": n * args.size / secs / 1e6,
        "cpu_us_per_msg": meter.cpu_seconds / n * 1e6,
    }
    out.update(extra)
    print(json.dumps(out), flush=True)
