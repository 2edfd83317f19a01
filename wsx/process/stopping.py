"""A stop that was asked for: :func:`wsx.stop`, or an exit signal from a link.

A stop is a request, not an event: it may come while the connection is open
(then the close handshake runs first), while an ``async def`` callback waits
(then it waits for it, as a message would, at most until the stop's
deadline), while connecting or reconnecting (then the process terminates at
once), while an async ``handle_disconnect`` decides (then the stop wins: that
callback is cancelled, its decision would be ignored), or while ``terminate``
runs (then nothing more happens: the process is ending).
:class:`Stopping` keeps the one request and says, at each of those points,
what it means; :class:`~wsx.process.client.Client` asks it.

The deadline of a :func:`wsx.stop` (its ``timeout``) bounds what the stop
waits for: an async callback still waiting then is cancelled (its result
dropped) and the stop goes on; an async ``terminate`` still waiting then is
cancelled, and the process ends with the stop's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CloseCode, WSXError
from .lifecycle import CLOSING, OPEN, TERMINATED, TERMINATING

if TYPE_CHECKING:
    from .base import Process
    from .client import Client

__all__ = ["Stopping"]


class Stopping:
    """The stop asked of one client, and when it takes effect (loop thread only)."""

    __slots__ = ("client", "_asked", "_deadline")

    def __init__(self, client: Client) -> None:
        self.client = client
        self._asked: tuple[Any] | None = None  # (reason,): a reason may be None
        self._deadline: Any = None  # the timer of a stop's timeout

    @property
    def asked(self) -> bool:
        """True once a stop is asked for."""
        return self._asked is not None

    @property
    def reason(self) -> Any:
        """The exit reason asked for (only meaningful when :attr:`asked`)."""
        return None if self._asked is None else self._asked[0]

    def ask(self, reason: Any, timeout: float | None = None) -> None:
        """:func:`wsx.stop`: close (handshake) if open, then terminate with ``reason``.

        ``timeout``: the stop's deadline, after which an async callback it
        waits for is cancelled (None: no deadline).
        """
        if self._ending():
            return
        self._asked = (reason,)
        if timeout is not None and self._deadline is None:
            self._deadline = self.client.loop.call_later(timeout, self._expired)
        self.when_free()

    def exit_signal(self, other: Process, reason: Any) -> None:
        """A linked process exited abnormally: stop now, whatever callback waits (as in OTP).

        While ``terminate`` runs, the process is ending already: that one runs
        to its end (it runs once).
        """
        if self._ending():
            return
        self._asked = (("linked_exit", other, reason),)
        self.client.holds.abandon()
        self.when_free()

    def when_free(self) -> None:
        """Act on the stop once no async callback waits (``Holds.idle`` calls again)."""
        client = self.client
        if self._asked is None or self._ending():
            return
        job = client.holds.job
        if job is not None:
            if job.name != "handle_disconnect":
                return  # its end calls again
            client.holds.abandon()  # the stop wins over its decision: no need to wait
        client.holds.end_suspension()  # the close handshake needs the socket read again
        if client.holds.job is not None:
            return  # a held frame's async callback started: the stop waits for it too
        if self._ending():
            return
        state = client.lifecycle.state
        if state is OPEN:
            try:
                client.local_close(CloseCode.NORMAL, "", ("local", "normal"))
            except WSXError:
                client.terminate(self._asked[0])
        elif state is not CLOSING:
            client.terminate(self._asked[0])

    def ended(self) -> None:
        """The process ended: the deadline's timer goes (it would keep the client)."""
        deadline, self._deadline = self._deadline, None
        if deadline is not None:
            deadline.cancel()

    def _ending(self) -> bool:
        state = self.client.lifecycle.state
        return state is TERMINATING or state is TERMINATED

    def _expired(self) -> None:
        """The stop's deadline: cancel what it waits for, so that the process goes on to end."""
        self._deadline = None
        client = self.client
        job = client.holds.job
        if client.terminated or job is None:
            return  # the close handshake is bounded by close_timeout
        if client.lifecycle.state is TERMINATING:
            job.interrupt()  # its failure ends the process
            return
        client.holds.abandon()
        self.when_free()
