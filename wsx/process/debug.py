"""Per-client debug state: trace printing, the event log and statistics.

This is what ``debug=["trace", "log", "statistics"]`` and the functions of
:mod:`wsx.sys` switch on. The trace lines follow OTP's ``*DBG*`` format, as
WebSockex prints them.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, TextIO

__all__ = ["DebugState", "DEFAULT_LOG_SIZE"]

DEFAULT_LOG_SIZE = 10

_MESSAGES = {
    "connect": "attempting to connect",
    "connected": "successfully connected",
    "send": "sending frame: {0!r}",
    "in": "received frame: {0!r}",
    "reply": "replying from {0} with {1!r}",
    "cast": "received cast: {0!r}",
    "info": "received info: {0!r}",
    "close": "closing with local reason: {0!r}",
    "close_frame": "sending close frame: {0!r}",
    "remote_close": "received close frame: {0!r}",
    "force_close": (
        "forcefully closed the connection because the server was taking too long to close"
    ),
    "disconnected": "disconnected: {0!r}",
    "reconnect": "attempting to reconnect (attempt {0})",
    "reconnect_after": "reconnecting in {0:.3f} s (attempt {1})",
    "connect_failed": "connection failed: {0!r}",
    "terminate": "terminating: {0!r}",
    "keepalive_ping": "no sign of life from the server: sending keepalive ping {0!r}",
    "keepalive_pong": "received keepalive pong {0!r}",
    "read_paused": "write buffer over write_limit ({0} bytes pending): reading paused",
    "read_resumed": "write buffer drained to {0} bytes: reading resumed",
}


def format_event(kind: str, args: tuple[Any, ...]) -> str:
    """The text of one debug event."""
    template = _MESSAGES.get(kind)
    if template is None:
        return f"{kind}: {args!r}"
    return template.format(*args)


class DebugState:
    """Which debug features are on for one client, and their data."""

    __slots__ = ("trace", "log", "stats", "out")

    def __init__(self, flags: Any = (), out: TextIO | None = None) -> None:
        self.trace = False
        self.log: deque[tuple[float, str, tuple[Any, ...]]] | None = None
        self.stats: dict[str, Any] | None = None
        self.out = out
        for flag in flags or ():
            if flag == "trace":
                self.trace = True
            elif flag == "log":
                self.log = deque(maxlen=DEFAULT_LOG_SIZE)
            elif isinstance(flag, tuple) and len(flag) == 2 and flag[0] == "log":
                self.log = deque(maxlen=int(flag[1]))
            elif flag == "statistics":
                self.stats = new_statistics()
            else:
                raise ValueError(
                    f"unknown debug flag {flag!r}: use 'trace', 'log', ('log', N) or 'statistics'"
                )

    @property
    def active(self) -> bool:
        """True when any feature is on (the client skips all debug work otherwise)."""
        return self.trace or self.log is not None or self.stats is not None

    def event(self, who: Any, kind: str, *args: Any) -> None:
        """Record one event: print it when tracing, keep it when logging."""
        if self.log is not None:
            self.log.append((time.time(), kind, args))
        if self.trace:
            print(f"*DBG* {who!r} {format_event(kind, args)}", file=self.out or sys.stderr,
                  flush=True)


def new_statistics() -> dict[str, Any]:
    """A fresh statistics record."""
    return {
        "start_time": time.time(),
        "frames_in": 0,
        "frames_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "messages_in": 0,
        "reconnects": 0,
        "connected_time": 0.0,
        "connected_since": None,
    }
