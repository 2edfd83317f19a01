"""The lifecycle of a connection process: its states, and the one place they change.

Each role has its table of transitions: a client's (:data:`TRANSITIONS`,
below), which reconnects, and a server connection's
(:data:`SERVER_TRANSITIONS`), which ends at its first disconnect. A
client's::

    CONNECTING ──> OPEN ──> CLOSING ──> DISCONNECTED ──> CONNECTING (reconnect)
        │            │          │             │    └───> RECONNECTING ──> CONNECTING
        │            │          │             │          (reconnect_after: waiting)
        └────────────┴──────────┴─────────────┴──> TERMINATING ──> TERMINATED
        (and straight to TERMINATED, from any state, when no terminate runs)

A server connection's is the same without reconnects: ``CONNECTING`` (its
opening handshake) ──> ``OPEN`` ──> ``CLOSING`` ──> ``DISCONNECTED`` ──>
``TERMINATING`` ──> ``TERMINATED``.

* ``CONNECTING``: opening the socket and upgrading (the first attempt or a
  reconnect);
* ``OPEN``: the handshake succeeded; ``handle_connect`` runs first (frames
  that arrive meanwhile wait for it to accept), then the frames;
* ``CLOSING``: a close frame was sent or received, or the server broke the
  protocol; the close handshake runs, bounded by ``close_timeout``;
* ``DISCONNECTED``: the connection ended, ``handle_disconnect`` decides;
* ``RECONNECTING``: waiting the delay of a ``("reconnect_after", ...)``
  (shown as ``"connecting"`` in :attr:`wsx.Client.connection_state`, as
  before this state had a name of its own);
* ``TERMINATING``: the connection is dropped and ``terminate`` runs (an
  ``async def`` one may wait); it runs once, and the process then ends.
  Shown as ``"disconnected"``: the socket is closed;
* ``TERMINATED``: the process ended; nothing follows.

Two holds are orthogonal to these states: suspension (:func:`wsx.sys.suspend`),
as in OTP, and an ``async def`` callback awaiting (:mod:`wsx.process.awaiting`).
A held client stays in its state (its timers run, a close timeout still
ends the connection) but handles no frame or message until released.
:meth:`Lifecycle.suspend`, :meth:`Lifecycle.resume` and
:meth:`Lifecycle.awaiting_in` change them, next to :meth:`Lifecycle.to`,
which changes the state: those four are the only writers (what a hold does
to the socket and to what was held is :mod:`wsx.process.holds`).
:meth:`Lifecycle.to` reports each change to the debug state (trace, log)
and to telemetry. A transition not in :data:`TRANSITIONS` raises
:class:`IllegalTransition`: a bug in wsx, never the peer's or the user's.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any

from ..telemetry import _handlers as _telemetry_handlers
from ..telemetry import execute as _telemetry

if TYPE_CHECKING:
    from .owner import ConnectionParts

__all__ = ["State", "TRANSITIONS", "SERVER_TRANSITIONS", "IllegalTransition", "Lifecycle"]


class State(enum.Enum):
    """A client's lifecycle state (see the module documentation)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


CONNECTING, OPEN, CLOSING = State.CONNECTING, State.OPEN, State.CLOSING
DISCONNECTED, RECONNECTING = State.DISCONNECTED, State.RECONNECTING
TERMINATING, TERMINATED = State.TERMINATING, State.TERMINATED

#: A client's transitions: state -> the states it may go to.
TRANSITIONS: dict[State, frozenset[State]] = {
    CONNECTING: frozenset({OPEN, DISCONNECTED, TERMINATING, TERMINATED}),
    OPEN: frozenset({CLOSING, DISCONNECTED, TERMINATING, TERMINATED}),
    CLOSING: frozenset({DISCONNECTED, TERMINATING, TERMINATED}),
    DISCONNECTED: frozenset({CONNECTING, RECONNECTING, TERMINATING, TERMINATED}),
    RECONNECTING: frozenset({CONNECTING, TERMINATING, TERMINATED}),
    TERMINATING: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}

#: A server connection's transitions: no reconnect (no RECONNECTING, and
#: DISCONNECTED leads only to the end).
SERVER_TRANSITIONS: dict[State, frozenset[State]] = {
    **{state: allowed - {RECONNECTING, CONNECTING} for state, allowed in TRANSITIONS.items()
       if state is not RECONNECTING},
}

# What connection_state shows of each state.
_PUBLIC = {s: s.value for s in State}
_PUBLIC[RECONNECTING] = "connecting"
_PUBLIC[TERMINATING] = "disconnected"

# Telemetry events of the transitions into these states (wsx.telemetry).
_TELEMETRY = {OPEN: ("wsx", "connected"), DISCONNECTED: ("wsx", "disconnected"),
              TERMINATED: ("wsx", "terminate")}


class IllegalTransition(RuntimeError):
    """A lifecycle transition that :data:`TRANSITIONS` does not allow (a bug in wsx)."""


class Lifecycle:
    """The state of one connection process, and the one place it changes.

    ``transitions`` is its role's table (:data:`TRANSITIONS` for a client).
    """

    __slots__ = ("client", "transitions", "state", "suspended", "awaiting", "connections")

    def __init__(self, client: ConnectionParts,
                 transitions: dict[State, frozenset[State]] = TRANSITIONS) -> None:
        self.client = client
        self.transitions = transitions
        self.state = CONNECTING
        self.suspended = False
        #: The name of the ``async def`` callback the client awaits, or None.
        self.awaiting: str | None = None
        #: Connections ``handle_connect`` accepted so far (0: never connected;
        #: counted by the client).
        self.connections = 0

    @property
    def public_name(self) -> str:
        """The state as :attr:`wsx.Client.connection_state` shows it."""
        return _PUBLIC[self.state]

    def to(self, new: State, event: str | None = None, *args: Any, report: Any = None) -> None:
        """Change the state to ``new``; trace ``event`` (with ``args``) if given.

        ``report``: the metadata of the telemetry event of ``new`` (connected,
        disconnected, terminate), or None to send none.
        """
        old = self.state
        if new not in self.transitions[old]:
            raise IllegalTransition(f"{self.client!r}: {old.value} -> {new.value}")
        self.state = new
        self._mirror()
        client = self.client
        if event is not None:
            client.event(event, *args)
        if report is not None and _telemetry_handlers:
            now = time.time()
            _telemetry(_TELEMETRY[new], {"time": now, "system_time": now},
                              {"client": client, "module": client.module, "conn": client.conn,
                               **report})

    def suspend(self) -> None:
        """Hold frames and messages until :meth:`resume` (:func:`wsx.sys.suspend`)."""
        self.suspended = True
        self._mirror()

    def resume(self) -> None:
        """Handle frames and messages again (:func:`wsx.sys.resume`)."""
        self.suspended = False
        self._mirror()

    def awaiting_in(self, name: str | None) -> None:
        """Hold frames and messages while the async callback ``name`` awaits; None: done."""
        self.awaiting = name
        self._mirror()

    @property
    def free(self) -> bool:
        """Open, and neither suspended nor awaiting: a message is handled at once."""
        return self.state is OPEN and not self.suspended and self.awaiting is None

    def _mirror(self) -> None:
        # What the dispatcher (and the compiled read path) reads of the state.
        dispatcher = self.client.dispatcher
        state = self.state
        dispatcher.open = state is OPEN
        dispatcher.hold = (self.suspended or self.awaiting is not None
                           or state is TERMINATING or state is TERMINATED)
