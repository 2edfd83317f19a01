"""picows end-to-end client (anchor): ``--variant uvloop`` (default) or ``asyncio``.

The listener's ``on_ws_frame`` sends the next message for each echo, like the
wsx callback client. ``--connections N``: the batch is shared by N
connections on the loop, each with its own window.
"""

from __future__ import annotations

import asyncio
import resource
import time

import _common
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Echo(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.payload = b""
        self.size = 0
        self.target = self.sent = self.received = 0
        self.done: asyncio.Future[None] | None = None
        self.bad = 0
        self.rtts: list[int] | None = None
        self.t_sent = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.BINARY:
            return
        if self.rtts is not None:
            self.rtts.append(time.perf_counter_ns() - self.t_sent)
        if frame.payload_size != self.size:
            self.bad += 1
        self.received += 1
        if self.received >= self.target:
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
        elif self.sent < self.target:
            self.sent += 1
            if self.rtts is not None:
                self.t_sent = time.perf_counter_ns()
            transport.send(WSMsgType.BINARY, self.payload)

    def start(self, n: int, window: int) -> asyncio.Future[None]:
        self.target, self.sent, self.received = n, 0, 0
        self.done = asyncio.get_running_loop().create_future()
        if n == 0:
            self.done.set_result(None)
        if self.rtts is not None:
            self.rtts.clear()
            self.t_sent = time.perf_counter_ns()
        for _ in range(min(window, n)):
            self.sent += 1
            self.transport.send(WSMsgType.BINARY, self.payload)  # type: ignore[union-attr]
        return self.done


async def batch(listeners: list[Echo], n: int, window: int) -> None:
    k = len(listeners)
    done = [ls.start(n // k + (1 if i < n % k else 0), window) for i, ls in enumerate(listeners)]
    await asyncio.wait_for(asyncio.gather(*done), 300)


async def run(args, variant: str) -> None:  # type: ignore[no-untyped-def]
    window = _common.window(args)
    payload = _common.payload(args.size)
    listeners = []
    transports = []
    for _ in range(args.connections):
        transport, listener = await ws_connect(Echo, args.url, max_frame_size=64 * 1024 * 1024)
        listener.payload = payload
        listener.size = args.size
        listener.rtts = [] if args.latency else None
        listeners.append(listener)
        transports.append(transport)
    await batch(listeners, args.warmup, window)
    meter = _common.Meter()
    meter.start()
    await batch(listeners, args.count, window)
    meter.stop()
    for transport in transports:
        transport.send_close()
        transport.disconnect()
    extra = {}
    if args.latency:
        extra["rtt_us"] = _common.percentiles([t for ls in listeners for t in ls.rtts or ()])
    _common.emit(f"picows-{variant}", args, meter, bad=sum(ls.bad for ls in listeners), **extra)


def main() -> None:
    args = _common.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1024), hard))
    variant = args.variant or "uvloop"
    if variant == "uvloop":
        import uvloop

        uvloop.run(run(args, variant))
    else:
        asyncio.run(run(args, variant))


if __name__ == "__main__":
    main()
