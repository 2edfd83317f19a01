"""websockets end-to-end client (anchor): ``--variant asyncio`` (default) or ``sync``.

asyncio: ``websockets.asyncio.client.connect``; sync: ``websockets.sync.client.connect``
(a background thread reads the socket). Both with compression off and no
message size limit. Pipelined: ``window`` sends, then one send per echo received.
"""

from __future__ import annotations

import asyncio

import _common

OPTS = {"compression": None, "max_size": None}


async def run_asyncio(args, payload: bytes, window: int) -> tuple[_common.Meter, int]:  # type: ignore[no-untyped-def]
    from websockets.asyncio.client import connect

    bad = 0

    async def batch(ws, n: int) -> None:  # type: ignore[no-untyped-def]
        nonlocal bad
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
    window = args.window if args.mode == "pipelined" else 1
    payload = _common.payload(args.size)
    if variant == "asyncio":
        meter, bad = asyncio.run(run_asyncio(args, payload, window))
    else:
        meter, bad = run_sync(args, payload, window)
    _common.emit(f"websockets-{variant}", args, meter, bad=bad)


if __name__ == "__main__":
    main()
