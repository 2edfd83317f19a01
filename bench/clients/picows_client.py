"""picows end-to-end client (anchor): ``--variant uvloop`` (default) or ``asyncio``.

The listener's ``on_ws_frame`` sends the next message for each echo, like the
wsx callback client.
"""

from __future__ import annotations

import asyncio

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

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.BINARY:
            return
        if frame.payload_size != self.size:
            self.bad += 1
        self.received += 1
        if self.received >= self.target:
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
        elif self.sent < self.target:
            self.sent += 1
            transport.send(WSMsgType.BINARY, self.payload)

    async def batch(self, n: int, window: int) -> None:
        self.target, self.sent, self.received = n, 0, 0
        self.done = asyncio.get_running_loop().create_future()
        for _ in range(min(window, n)):
            self.sent += 1
            self.transport.send(WSMsgType.BINARY, self.payload)  # type: ignore[union-attr]
        await asyncio.wait_for(self.done, 300)


async def run(args, variant: str) -> None:  # type: ignore[no-untyped-def]
    window = args.window if args.mode == "pipelined" else 1
    transport, listener = await ws_connect(Echo, args.url, max_frame_size=64 * 1024 * 1024)
    listener.payload = _common.payload(args.size)
    listener.size = args.size
    await listener.batch(args.warmup, window)
    meter = _common.Meter()
    meter.start()
    await listener.batch(args.count, window)
    meter.stop()
    transport.send_close()
    transport.disconnect()
    _common.emit(f"picows-{variant}", args, meter, bad=listener.bad)


def main() -> None:
    args = _common.parse_args()
    variant = args.variant or "uvloop"
    if variant == "uvloop":
        import uvloop

        uvloop.run(run(args, variant))
    else:
        asyncio.run(run(args, variant))


if __name__ == "__main__":
    main()
