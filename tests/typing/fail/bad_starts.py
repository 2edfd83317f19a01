"""Starting a typed module with a state of another type, sending frames of the wrong
payload type: each marked line must fail ``mypy --strict`` (checked by
tests/test_typing.py; never run).
"""

from __future__ import annotations

import wsx
import wsx.aio


class Counter(wsx.WebSocket[int]):
    def handle_frame(self, frame: wsx.DataFrame, state: int) -> wsx.FrameResult[int]:
        return ("ok", state + 1)


def sync_starts(client: wsx.Client) -> None:
    wsx.start_link("ws://127.0.0.1:8765/", Counter, "zero")  # E: Cannot infer value of type parameter "S" of "start_link"
    wsx.start("ws://127.0.0.1:8765/", Counter, [0])  # E: Cannot infer value of type parameter "S" of "start"
    wsx.start_link("ws://127.0.0.1:8765/", Counter)  # E: Argument 2 to "start_link" has incompatible type "type[Counter]"
    wsx.start_link("ws://127.0.0.1:8765/", Counter(), None)  # E: Cannot infer value of type parameter "S" of "start_link"
    Counter.start_link("zero")  # E: Argument 1 to "start_link" of "WebSocket" has incompatible type
    Counter.start_link()  # E: Missing positional argument "state" in call to "start_link"
    wsx.send_frame(client, ("text", b"bytes"))  # E: Argument 2 to "send_frame" has incompatible type
    wsx.send_frame(client, ("binary", "str"))  # E: Argument 2 to "send_frame" has incompatible type
    wsx.send_frame(client, ("close", 1000))  # E: Argument 2 to "send_frame" has incompatible type


async def async_starts(client: wsx.Client) -> None:
    await wsx.aio.start_link("ws://127.0.0.1:8765/", Counter, 1.5)  # E: Cannot infer value of type parameter "S" of "start_link"
    await wsx.aio.start("ws://127.0.0.1:8765/", Counter, None)  # E: Cannot infer value of type parameter "S" of "start"
    await wsx.aio.send_frame(client, ("text", 1))  # E: Argument 2 to "send_frame" has incompatible type
