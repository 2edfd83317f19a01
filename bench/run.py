"""Run the wsx benchmark suite.

    python bench/run.py [--quick] [--only mask,codec,e2e,threads,fanout,latency,scale,aio]
                        [--reps N] [--pin]

Prints the machine (CPU model, cores) and the versions of everything
measured, then one table per benchmark: medians over alternating
repetitions, each figure with its ratio to the best anchor (third-party
library) of the same run (``> 1.00x`` = better than the best anchor). All
results, with every sample, go to ``bench/results/run-<UTC time>.json``.

The anchors come with the ``bench`` extra: ``pip install -e '.[bench]'``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

BENCHMARKS = ["mask", "codec", "e2e", "threads", "fanout", "latency", "scale", "aio"]
MODULES = {"mask": "mask_bench", "codec": "codec_bench", "e2e": "e2e_bench",
           "threads": "threads_bench", "fanout": "fanout_bench", "latency": "latency_bench",
           "scale": "scale_bench", "aio": "aio_bench"}
PINNABLE = {"e2e", "threads", "fanout", "latency", "aio"}
ANCHOR_MODULES = {"picows": "picows", "websockets": "websockets",
                  "websocket-client": "websocket", "aiohttp": "aiohttp",
                  "wsproto": "wsproto", "uvloop": "uvloop"}


def missing_anchors() -> list[str]:
    missing = []
    for dist, mod in ANCHOR_MODULES.items():
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(dist)
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wsx benchmark suite")
    ap.add_argument("--quick", action="store_true",
                    help="fewer repetitions and shorter runs (a few minutes in all)")
    ap.add_argument("--only", default=",".join(BENCHMARKS),
                    help="comma-separated subset of: " + ",".join(BENCHMARKS))
    ap.add_argument("--reps", type=int, help="repetitions per figure (median reported)")
    ap.add_argument("--pin", action="store_true",
                    help="e2e: pin the echo server to the last CPU, clients to the others")
    args = ap.parse_args(argv)
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in selected if b not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    info = common.machine_info()
    common.print_machine(info)
    missing = missing_anchors()
    if missing:
        print(f"warning: anchors not installed: {', '.join(missing)} "
              "(pip install -e '.[bench]'); their rows are skipped or fail")
    if info["versions"]["wsx.implementation"] != "cython":
        print("warning: wsx runs on its pure-Python fallback (the extension is not built)")

    payload: dict = {"machine": info, "argv": sys.argv[1:], "quick": args.quick,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    t_all = time.perf_counter()
    path = common.save_results("run", payload)
    for name in selected:
        print(f"\n# {name}" + (" (quick)" if args.quick else ""), flush=True)
        mod = importlib.import_module(MODULES[name])
        t0 = time.perf_counter()
        kwargs = {"pin": args.pin} if name in PINNABLE else {}
        try:
            payload[name] = mod.run(args.quick, args.reps, **kwargs)
        except Exception as exc:  # noqa: BLE001 - keep the other benchmarks' results
            print(f"  {name} failed: {type(exc).__name__}: {exc}")
            payload[name] = {"error": f"{type(exc).__name__}: {exc}"}
        payload.setdefault("seconds", {})[name] = time.perf_counter() - t0
        # save after every benchmark: an interrupted run keeps what it measured
        _resave(path, payload)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s; results: {path}")
    return 0


def _resave(path, payload: dict):  # type: ignore[no-untyped-def]
    import json

    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
