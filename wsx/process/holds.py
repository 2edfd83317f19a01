"""What keeps a client from handling its frames and messages, and their release in order.

Two things hold a client: :func:`wsx.sys.suspend` (until
:func:`wsx.sys.resume`) and an ``async def`` callback that waits
(:mod:`wsx.process.awaiting`). While held, the frames read wait in the
dispatcher's inbox and the messages in the mailbox. A suspended client
stops reading its socket at once; one whose callback waits reads on (its
keepalive sees the server alive) until :data:`HELD_FRAMES` frames wait,
then stops: either way the server feels backpressure. Once nothing holds
it, :class:`Holds` handles what was held in order and reads again. A
connection that opens while the client is suspended calls ``handle_connect``
(and starts reading) only once resumed; a disconnect while suspended asks
``handle_disconnect`` only once resumed. The
flags themselves are the lifecycle's (``suspended``, ``awaiting``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .lifecycle import CLOSING, OPEN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .awaiting import AsyncCallback
    from .owner import ConnectionParts

__all__ = ["HELD_FRAMES", "Holds"]

#: Frames a client whose async callback waits (or that is suspended) holds
#: before it stops reading.
HELD_FRAMES = 64


logger = logging.getLogger("wsx")


class Holds:
    """The holds of one client (see the module documentation)."""

    __slots__ = ("client", "job", "deferred")

    def __init__(self, client: ConnectionParts) -> None:
        self.client = client
        #: The async callback the client awaits, or None.
        self.job: AsyncCallback | None = None
        #: The lifecycle step that waits for the suspension to end (the
        #: ``handle_connect`` of a connection that opened while suspended, a
        #: ``handle_disconnect``), or None.
        self.deferred: Callable[[], Any] | None = None

    def defer(self, step: Callable[[], Any] | None) -> None:
        """Run ``step`` once nothing holds the client (None: forget the one waiting)."""
        self.deferred = step

    # ------------------------------------------------------------ suspension
    def suspend(self) -> None:
        """Hold frames and messages (:func:`wsx.sys.suspend`)."""
        self.client.lifecycle.suspend()
        self._stop_reading()

    def resume(self) -> None:
        """End the suspension; handle what was held unless an async callback still awaits."""
        lifecycle = self.client.lifecycle
        if not lifecycle.suspended:
            return
        lifecycle.resume()
        self.release()

    def end_suspension(self) -> None:
        """For a stop: end any suspension and read again (the close handshake needs it)."""
        if self.client.lifecycle.suspended:
            self.client.lifecycle.resume()
        self.release()

    # -------------------------------------------------------- async callbacks
    def busy(self, job: AsyncCallback) -> None:
        """The async callback ``job`` awaits: hold until :meth:`idle`."""
        self.job = job
        self.client.lifecycle.awaiting_in(job.name)  # reading goes on: see full()

    def full(self) -> None:
        """:data:`HELD_FRAMES` frames wait: stop reading until the client is released."""
        self._stop_reading()

    def idle(self, job: AsyncCallback, then: Iterable[Callable[[], Any]] = ()) -> None:
        """``job`` finished (its result applied): run ``then``, then release the client."""
        if self.job is not job:
            return
        self.job = None
        client = self.client
        client.lifecycle.awaiting_in(None)
        for callback in then:
            callback()
        self.release()
        if self.job is None:  # (release may have started another async callback)
            client.stopping.when_free()  # a wsx.stop that came while it waited

    def connection_ended(self) -> None:
        """The connection ended: what waited for it goes with it.

        The awaiting callback is cancelled (:meth:`abandon`), a
        ``handle_connect`` waiting for a resume is forgotten, and the frames
        it read but did not handle are dropped (a warning counts them): never
        handled as the next connection's (a close among them would close it).
        """
        client = self.client
        self.abandon()
        self.deferred = None
        held = client.dispatcher.inbox
        if held and not client.stopping.asked:
            logger.warning("%r: the connection ended with %d frame(s) read but not handled "
                           "(they waited while %s): dropped", client, len(held),
                           "suspended" if client.lifecycle.suspended
                           else "an async callback awaited")
        held.clear()

    def abandon(self) -> None:
        """The connection ended: cancel the awaiting callback, drop its result."""
        job = self.job
        if job is not None:
            self.job = None
            self.client.lifecycle.awaiting_in(None)
            job.abandon()

    # -------------------------------------------------------------- release
    def _stop_reading(self) -> None:
        # While CLOSING too: frames go on arriving until the server's close
        # (a server may flood instead of answering ours). While connecting,
        # the handshake reads: upgraded() does not start reading while held.
        client = self.client
        if client.transport.sock is not None and client.lifecycle.state in (OPEN, CLOSING):
            client.transport.stop_reading()

    def release(self) -> None:
        """Nothing holds the client any more: handle what was held, in order, and read again."""
        client = self.client
        dispatcher = client.dispatcher
        if dispatcher.hold:
            return
        step = self.deferred
        if step is not None:  # it reads and drains what waits, in order
            self.deferred = None
            step()
            return
        dispatcher.drain()
        if dispatcher.hold:
            return  # a held frame's callback holds the client again
        transport = client.transport
        sock = transport.sock
        if (sock is not None and client.lifecycle.state in (OPEN, CLOSING)
                and not transport.reading):
            transport.start_reading(client.read_path)
            if not transport.read_paused:
                # Frames that arrived while held come before later messages.
                if dispatcher.in_callback:
                    # resume() from a callback of this client: the read it is
                    # part of is not finished, so read once that callback returned.
                    client.loop.call_soon(transport.read_now, sock)
                else:
                    client.read_path()
        dispatcher.drain()
        client.mailbox.drain()
