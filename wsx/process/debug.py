"""Per-client debug state: trace printing, the event log, a log file, statistics, debug functions.

This is what ``debug=["trace", "log", "statistics", ("log_to_file", path)]``
and the functions of :mod:`wsx.sys` switch on. The trace lines follow OTP's
``*DBG*`` format, as WebSockex prints them; a log file gets the same lines.
A debug function installed with :func:`wsx.sys.install` is called as
``fn(fn_state, (kind, args), client)`` for every event and returns its next
state, or ``"done"`` to be removed (OTP's ``sys:install``); one that raises
is removed and logged.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["DebugState", "DEFAULT_LOG_SIZE"]

logger = logging.getLogger("wsx")

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
    "slow_callback": "callback {0} held the loop for more than {1:.3f} s",
}


def format_event(kind: str, args: tuple[Any, ...]) -> str:
    """The text of one debug event."""
    template = _MESSAGES.get(kind)
    if template is None:
        return f"{kind}: {args!r}"
    return template.format(*args)


class DebugState:
    """Which debug features are on for one client, and their data."""

    __slots__ = ("trace", "log", "stats", "out", "log_file", "funcs")

    def __init__(self, flags: Any = (), out: TextIO | None = None) -> None:
        self.trace = False
        self.log: deque[tuple[float, str, tuple[Any, ...]]] | None = None
        self.stats: dict[str, Any] | None = None
        self.out = out
        #: The file ``log_to_file`` writes *DBG* lines to, or None.
        self.log_file: TextIO | None = None
        #: Installed debug functions: ``[fn, fn_state]`` pairs.
        self.funcs: list[list[Any]] = []
        for flag in flags or ():
            if flag == "trace":
                self.trace = True
            elif flag == "log":
                self.log = deque(maxlen=DEFAULT_LOG_SIZE)
            elif isinstance(flag, tuple) and len(flag) == 2 and flag[0] == "log":
                self.log = deque(maxlen=int(flag[1]))
            elif flag == "statistics":
                self.stats = new_statistics()
            elif isinstance(flag, tuple) and len(flag) == 2 and flag[0] == "log_to_file":
                self.open_log_file(flag[1])
            else:
                raise ValueError(
                    f"unknown debug flag {flag!r}: use 'trace', 'log', ('log', N), "
                    "('log_to_file', path) or 'statistics'"
                )

    @property
    def active(self) -> bool:
        """True when any feature is on (the client skips all debug work otherwise)."""
        return (self.trace or self.log is not None or self.stats is not None
                or self.log_file is not None or bool(self.funcs))

    def open_log_file(self, path: Any) -> None:
        """Write the *DBG* lines to ``path`` (appended), or stop with None."""
        self.close()
        if path is not None:
            self.log_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def close(self) -> None:
        """Close the log file, if any (the client ends, or no_debug)."""
        log_file, self.log_file = self.log_file, None
        if log_file is not None:
            log_file.close()

    def connected(self, reconnect: bool) -> None:
        """A connection opened: count it in the statistics (if on)."""
        stats = self.stats
        if stats is not None:
            if reconnect:
                stats["reconnects"] += 1
            stats["connected_since"] = time.monotonic()

    def disconnected(self) -> None:
        """The connection ended: add its time to ``connected_time`` (if counting)."""
        stats = self.stats
        if stats is not None and stats["connected_since"] is not None:
            stats["connected_time"] += time.monotonic() - stats["connected_since"]
            stats["connected_since"] = None

    def install(self, fn: Callable[..., Any], fn_state: Any) -> None:
        """Call ``fn(fn_state, (kind, args), client)`` for every event (see the module docs)."""
        self.remove(fn)
        self.funcs.append([fn, fn_state])

    def remove(self, fn: Callable[..., Any]) -> None:
        """Stop calling ``fn``."""
        self.funcs = [pair for pair in self.funcs if pair[0] is not fn]

    def event(self, who: Any, kind: str, *args: Any) -> None:
        """Record one event: print it when tracing, keep it when logging, and so on."""
        if self.log is not None:
            self.log.append((time.time(), kind, args))
        if self.trace or self.log_file is not None:
            line = f"*DBG* {who!r} {format_event(kind, args)}"
            if self.trace:
                print(line, file=self.out or sys.stderr, flush=True)
            if self.log_file is not None:
                self.log_file.write(line + "\n")
                self.log_file.flush()
        if self.funcs:
            for pair in list(self.funcs):
                try:
                    pair[1] = pair[0](pair[1], (kind, args), who)
                except Exception:  # noqa: BLE001 - the debug function goes, the client stays
                    logger.exception("%r: debug function %r raised; removing it", who, pair[0])
                    pair[1] = "done"
                if isinstance(pair[1], str) and pair[1] == "done":
                    self.remove(pair[0])


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
        "slow_callbacks": 0,
        "connected_time": 0.0,
        "connected_since": None,
    }
