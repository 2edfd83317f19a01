"""aiohttp end-to-end client (anchor): ``ClientSession.ws_connect`` on asyncio.

Compression off, no message size limit. Pipelined: ``window`` sends, then one
send per echo received.
"""

from __future__ import annotations

import asyncio

import _common
import aiohttp


async def run(args) -> None:  # type: ignore[no-untyped-def]
    window = _common.window(args)
    payload = _common.payload(args.size)
    bad = 0

    async def batch(ws, n: int) -> None:  # type: ignore[no-untyped-def]
        nonlocal bad
        sent = min(window, n)
        for _ in range(sent):
            await ws.send_bytes(payload)
        for _ in range(n):
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.BINARY or len(msg.data) != len(payload):
                bad += 1
            if sent < n:
                sent += 1
                await ws.send_bytes(payload)

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(args.url, max_msg_size=0, compress=0) as ws:
            await batch(ws, args.warmup)
            meter = _common.Meter()
            meter.start()
            await batch(ws, args.count)
            meter.stop()
    _common.emit("aiohttp", args, meter, bad=bad)


def main() -> None:
    asyncio.run(run(_common.parse_args()))


if __name__ == "__main__":
    main()
