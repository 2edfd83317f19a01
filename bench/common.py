"""Helpers shared by the benchmark modules: timing, tables, machine info, JSON output.

Conventions used by every table:

* each figure is a **median** over several repetitions; the contenders are
  run in alternating order within a repetition (A B C, B C A, ...), so that
  drifts in clock speed or background load touch them all alike;
* the ratio column compares a figure with the **best anchor** (a third-party
  library) of the same row, in the "better" direction: ``> 1.00`` means
  better than the best anchor (faster, or less CPU / memory), ``< 1.00``
  worse. Rows marked ``limit`` are a physical bound, not an anchor.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def use_checkout() -> None:
    """Import wsx from this checkout (unless an installed wsx is found first)."""
    try:
        import wsx  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))


use_checkout()


# ----------------------------------------------------------------- timing
def _sized_loop(fn: Callable[[], Any], target: float) -> tuple[int, float]:
    """Warm ``fn`` up, then find how many calls take at least ``target`` seconds.

    Returns that number and the time the last loop took.
    """
    fn()  # warm up (and first-use allocations)
    number = 1
    perf = time.perf_counter
    while True:
        t0 = perf()
        for _ in range(number):
            fn()
        elapsed = perf() - t0
        if elapsed >= target:
            return number, elapsed
        # aim a bit above the target for the next attempt
        if elapsed <= 0:
            number *= 10
        else:
            number = max(number * 2, int(number * target * 1.2 / elapsed) + 1)


def time_per_call(fn: Callable[[], Any], min_time: float, best_of: int = 5) -> float:
    """Seconds per call of ``fn``: the fastest of ``best_of`` timed loops.

    The loop is sized to take at least ``min_time / best_of``; each of the
    ``best_of`` loops is timed and the fastest is kept (as ``timeit``
    advises: on a shared or virtual machine the slower loops measure
    interference from elsewhere, not the code).
    """
    number, elapsed = _sized_loop(fn, min_time / best_of)
    perf = time.perf_counter
    best = elapsed
    for _ in range(best_of - 1):
        t0 = perf()
        for _ in range(number):
            fn()
        best = min(best, perf() - t0)
    return best / number


def interleaved_times(
    fns: dict[str, Callable[[], Any]], min_time: float, rounds: int = 10
) -> dict[str, float]:
    """Seconds per call of each function: the fastest of ``rounds`` loops, taken in turns.

    Each function's loop is sized to take about ``min_time / rounds``; then
    every round times one loop of each function, in the order given, and the
    fastest loop of each is kept. Interleaving gives all of them the same
    share of the machine's quiet and busy moments (on a shared or virtual
    machine these last seconds, longer than one contender's loops).
    """
    numbers = {name: _sized_loop(fn, min_time / rounds)[0] for name, fn in fns.items()}
    perf = time.perf_counter
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            number = numbers[name]
            t0 = perf()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (perf() - t0) / number)
    return best


def rotations(names: Sequence[str], reps: int) -> list[list[str]]:
    """``reps`` orders of ``names``: each repetition starts one further along."""
    n = len(names)
    return [[names[(i + r) % n] for i in range(n)] for r in range(reps)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------ tables
def ratio(value: float, best: float | None, higher_is_better: bool) -> float | None:
    if best is None or not value or value != value or not best:
        return None
    return value / best if higher_is_better else best / value


def best_anchor(
    row: dict[str, float], anchors: Sequence[str], higher_is_better: bool
) -> float | None:
    vals = [row[a] for a in anchors if a in row and row[a] and row[a] == row[a]]
    if not vals:
        return None
    return max(vals) if higher_is_better else min(vals)


def fmt_num(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.2f}{suffix}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def print_table(
    title: str,
    columns: Sequence[str],
    rows: dict[str, dict[str, float]],
    anchors: Sequence[str],
    higher_is_better: bool,
    unit: str,
    kinds: dict[str, str] | None = None,
) -> dict[str, dict[str, float | None]]:
    """Print one table: a row per contender, per column the figure and its ratio.

    ``rows[name][column]`` is the median figure. Returns the ratios in the
    same shape. ``kinds[name]`` labels a row (``"wsx"``, ``"anchor"``, ``"limit"``).
    """
    kinds = kinds or {}
    ratios: dict[str, dict[str, float | None]] = {name: {} for name in rows}
    for col in columns:
        col_row = {name: rows[name].get(col, float("nan")) for name in rows}
        best = best_anchor(col_row, anchors, higher_is_better)
        for name in rows:
            ratios[name][col] = ratio(col_row[name], best, higher_is_better)
    name_w = max([len("contender")] + [len(n) for n in rows]) + 2
    cell_w = max([17] + [len(c) + 2 for c in columns])
    direction = "higher is better" if higher_is_better else "lower is better"
    print()
    print(f"## {title}  [{unit}, {direction}; (x) = vs best anchor, >1 = better]")
    header = "contender".ljust(name_w) + "kind    " + "".join(c.rjust(cell_w) for c in columns)
    print(header)
    print("-" * len(header))
    for name in rows:
        cells = []
        for col in columns:
            v = rows[name].get(col)
            r = ratios[name][col]
            rs = f"({r:.2f}x)" if r is not None else ""
            cells.append(f"{fmt_num(v)} {rs}".rjust(cell_w))
        print(name.ljust(name_w) + kinds.get(name, "").ljust(8) + "".join(cells))
    sys.stdout.flush()
    return ratios


# ------------------------------------------------------------ environment
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    wsx = importlib.import_module("wsx")
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "versions": {
            "wsx": getattr(wsx, "__version__", None),
            "wsx.implementation": wsx.implementation,
        },
    }
    for pkg in ("picows", "websockets", "websocket-client", "aiohttp", "wsproto", "uvloop"):
        info["versions"][pkg] = package_version(pkg)
    return info


def print_machine(info: dict[str, Any]) -> None:
    print(f"machine: {info['cpu']}, {info['cores_logical']} logical cores "
          f"({info['cores_usable']} usable), {info['platform']}")
    print(f"python {info['python']} ({info['python_implementation']})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    sys.stdout.flush()


def save_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return path


def size_label(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"
