"""A typed callback module with ``async def`` callbacks: must pass ``mypy --strict``.

Checked by tests/test_typing.py; never run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import wsx
import wsx.aio

Queue = asyncio.Queue[str]


class AsyncFeed(wsx.WebSocket[Queue]):
    async def handle_connect(self, conn: wsx.Conn, state: Queue) -> wsx.ConnectResult[Queue]:
        await state.put("connected")
        return ("ok", state)

    async def handle_frame(self, frame: wsx.DataFrame, state: Queue) -> wsx.FrameResult[Queue]:
        if frame[0] == "text":
            await state.put(frame[1])
            return ("ok", state)
        return ("reply", ("binary", frame[1]), state)

    async def handle_cast(self, msg: Any, state: Queue) -> wsx.FrameResult[Queue]:
        await asyncio.sleep(0)
        return ("close", state)

    async def handle_call(
        self, request: Any, caller: wsx.Caller, state: Queue
    ) -> wsx.FrameResult[Queue]:
        wsx.reply(caller, state.qsize())
        return ("close", (1001, "going"), state)

    async def handle_info(self, msg: Any, state: Queue) -> wsx.FrameResult[Queue]:
        return ("ok", state)

    async def handle_ping(self, frame: wsx.PingFrame, state: Queue) -> wsx.FrameResult[Queue]:
        return ("reply", "pong", state)

    async def handle_pong(self, frame: wsx.PongFrame, state: Queue) -> wsx.FrameResult[Queue]:
        return ("ok", state)

    async def handle_disconnect(
        self, status: wsx.DisconnectStatus, state: Queue
    ) -> wsx.DisconnectResult[Queue]:
        await state.put("disconnected")
        return ("reconnect_after", 0.5, state)

    async def terminate(self, reason: Any, state: Queue) -> None:
        await state.put("terminated")


class Mixed(wsx.WebSocket[int]):
    """Plain and async callbacks side by side."""

    def handle_frame(self, frame: wsx.DataFrame, state: int) -> wsx.FrameResult[int]:
        return ("ok", state + 1)

    async def handle_cast(self, msg: Any, state: int) -> wsx.FrameResult[int]:
        return ("reply", ("text", str(msg)), state)


async def main() -> None:
    queue: Queue = asyncio.Queue()
    client = await wsx.aio.start_link("ws://127.0.0.1:8765/", AsyncFeed, queue)
    other = await wsx.aio.start("ws://127.0.0.1:8765/", Mixed, 0, async_connect=True)
    await wsx.aio.send_frame(client, ("text", "subscribe"))
    await wsx.aio.send_frame(other, ("binary", b"\x01"))
    print(await wsx.aio.call(client, "size"))
    await wsx.aio.stop(client)
    await wsx.aio.stop(other)
