"""End-to-end echo benchmark: real sockets, one echo server, one client process at a time.

The server is ``bench/echo_server_picows.py`` (picows on uvloop) in its own
process, started once for the whole run. Every client runs in its own
subprocess (``bench/clients/*.py``), so that the CPU time it reports
(``resource.getrusage(RUSAGE_SELF)``: user + system, all threads) is its own.

For each message size (64 B, 4 KiB, 256 KiB) and mode -- ``pingpong`` (send
one, wait for the echo) and ``pipelined`` (100 messages in flight) -- each
client does a warm-up batch, then a measured batch of N messages, and prints
msgs/s, MB/s and CPU microseconds per message. Repetitions alternate the
order of the clients; medians are reported.

Clients: wsx (callback module replying from ``handle_frame``; and
``send_frame`` from another thread), picows (uvloop, asyncio), websockets
(asyncio, sync), websocket-client, aiohttp, and the limit: a raw socket
sending one pre-encoded masked frame.

Run alone: ``python bench/e2e_bench.py [--quick] [--clients wsx-callback,raw-socket] [--pin]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

CLIENT_DIR = common.BENCH_DIR / "clients"
SERVER = common.BENCH_DIR / "echo_server_picows.py"

# name -> (script, variant, kind)
CLIENTS: dict[str, tuple[str, str, str]] = {
    "wsx-callback": ("wsx_client.py", "callback", "wsx"),
    "wsx-thread": ("wsx_client.py", "thread", "wsx"),
    "wsx-call": ("wsx_client.py", "call", "wsx"),
    "wsx-aio-uvloop": ("wsx_aio_client.py", "uvloop", "wsx"),
    "wsx-aio-uvloop-async": ("wsx_aio_client.py", "uvloop-async", "wsx"),
    "wsx-aio-asyncio": ("wsx_aio_client.py", "asyncio", "wsx"),
    "picows-uvloop": ("picows_client.py", "uvloop", "anchor"),
    "picows-asyncio": ("picows_client.py", "asyncio", "anchor"),
    "websockets-asyncio": ("websockets_client.py", "asyncio", "anchor"),
    "websockets-sync": ("websockets_client.py", "sync", "anchor"),
    "websocket-client": ("websocket_client_client.py", "", "anchor"),
    "aiohttp": ("aiohttp_client.py", "", "anchor"),
    "raw-socket": ("raw_socket.py", "", "limit"),
}
SIZES = [64, 4096, 256 * 1024]
MODES = ["pingpong", "pipelined"]
WINDOW = 100
# messages per measured batch (full run); --quick divides by 5
COUNTS = {
    ("pingpong", 64): 20000,
    ("pingpong", 4096): 20000,
    ("pingpong", 256 * 1024): 2000,
    ("pipelined", 64): 100000,
    ("pipelined", 4096): 50000,
    ("pipelined", 256 * 1024): 3000,
}


class EchoServer:
    """The picows echo server in a subprocess."""

    def __init__(self, cpu: int | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0"],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the echo server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}/"
        if cpu is not None:
            os.sched_setaffinity(self.proc.pid, {cpu})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_client(name: str, url: str, size: int, mode: str, count: int,
               cpus: set[int] | None, timeout: float = 300,
               extra: tuple[str, ...] = (), window: int = WINDOW) -> dict[str, Any]:
    """Run one client script (``CLIENTS[name]``) against ``url``; its JSON line, or an error."""
    script, variant, _kind = CLIENTS[name]
    cmd = [sys.executable, str(CLIENT_DIR / script), "--url", url, "--size", str(size),
           "--mode", mode, "--count", str(count), "--window", str(window), *extra]
    if variant:
        cmd += ["--variant", variant]
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             preexec_fn=preexec, cwd=str(CLIENT_DIR))
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {res.returncode}: {' | '.join(tail)}"}
    out = json.loads(lines[-1])
    if out.get("bad"):
        out["error"] = f"{out['bad']} echoes of the wrong size"
    return out


class Column:
    """One column of a table: a scenario every client of the table runs."""

    def __init__(self, label: str, mode: str, size: int, count: int,
                 extra: tuple[str, ...] = (), window: int = WINDOW,
                 clients: list[str] | None = None) -> None:
        self.label, self.mode, self.size, self.count = label, mode, size, count
        self.extra, self.window = extra, window
        #: The clients that run it (None: all of the table's).
        self.clients = clients


def pinned_cpus(pin: bool) -> tuple[int | None, set[int] | None]:
    """(server CPU, client CPUs) with ``pin``: the server on the last CPU, clients on the rest."""
    if pin and hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            return cpus[-1], set(cpus[:-1])
    return None, None


def run_matrix(tag: str, columns: list[Column], names: list[str], reps: int, pin: bool,
               metrics: dict[str, tuple[str, str, bool]],
               value: Callable[[dict[str, Any], str], float] | None = None,
               tables: bool = True) -> dict[str, Any]:
    """Run every client of ``names`` on every column, ``reps`` times in rotating order.

    ``metrics`` maps a metric to (title, unit, higher is better); ``value(out,
    metric)`` reads it from a client's JSON line (default ``out[metric]``).
    Prints one table per metric (unless ``tables`` is False) and returns
    medians, ratios and samples.
    """
    value = value or (lambda out, m: float(out[m]))
    server_cpu, client_cpus = pinned_cpus(pin)
    server = EchoServer(server_cpu)
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        m: {n: {} for n in names} for m in metrics}
    errors: dict[str, dict[str, str]] = {}
    raw: list[dict[str, Any]] = []
    try:
        for col in columns:
            who = [n for n in names if col.clients is None or n in col.clients]
            t0 = time.perf_counter()
            for order in common.rotations(who, reps):
                for name in order:
                    out = run_client(name, server.url, col.size, col.mode, col.count,
                                     client_cpus, extra=col.extra, window=col.window)
                    out.setdefault("client_name", name)
                    out["column"] = col.label
                    raw.append(out)
                    if "error" in out:
                        errors.setdefault(name, {})[col.label] = out["error"]
                        continue
                    for m in metrics:
                        samples[m][name].setdefault(col.label, []).append(value(out, m))
            print(f"  [{tag}] {col.label}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        server.close()
    kinds = {n: CLIENTS[n][2] for n in names}
    anchors = [n for n in names if kinds[n] == "anchor"]
    result: dict[str, Any] = {
        "reps": reps,
        "columns": {c.label: {"mode": c.mode, "size": c.size, "count": c.count,
                              "window": c.window, "args": list(c.extra)} for c in columns},
        "pinned": {"server": server_cpu, "clients": sorted(client_cpus) if client_cpus else None},
        "kinds": kinds, "anchors": anchors, "errors": errors, "runs": raw}
    labels = [c.label for c in columns]
    for m, (title, unit, hib) in metrics.items():
        med = {n: {c: common.median(v) for c, v in samples[m][n].items()} for n in names}
        ratios = (common.print_table(title, labels, med, anchors, hib, unit, kinds)
                  if tables else {})
        result[m] = {"unit": unit, "higher_is_better": hib, "median": med,
                     "ratio_vs_best_anchor": ratios, "samples": samples[m]}
    for name, errs in errors.items():
        for label, err in errs.items():
            print(f"  (error {name} {label}: {err})")
    return result


#: The end-to-end table's metrics: (title, unit, higher is better).
METRICS = {
    "msgs_per_s": ("End to end: messages echoed per second", "msgs/s", True),
    "mb_per_s": ("End to end: payload MB (1e6) echoed per second", "MB/s", True),
    "cpu_us_per_msg": ("End to end: client CPU time per message (user+sys)", "us/msg", False),
}


def run(quick: bool = False, reps: int | None = None, clients: list[str] | None = None,
        pin: bool = False, sizes: list[int] | None = None, modes: list[str] | None = None
        ) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    # wsx-call: threads_bench; wsx-aio-*: aio_bench
    names = clients or [n for n in CLIENTS if n != "wsx-call" and not n.startswith("wsx-aio")]
    columns = [Column(f"{mode} {common.size_label(size)}", mode, size,
                      COUNTS[(mode, size)] // (5 if quick else 1))
               for mode in modes or MODES for size in sizes or SIZES]
    result = run_matrix("e2e", columns, names, reps, pin, METRICS)
    result["window"] = WINDOW
    result["counts"] = {f"{c.mode} {c.size}": c.count for c in columns}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--clients", help="comma-separated subset of: " + ", ".join(CLIENTS))
    ap.add_argument("--sizes", help="comma-separated byte sizes (default 64,4096,262144)")
    ap.add_argument("--modes", help="pingpong,pipelined")
    ap.add_argument("--pin", action="store_true",
                    help="pin the server to the last CPU and the clients to the others")
    args = ap.parse_args(argv)
    info = common.machine_info()
    common.print_machine(info)
    result = run(args.quick, args.reps,
                 args.clients.split(",") if args.clients else None, args.pin,
                 [int(s) for s in args.sizes.split(",")] if args.sizes else None,
                 args.modes.split(",") if args.modes else None)
    path = common.save_results("e2e", {"machine": info, "e2e": result})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
