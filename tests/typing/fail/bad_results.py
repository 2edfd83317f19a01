"""Callbacks of a typed module returning what the dispatcher refuses: each marked
line must fail ``mypy --strict`` (checked by tests/test_typing.py; never run).
"""

from __future__ import annotations

from typing import Any, Literal

import wsx


class State:
    count = 0


class Bad(wsx.WebSocket[State]):
    def handle_connect(self, conn: wsx.Conn, state: State) -> wsx.ConnectResult[State]:
        return ("close", state)  # E: Incompatible return value type

    def handle_frame(self, frame: wsx.DataFrame, state: State) -> wsx.FrameResult[State]:
        if frame == ("text", "a"):
            return ("okay", state)  # E: Incompatible return value type
        if frame == ("text", "b"):
            return ("reply", state)  # E: Incompatible return value type
        if frame == ("text", "c"):
            return ("ok", 42)  # E: Incompatible return value type
        if frame == ("text", "d"):
            return ("close", 1000, state)  # E: Incompatible return value type
        return ("ok", state)

    def handle_cast(self, msg: Any, state: State) -> wsx.FrameResult[State]:
        if msg:
            return ("reply", ("text", b"bytes"), state)  # E: Incompatible return value type
        return ("reply", ("binary", "str"), state)  # E: Incompatible return value type

    def handle_info(self, msg: Any, state: State) -> wsx.FrameResult[State]:
        return ("reply", "close", state)  # E: Incompatible return value type

    def handle_ping(self, frame: wsx.PingFrame, state: State) -> wsx.FrameResult[State]:
        return ("close", ("1000", "normal"), state)  # E: Incompatible return value type

    def handle_disconnect(
        self, status: wsx.DisconnectStatus, state: State
    ) -> wsx.DisconnectResult[State]:
        if status.clean:
            return ("reconnect_after", "soon", state)  # E: Incompatible return value type
        return ("reply", "ping", state)  # E: Incompatible return value type

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> wsx.CodeChangeResult[State]:
        return ("ok", "not a State")  # E: Incompatible return value type


class BadAsync(wsx.WebSocket[State]):
    async def handle_frame(self, frame: wsx.DataFrame, state: State) -> wsx.FrameResult[State]:
        return ("okay", state)  # E: Incompatible return value type

    async def handle_cast(self, msg: Any, state: State) -> wsx.FrameResult[int]:  # E: of "handle_cast" incompatible with return type
        return ("ok", 1)


class BadSignatures(wsx.WebSocket[State]):
    def handle_frame(
        self, frame: tuple[Literal["text"], str], state: State  # E: Argument 1 of "handle_frame" is incompatible with supertype
    ) -> wsx.FrameResult[State]:
        return ("ok", state)

    def handle_info(self, msg: Any, state: int) -> wsx.FrameResult[int]:  # E: Argument 2 of "handle_info" is incompatible with supertype
        return ("ok", state)

    def handle_ping(self, frame: wsx.PingFrame, state: State) -> tuple[str, State]:  # E: of "handle_ping" incompatible with return type
        return ("ok", state)
