"""A typed callback module with every callback, plain ``def``: must pass ``mypy --strict``.

Every result shape the dispatcher accepts appears once at least. Checked by
tests/test_typing.py; never run.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal

import wsx


@dataclass
class FeedState:
    seen: int = 0
    log: list[str] = field(default_factory=list)
    callers: list[wsx.Caller] = field(default_factory=list)


class Feed(wsx.WebSocket[FeedState]):
    url = "ws://127.0.0.1:8765/"
    trap_exit = True

    def handle_connect(self, conn: wsx.Conn, state: FeedState) -> wsx.ConnectResult[FeedState]:
        state.log.append(str(conn.url))
        return ("ok", state)

    def handle_frame(self, frame: wsx.DataFrame, state: FeedState) -> wsx.FrameResult[FeedState]:
        state.seen += 1
        match frame:
            case ("text", "bye"):
                return ("close", state)
            case ("text", "abort"):
                return ("close", (4000, "aborted"), state)
            case ("text", text):
                return ("reply", ("text", text.upper()), state)
            case ("binary", data):
                return ("reply", ("binary", bytearray(data)), state)
        return ("ok", state)

    def handle_cast(self, msg: Any, state: FeedState) -> wsx.FrameResult[FeedState]:
        if msg == "fragments":
            return ("reply", ("fragment", "text", "hel"), state)
        if msg == "more":
            return ("reply", ("continuation", b"l"), state)
        if msg == "end":
            return ("reply", ("finish", "o"), state)
        if msg == "code":
            return ("close", (wsx.CloseCode.GOING_AWAY, ""), state)
        return ("ok", state)

    def handle_call(
        self, request: Any, caller: wsx.Caller, state: FeedState
    ) -> wsx.FrameResult[FeedState]:
        if request == "later":
            state.callers.append(caller)
            return ("reply", ("text", "asked"), state)
        wsx.reply(caller, state.seen)
        return ("ok", state)

    def handle_info(self, msg: Any, state: FeedState) -> wsx.FrameResult[FeedState]:
        return ("reply", "ping", state)

    def handle_ping(self, frame: wsx.PingFrame, state: FeedState) -> wsx.FrameResult[FeedState]:
        if frame == "ping":
            return ("reply", "pong", state)
        return ("reply", ("pong", frame[1]), state)

    def handle_pong(
        self, frame: wsx.PongFrame, state: FeedState
    ) -> wsx.FrameResult[FeedState] | Awaitable[wsx.FrameResult[FeedState]]:
        return super().handle_pong(frame, state)  # the base's type: a result or an awaitable

    def handle_disconnect(
        self, status: wsx.DisconnectStatus, state: FeedState
    ) -> wsx.DisconnectResult[FeedState]:
        if status.clean:
            return ("ok", state)
        if status.code == 1012:
            return ("reconnect", state)
        if status.code == 1013:
            return ("reconnect", "ws://127.0.0.1:8766/", state)
        if status.code == 1014:
            return ("reconnect", wsx.Conn("ws://127.0.0.1:8767/"), state)
        if status.attempt_number > 3:
            return ("reconnect_after", 5, state)
        return ("reconnect_after", wsx.Backoff().delay(status.attempt_number), state)

    def terminate(self, reason: Any, state: FeedState) -> None:
        state.log.append(repr(reason))

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> wsx.CodeChangeResult[FeedState]:
        if isinstance(state, FeedState):
            return ("ok", state)
        return ("error", "not a FeedState")

    def format_status(self, opt: str, state: FeedState) -> dict[str, int]:
        return {"seen": state.seen}


class Wide(wsx.WebSocket[int]):
    """Overrides may take wider arguments than the base (any frame, a str option)."""

    def handle_frame(self, frame: wsx.Frame, state: int) -> wsx.FrameResult[int]:
        return ("ok", state + 1)

    def handle_ping(self, frame: object, state: int) -> wsx.FrameResult[int]:
        return ("ok", state)


class Sub(Feed):
    """A subclass of a typed module keeps its state type; start_link overridden as in WebSockex."""

    @classmethod
    def start_link(cls, state: FeedState, **opts: Any) -> wsx.Client:
        return wsx.start_link("ws://127.0.0.1:8766/", cls, state, **opts)

    def handle_info(self, msg: Any, state: FeedState) -> wsx.FrameResult[FeedState]:
        return ("ok", state)


def result_values() -> list[wsx.FrameResult[int]]:
    closing: Literal["close"] = "close"
    return [("ok", 1), ("reply", ("text", "x"), 2), (closing, 3), ("close", (1000, ""), 4)]


def frames() -> list[wsx.OutFrame]:
    received: wsx.Frame = ("binary", b"\x00")
    return [received, ("text", "a"), ("binary", memoryview(b"b")), "ping", ("pong", "p")]


def start_them(conn: wsx.Conn) -> list[wsx.Client]:
    """Every way to start a typed module (not run: the type checker reads it)."""
    clients = [
        wsx.start_link("ws://127.0.0.1:8765/", Feed, FeedState()),
        wsx.start_link(conn, Feed, FeedState(), name="feed"),
        wsx.start("ws://127.0.0.1:8765/", Feed, FeedState(), async_connect=True),
        wsx.start_link("ws://127.0.0.1:8765/", Feed(), FeedState()),
        wsx.start_link("ws://127.0.0.1:8765/", Sub, FeedState()),
        wsx.start_link("ws://127.0.0.1:8765/", Wide, 0),
        wsx.start_link("ws://127.0.0.1:8765/", sys.modules[__name__], {"any": "state"}),
        wsx.start_link("ws://127.0.0.1:8765/", sys.modules[__name__]),
        Feed.start_link(FeedState()),
        Feed.start_link(FeedState(), loop="own"),
        Sub.start_link(FeedState(), debug=["trace"]),
    ]
    wsx.send_frame(clients[0], ("text", "hello"))
    wsx.send_frame(clients[0], ("close", 1000, "bye"))
    wsx.send_frame(clients[0], "close")
    return clients
