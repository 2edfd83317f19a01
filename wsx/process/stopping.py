"""A stop that was asked for: :func:`wsx.stop`, or an exit signal from a link.

A stop is a request, not an event: it may come while the connection is open
(then the close handshake runs first), while an ``async def`` callback waits
(then it waits for it, as a message would), while connecting or reconnecting
(then the process terminates at once), or while an async
``handle_disconnect`` decides (then the stop wins over its decision).
:class:`Stopping` keeps the one request and says, at each of those points,
what it means; :class:`~wsx.process.client.Client` asks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CloseCode, WSXError
from .lifecycle import CLOSING, OPEN

if TYPE_CHECKING:
    from .base import Process
    from .client import Client

__all__ = ["Stopping"]


class Stopping:
    """The stop asked of one client, and when it takes effect (loop thread only)."""

    __slots__ = ("client", "_asked")

    def __init__(self, client: Client) -> None:
        self.client = client
        self._asked: tuple[Any] | None = None  # (reason,): a reason may be None

    @property
    def asked(self) -> bool:
        """True once a stop is asked for."""
        return self._asked is not None

    @property
    def reason(self) -> Any:
        """The exit reason asked for (only meaningful when :attr:`asked`)."""
        return None if self._asked is None else self._asked[0]

    def ask(self, reason: Any) -> None:
        """:func:`wsx.stop`: close (handshake) if open, then terminate with ``reason``."""
        self._asked = (reason,)
        self.when_free()

    def exit_signal(self, other: Process, reason: Any) -> None:
        """A linked process exited abnormally: stop now, whatever callback waits (as in OTP)."""
        self._asked = (("linked_exit", other, reason),)
        self.client.holds.abandon()
        self.when_free()

    def when_free(self) -> None:
        """Act on the stop once no async callback waits (``Holds.idle`` calls again)."""
        client = self.client
        if self._asked is None or client.holds.job is not None:
            return
        client.holds.end_suspension()  # the close handshake needs the socket read again
        if client.terminated:
            return
        state = client.lifecycle.state
        if state is OPEN:
            try:
                client.local_close(CloseCode.NORMAL, "", ("local", "normal"))
            except WSXError:
                client.terminate(self._asked[0])
        elif state is not CLOSING:
            client.terminate(self._asked[0])
