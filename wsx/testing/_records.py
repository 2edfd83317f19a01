"""What a :class:`~wsx.testing.Server` saw: its records, and the waits on them.

:class:`Records` is the part of the server that keeps what the connections
received and lets a test wait for it. The connections hand each new entry
to a ``_record_...`` method, which appends it to its record (dropping the
oldest past ``max_records``, counted in ``dropped``) and wakes the waits;
each ``wait_for...`` method waits under the server's condition until what
it asks for has been recorded, and names what the server saw when it times
out. The server declares the records and counters in its ``__init__``
(their documentation is there), and counts its connections itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ..core.frames import OP_TEXT
from ..core.headers import Headers

__all__ = ["Records", "RECORDS", "Request", "ReceivedFrame"]

T = TypeVar("T")

@dataclass(frozen=True)
class Request:
    """One HTTP request the server received (an upgrade, or not)."""

    target: str
    """The request target: path and query, e.g. ``"/feed?v=2"``."""
    headers: Headers
    """The request's headers (case-insensitive: ``headers.get("authorization")``)."""


class ReceivedFrame(NamedTuple):
    """One frame the server received from a client (unmasked)."""

    kind: str
    """``"text"``, ``"binary"``, ``"continuation"``, ``"ping"``, ``"pong"`` or ``"close"``."""
    payload: bytes
    """The payload, unmasked (for a text frame: UTF-8 bytes, maybe a piece of a character)."""
    fin: bool
    """False for every frame of a fragmented message but its last."""
    connection: int
    """Which connection it came on: 1 for the first one the server upgraded, and so on."""


#: The records a :class:`Server` keeps (each a list, capped at ``max_records``).
RECORDS = ("requests", "frames", "messages", "closes")


class Records:
    """The records of a :class:`~wsx.testing.Server` and the waits on them (its base).

    What these methods read, the server sets in its ``__init__``: the
    condition that guards its state and is notified at each change it
    records, the records and their cap, and its counters. Its
    ``_record_request`` (which makes a :class:`~wsx.testing.Request`) is
    its own.
    """

    if TYPE_CHECKING:
        _cond: threading.Condition
        max_records: int | None
        requests: list[Request]
        frames: list[ReceivedFrame]
        messages: list[tuple[str, str | bytes]]
        closes: list[tuple[int | None, str]]
        dropped: dict[str, int]
        attempts: int
        connections: int
        disconnects: int

        @property
        def open_connections(self) -> int: ...

    # -- waiting -----------------------------------------------------------
    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:
        """Wait until ``predicate()`` is true and return its value.

        It is called again at each change the server records. After
        ``timeout`` seconds it raises :class:`TimeoutError` naming ``what``
        and what the server saw.
        """
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"wsx.testing.Server: {what or predicate} did not happen "
                                   f"within {timeout} s; {self._summary()}")
            return predicate()

    def wait_for_connections(self, n: int = 1, timeout: float = 5.0) -> int:
        """Wait until ``n`` connections have been upgraded (in all)."""
        return self.wait_for(lambda: self.connections >= n and self.connections,
                             timeout, f"{n} connection(s)")

    def wait_for_attempts(self, n: int = 1, timeout: float = 5.0) -> int:
        """Wait until ``n`` TCP connections have been accepted (refused ones too)."""
        return self.wait_for(lambda: self.attempts >= n and self.attempts,
                             timeout, f"{n} connection attempt(s)")

    def wait_for_disconnects(self, n: int = 1, timeout: float = 5.0) -> int:
        """Wait until ``n`` upgraded connections have ended."""
        return self.wait_for(lambda: self.disconnects >= n and self.disconnects,
                             timeout, f"{n} disconnect(s)")

    def wait_for_messages(self, n: int = 1,
                          timeout: float = 5.0) -> list[tuple[str, str | bytes]]:
        """Wait until ``n`` messages have been received; return the first ``n``.

        (The first ``n`` that :attr:`messages` keeps: once it is full, the
        oldest are dropped.) ``ValueError`` if ``n`` is over ``max_records``:
        they could never all be kept.
        """
        if self.max_records is not None and n > self.max_records:
            raise ValueError(f"cannot wait for {n} messages: the server keeps at most "
                             f"max_records={self.max_records}")
        return self.wait_for(lambda: self.messages[:n] if len(self.messages) >= n else [],
                             timeout, f"{n} message(s)")

    def wait_for_message(self, message: str | bytes, count: int = 1,
                         timeout: float = 5.0) -> int:
        """Wait until ``message`` (text for ``str``, binary for bytes) came ``count`` times.

        It counts in :attr:`messages`, which keeps the newest ``max_records``.
        """
        kind = "text" if isinstance(message, str) else "binary"
        return self.wait_for(
            lambda: (k := self.messages.count((kind, message))) >= count and k,
            timeout, f"the {kind} message {message!r} received {count} time(s)")

    def wait_for_frames(self, kind: str, n: int = 1, timeout: float = 5.0) -> list[ReceivedFrame]:
        """Wait until ``n`` frames of ``kind`` (``"pong"``, ``"close"``...) came; return them."""
        def found() -> list[ReceivedFrame]:
            frames = [f for f in self.frames if f.kind == kind]
            return frames if len(frames) >= n else []
        return self.wait_for(found, timeout, f"{n} {kind} frame(s)")

    def wait_for_close(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for a client's close frame; return the first one's ``(code, reason)``."""
        return self.wait_for(lambda: self.closes[:1], timeout, "a close frame")[0]

    def _summary(self) -> str:
        """What the server saw, for the :class:`TimeoutError` of a wait."""
        last = ", ".join(repr(m) for m in self.messages[-3:])
        dropped = ", ".join(f"{n} {name}" for name, n in self.dropped.items() if n)
        if dropped:
            dropped = f"; dropped past max_records={self.max_records}: {dropped}"
        return (f"it saw {self.attempts} attempt(s), {self.connections} connection(s) "
                f"({self.open_connections} open), {self.disconnects} disconnect(s), "
                f"{len(self.messages)} message(s){f' (last: {last})' if last else ''}, "
                f"closes {self.closes[-3:]}{dropped}")

    # -- called by the connections ------------------------------------------
    def _record(self, name: str, item: Any) -> None:
        """Append ``item`` to the record ``name``, dropping its oldest past ``max_records``."""
        with self._cond:
            records: list[Any] = getattr(self, name)
            records.append(item)
            limit = self.max_records
            if limit is not None and len(records) > limit:
                excess = len(records) - limit
                del records[:excess]
                self.dropped[name] = self.dropped.get(name, 0) + excess
            self._cond.notify_all()

    def _record_frame(self, frame: ReceivedFrame) -> None:
        self._record("frames", frame)

    def _record_message(self, opcode: int, message: bytes) -> None:
        kind = "text" if opcode == OP_TEXT else "binary"
        self._record("messages", (kind, message.decode("utf-8") if kind == "text" else message))

    def _record_close(self, code: int | None, reason: str) -> None:
        self._record("closes", (code, reason))
