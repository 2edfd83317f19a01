"""websockets end-to-end client (anchor): ``--variant asyncio`` (default) or ``sync``.

asyncio: ``websockets.asyncio.client.connect``; sync: ``websockets.sync.client.connect``
(a background thread reads the socket). Both with compression off and no
message size limit. Pipelined: ``window`` sends, then one send per echo received.
"""

from __future__ import annotations

import asyncio
import time

import _common

OPTS = {"compression": None, "max_size": None}


async def run_asyncio(args, payload: bytes, window: int) -> tuple[_common.Meter, int]:  # type: ignore[no-untyped-def]
    from websockets.asyncio.client import connect

    bad = 0
    rtts: list[int] | None = [] if args.latency else None

    async def batch(ws, n: int) -> None:  # type: ignore[no-untyped-def]
        nonlocal bad
        if rtts is not None:  # pingpong, each round trip timed
            rtts.clear()
            for _ in range(n):
                t0 = time.perf_counter_ns()
                await ws.send(payload)
                msg = await ws.recv()
                rtts.append(time.perf_counter_ns() - t0)
                if len(msg) != len(payload):
                    bad += 1
            return
        sent = min(window, n)
        for _ in range(sent):
            await ws.send(payload)
        for _ in range(n):
            msg = await ws.recv()
            if len(msg) != len(payload):
                bad += 1
            if sent < n:
                sent += 1
                await ws.send(payload)

    async with connect(args.url, **OPTS) as ws:
        await batch(ws, args.warmup)
        meter = _common.Meter()
        meter.start()
        await batch(ws, args.count)
        meter.stop()
    if rtts is not None:
        meter.rtt_us = _common.percentiles(rtts)  # type: ignore[attr-defined]
    return meter, bad


def run_sync(args, payload: bytes, window: int) -> tuple[_common.Meter, int]:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    bad = 0

    def batch(ws, n: int) -> None:  # type: ignore[no-untyped-def]
        nonlocal bad
        sent = min(window, n)
        for _ in range(sent):
            ws.send(payload)
        for _ in range(n):
            msg = ws.recv()
            if len(msg) != len(payload):
                bad += 1
            if sent < n:
                sent += 1
                ws.send(payload)

    with connect(args.url, **OPTS) as ws:
        batch(ws, args.warmup)
        meter = _common.Meter()
        meter.start()
        batch(ws, args.count)
        meter.stop()
    return meter, bad


def main() -> None:
    args = _common.parse_args()
    variant = args.variant or "asyncio"
    window = _common.window(args)
    payload = _common.payload(args.size)
    if variant == "asyncio":
        meter, bad = asyncio.run(run_asyncio(args, payload, window))
    else:
        meter, bad = run_sync(args, payload, window)
    extra = {"rtt_us": meter.rtt_us} if hasattr(meter, "rtt_us") else {}
    _common.emit(f"websockets-{variant}", args, meter, bad=bad, **extra)


if __name__ == "__main__":
    main()
