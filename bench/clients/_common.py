"""What every end-to-end client script shares: arguments, the meter, the JSON line.

A client script connects to the echo server, runs a warm-up batch, then the
measured batch, and prints one JSON line::

    {"client": ..., "size": ..., "mode": ..., "count": ..., "seconds": ...,
     "cpu_seconds": ..., "msgs_per_s": ..., "mb_per_s": ...,
     "cpu_us_per_msg": ...}

``mode`` is ``pingpong`` (send one message, wait for its echo) or
``pipelined`` (keep ``window`` messages in flight). ``cpu_seconds`` is
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
    ap.add_argument("--mode", choices=["pingpong", "pipelined"], default="pingpong")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--variant", default="")
    args = ap.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(10, min(1000, args.count // 10))
    return args


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
    secs = meter.seconds or float("nan")
    out = {
        "client": client,
        "size": args.size,
        "mode": args.mode,
        "window": args.window if args.mode == "pipelined" else 1,
        "count": n,
        "seconds": meter.seconds,
        "cpu_seconds": meter.cpu_seconds,
        "msgs_per_s": n / secs,
        "mb_per_s": n * args.size / secs / 1e6,
        "cpu_us_per_msg": meter.cpu_seconds / n * 1e6,
    }
    out.update(extra)
    print(json.dumps(out), flush=True)
