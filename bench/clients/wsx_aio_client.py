"""wsx end-to-end client on an asyncio loop (``wsx.aio``), as the picows client on its loop.

``--variant uvloop`` (default) or ``asyncio``: the loop the client runs on;
``uvloop-async`` / ``asyncio-async``: the same with an ``async def
handle_frame`` (the cost of async callbacks against plain ones). The
callback sends the next message for each echo (``("reply", frame,
state)``); the batch starts with ``window`` frames from
``wsx.aio.send_frame``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import _common

_common.use_checkout()
import wsx  # noqa: E402
import wsx.aio  # noqa: E402


class Driver:
    """One client's state: the batch it runs and the future it completes."""

    def __init__(self, frame: tuple[str, bytes], size: int) -> None:
        self.frame = frame
        self.size = size
        self.target = self.sent = self.received = 0
        self.bad = 0
        self.done: asyncio.Future[None] | None = None


def _next(frame: Any, d: Driver) -> Any:
    if len(frame[1]) != d.size:
        d.bad += 1
    d.received += 1
    if d.received >= d.target:
        if d.done is not None and not d.done.done():
            d.done.set_result(None)
        return ("ok", d)
    if d.sent < d.target:
        d.sent += 1
        return ("reply", d.frame, d)
    return ("ok", d)


class PlainEcho(wsx.WebSocket):
    def handle_frame(self, frame: Any, d: Driver) -> Any:
        return _next(frame, d)


class AsyncEcho(wsx.WebSocket):
    async def handle_frame(self, frame: Any, d: Driver) -> Any:
        return _next(frame, d)


async def batch(client: wsx.Client, d: Driver, n: int, window: int) -> None:
    d.target, d.sent, d.received = n, 0, 0
    d.done = asyncio.get_running_loop().create_future()
    if n == 0:
        return
    for _ in range(min(window, n)):
        d.sent += 1
        await wsx.aio.send_frame(client, d.frame)
    await asyncio.wait_for(d.done, 300)


async def run(args: Any, name: str, module: Any) -> None:
    window = _common.window(args)
    d = Driver(("binary", _common.payload(args.size)), args.size)
    client = await wsx.aio.start_link(args.url, module, d, compress=False,
                                      max_message_size=None)
    await batch(client, d, args.warmup, window)
    meter = _common.Meter()
    meter.start()
    await batch(client, d, args.count, window)
    meter.stop()
    await wsx.aio.stop(client)
    _common.emit(name, args, meter, bad=d.bad, implementation=wsx.implementation)


def main() -> None:
    args = _common.parse_args()
    variant = args.variant or "uvloop"
    loop_kind, _, kind = variant.partition("-")
    module = AsyncEcho if kind == "async" else PlainEcho
    if args.connections != 1 or args.latency or args.mode == "stream":
        raise SystemExit("wsx_aio_client: pingpong and pipelined, one connection")
    name = f"wsx-aio-{variant}"
    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(run(args, name, module))
    else:
        asyncio.run(run(args, name, module))


if __name__ == "__main__":
    main()
