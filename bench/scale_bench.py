"""Scale: many idle connections on one event loop.

For 1,000 and 10,000 connections to the picows echo server
(``bench/echo_server_picows.py``, a fresh process per run), each contender runs in
a fresh subprocess that raises ``RLIMIT_NOFILE``, opens all the connections
on a single loop (at most 500 handshakes in flight at a time), and reports:

* ``connect_s``       -- wall time to have them all open;
* ``rss_kib_per_conn`` -- resident memory growth (``/proc/self/statm``) per connection;
* ``idle_cpu_pct``    -- CPU time (user+sys, ``getrusage``) of the whole
  process while the connections sit idle for 10 s (3 s with ``--quick``),
  as a percentage of one core.

Contenders: ``wsx`` (``wsx.start(..., async_connect=True)`` on the default
loop, compression off) and the anchor ``websockets-asyncio``
(``websockets.asyncio.client.connect``, compression off, keepalive pings off
since wsx sends none).

Run alone: ``python bench/scale_bench.py [--quick] [--counts 1000,10000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

COUNTS = [1000, 10000]
CONCURRENCY = 500
CONTENDERS = {"wsx": "wsx", "websockets-asyncio": "anchor"}


# ------------------------------------------------------------------ worker
def _rss_kib() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        resident = int(f.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") / 1024


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {want} needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def worker_wsx(url: str, n: int, idle: float) -> dict[str, Any]:
    import wsx

    sem = threading.Semaphore(CONCURRENCY)
    done = threading.Event()
    counts = {"ok": 0, "failed": 0}

    def finished() -> None:
        sem.release()
        if counts["ok"] + counts["failed"] >= n:
            done.set()

    class Idle(wsx.WebSocket):
        def handle_connect(self, conn: Any, state: Any) -> Any:
            counts["ok"] += 1  # on the loop thread: no race
            finished()
            return ("ok", state)

        def handle_disconnect(self, status: Any, state: Any) -> Any:
            if status.attempt_number == 1 and counts["ok"] + counts["failed"] < n:
                counts["failed"] += 1
                finished()
            return ("ok", state)

    wsx.get_default_loop()  # the loop thread exists before the baseline
    gc.collect()
    rss0 = _rss_kib()
    clients = []
    t0 = time.perf_counter()
    for _ in range(n):
        sem.acquire()
        clients.append(wsx.start(url, Idle, None, async_connect=True, compress=False,
                                 handle_initial_conn_failure=True))
    if not done.wait(300):
        raise SystemExit(f"timeout: {counts}")
    connect_s = time.perf_counter() - t0
    gc.collect()
    rss1 = _rss_kib()
    cpu0, w0 = _cpu(), time.perf_counter()
    time.sleep(idle)
    cpu1, w1 = _cpu(), time.perf_counter()
    return {"connected": counts["ok"], "failed": counts["failed"], "connect_s": connect_s,
            "rss_kib_per_conn": (rss1 - rss0) / max(1, counts["ok"]),
            "rss_mib_total": rss1 / 1024,
            "idle_cpu_pct": 100 * (cpu1 - cpu0) / (w1 - w0)}


def worker_websockets(url: str, n: int, idle: float) -> dict[str, Any]:
    import asyncio

    from websockets.asyncio.client import connect

    async def main() -> dict[str, Any]:
        sem = asyncio.Semaphore(CONCURRENCY)
        conns: list[Any] = []
        failed = 0

        async def one() -> None:
            nonlocal failed
            async with sem:
                try:
                    conns.append(await connect(url, compression=None, ping_interval=None))
                except Exception:  # noqa: BLE001 - counted
                    failed += 1

        gc.collect()
        rss0 = _rss_kib()
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        connect_s = time.perf_counter() - t0
        gc.collect()
        rss1 = _rss_kib()
        cpu0, w0 = _cpu(), time.perf_counter()
        await asyncio.sleep(idle)
        cpu1, w1 = _cpu(), time.perf_counter()
        return {"connected": len(conns), "failed": failed, "connect_s": connect_s,
                "rss_kib_per_conn": (rss1 - rss0) / max(1, len(conns)),
                "rss_mib_total": rss1 / 1024,
                "idle_cpu_pct": 100 * (cpu1 - cpu0) / (w1 - w0)}

    return asyncio.run(main())


def worker_main(args: argparse.Namespace) -> int:
    _raise_nofile(args.n)
    fn = worker_wsx if args.worker == "wsx" else worker_websockets
    out = fn(args.url, args.n, args.idle)
    out.update({"contender": args.worker, "n": args.n, "idle_s": args.idle})
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip closing thousands of connections one by one


# ------------------------------------------------------------ orchestrator
def _run_worker(name: str, url: str, count: int, idle: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name,
           "--url", url, "--n", str(count), "--idle", str(idle)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {res.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])


def run(quick: bool = False, reps: int | None = None, counts: list[int] | None = None,
        contenders: list[str] | None = None) -> dict[str, Any]:
    from e2e_bench import EchoServer

    reps = reps or (2 if quick else 3)
    idle = 3.0 if quick else 10.0
    counts = counts or COUNTS
    names = contenders or list(CONTENDERS)
    metrics = {"connect_s": ("time to connect all", "s", False),
               "rss_kib_per_conn": ("RSS per connection", "KiB", False),
               "idle_cpu_pct": (f"process CPU while idle ({idle:g} s)", "% of a core", False)}
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        m: {n: {} for n in names} for m in metrics}
    errors: dict[str, dict[str, str]] = {}
    runs: list[dict[str, Any]] = []
    columns = [f"{c:,} conns" for c in counts]
    for count, col in zip(counts, columns, strict=True):
        for order in common.rotations(names, reps):
            for name in order:
                # a fresh server (and port) per run: no leftovers of the previous run
                server = EchoServer()
                try:
                    out = _run_worker(name, server.url, count, idle)
                finally:
                    server.close()
                if "error" in out:
                    errors.setdefault(name, {})[col] = out["error"]
                    continue
                runs.append(out)
                if out["failed"]:
                    errors.setdefault(name, {})[col] = f"{out['failed']} connections failed"
                for m in metrics:
                    samples[m][name].setdefault(col, []).append(out[m])
        print(f"  [scale] {col} done", flush=True)
    kinds = {n: CONTENDERS[n] for n in names}
    anchors = [n for n in names if kinds[n] == "anchor"]
    result: dict[str, Any] = {"reps": reps, "idle_s": idle, "concurrency": CONCURRENCY,
                              "kinds": kinds, "anchors": anchors, "errors": errors, "runs": runs}
    for m, (title, unit, hib) in metrics.items():
        med = {n: {c: common.median(v) for c, v in samples[m][n].items()} for n in names}
        ratios = common.print_table(f"Scale: {title}", columns, med, anchors, hib, unit, kinds)
        result[m] = {"unit": unit, "higher_is_better": hib, "median": med,
                     "ratio_vs_best_anchor": ratios, "samples": samples[m]}
    for name, errs in errors.items():
        for col, err in errs.items():
            print(f"  (error {name} {col}: {err})")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--counts", help="comma-separated connection counts (default 1000,10000)")
    ap.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--idle", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    info = common.machine_info()
    common.print_machine(info)
    counts = [int(c) for c in args.counts.split(",")] if args.counts else None
    result = run(args.quick, args.reps, counts)
    path = common.save_results("scale", {"machine": info, "scale": result})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
