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
waits for: from then on it waits for no async callback (one waiting is
cancelled, its result dropped, and so is any a held frame starts) and goes on
to the close handshake (bounded by ``close_timeout``); an async ``terminate``
still waiting then is cancelled and the process ends at once, with the reason
``terminate`` was given. An exit signal waits for no callback from the start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CloseCode, WSXError
from .base import is_normal_exit
from .lifecycle import CLOSING, OPEN, TERMINATING

if TYPE_CHECKING:
    from .base import Process
    from .owner import ConnectionParts

__all__ = ["Stopping"]


class Stopping:
    """The stop asked of one client, and when it takes effect (loop thread only).

    Its phases: nothing asked; ``ASKED`` (it waits for an async callback, or
    for the close handshake); ``EXPIRED`` (the stop's deadline passed: it
    waits for no callback any more).
    """

    __slots__ = ("client", "_asked", "_phase", "_deadline")

    def __init__(self, client: ConnectionParts) -> None:
        self.client = client
        self._asked: tuple[Any] | None = None  # (reason,): a reason may be None
        self._phase: str | None = None  # None, ASKED or EXPIRED
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

        ``timeout``: the stop's deadline, after which it waits for no async
        callback (None: no deadline). While ``terminate`` runs, only the
        deadline is taken: the process ends with the reason it terminates with.
        """
        if self.client.terminated:
            return
        if timeout is not None and self._deadline is None:
            self._deadline = self.client.loop.call_later(timeout, self._expired)
        if self._terminating():
            return
        self._asked = (reason,)
        if self._phase is None:
            self._phase = ASKED
        self.when_free()

    def linked_exit(self, other: Process, reason: Any) -> None:
        """A linked process exited: ``("EXIT", other, reason)`` to ``handle_info`` when the
        module traps exits, else an exit signal unless the exit was normal."""
        client = self.client
        if client.terminated:
            return
        if getattr(client.dispatcher.cb, "trap_exit", False):
            client.mailbox.deliver("info", ("EXIT", other, reason))
        elif not is_normal_exit(reason):
            self.exit_signal(other, reason)

    def exit_signal(self, other: Process, reason: Any) -> None:
        """A linked process exited abnormally: stop now, whatever callback waits (as in OTP).

        While ``terminate`` runs, the process is ending already: that one runs
        to its end (it runs once).
        """
        if self._terminating() or self.client.terminated:
            return
        self._asked = (("linked_exit", other, reason),)
        self._phase = EXPIRED  # waits for no callback
        self.when_free()

    def when_free(self) -> None:
        """Act on the stop once no async callback waits (``Holds.idle`` calls again)."""
        client = self.client
        holds = client.holds
        if self._asked is None or self._terminating() or client.terminated:
            return
        job = holds.job
        if job is not None:
            if self._phase is not EXPIRED and job.name != "handle_disconnect":
                return  # its end calls again
            # Past the deadline, or the stop wins over handle_disconnect's decision.
            holds.abandon()
            if job.name == "handle_connect":  # never accepted: nothing of it is handled
                client.terminate(self._asked[0])
                return
        holds.end_suspension()  # the close handshake needs the socket read again
        if holds.job is not None:  # a held frame's async callback started
            if self._phase is not EXPIRED:
                return  # the stop waits for it too
            holds.abandon()
        if self._terminating() or client.terminated:
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

    def _terminating(self) -> bool:
        return self.client.lifecycle.state is TERMINATING

    def _expired(self) -> None:
        """The stop's deadline: wait for no callback any more, so that the process ends."""
        self._deadline = None
        client = self.client
        if client.terminated:
            return
        if self._terminating():
            if client.holds.job is not None:  # an async terminate waits: it ends now
                client.holds.abandon()
                client.terminated_with(client.terminate_reason)
            return
        self._phase = EXPIRED
        self.when_free()


#: The phases of a stop (see :class:`Stopping`).
ASKED = "asked"
EXPIRED = "expired"
