"""A bare ``wsx.WebSocket`` base (the state is ``Any``) and the bare aliases: must pass
``mypy --strict`` (the type parameter has a default).

Checked by tests/test_typing.py; never run.
"""

from __future__ import annotations

from typing import Any

import wsx


class Echo(wsx.WebSocket):
    def handle_frame(self, frame: wsx.Frame, state: Any) -> wsx.FrameResult:
        return ("reply", frame, state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("anything", "goes", "with", "Any")

    def handle_disconnect(self, status: wsx.DisconnectStatus, state: Any) -> wsx.DisconnectResult:
        return ("reconnect", state)


def run() -> wsx.Client:
    wsx.start_link("ws://127.0.0.1:8765/", Echo, [1, 2])
    wsx.start_link("ws://127.0.0.1:8765/", Echo, None)
    return wsx.start_link("ws://127.0.0.1:8765/", Echo)


def classify(result: wsx.FrameResult) -> str:
    return result[0]
