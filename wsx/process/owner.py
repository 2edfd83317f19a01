"""What the parts of a connection process use of it: the interfaces they see, not its class.

The lifecycle, the upgrade, the read path, the keepalive, the close
deadline, the reconnect pacing, the holds and the stopping each serve one
:class:`~wsx.process.connection.Connection` (a client, or a server's
connection), which creates them and hands them itself. They know it through
:class:`ConnectionParts` (the upgrade and the reconnect pacing, a client's
parts, through :class:`ClientParts`), structural types, and
know each other through the views declared here (:class:`LifecycleView`,
:class:`StoppingView`, :class:`HoldsView`, :class:`MailboxView`), so that
none of them imports the process's module, nor a part that names the
process (a part may use a lower one's constants: ``holds`` the lifecycle's
states, the dispatcher ``holds``' limit): the dependencies run one way,
from the process to its parts (``tests/test_import_graph.py``
checks that the package has no import circle, type-only imports included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.conn import Conn
    from ..core.handshake import HandshakeResponse
    from ..core.protocol import Event
    from ..core.protocol import Protocol as WSProtocol
    from ..errors import WSXError
    from ..io.hostloop import HostLoop
    from ..io.transport import Transport

__all__ = [
    "ConnectionParts",
    "ClientParts",
    "DispatcherOwner",
    "DispatcherView",
    "LifecycleView",
    "StoppingView",
    "HoldsView",
    "MailboxView",
    "KeepaliveView",
]


class DispatcherView(Protocol):
    """The client's :class:`~wsx.process.dispatcher.Dispatcher`, as the other parts use it."""

    cb: Any  # the resolved callback module
    protocol: WSProtocol | None
    dbg: Any  # the DebugState while debugging, else None
    inbox: Any  # the deque of events held
    in_callback: bool
    open: bool
    hold: bool

    def receive(self, data: Any) -> None:
        """Bytes read from the socket (the Python read path)."""

    def drain(self) -> None:
        """Handle the events held."""

    def call(self, name: str, arg: Any) -> bool:
        """Run the callback ``name``; False if it crashed."""

    def call_request(self, request: Any, caller: Any) -> bool:
        """Run ``handle_call``; False if it crashed."""


class KeepaliveView(Protocol):
    """The client's :class:`~wsx.process.keepalive.Keepalive`, as the dispatcher uses it."""

    def claim(self, event: Event) -> bool:
        """True if ``event`` (a pong) answers the keepalive's ping."""


class DispatcherHolds(Protocol):
    """The client's holds, as the dispatcher uses them."""

    def full(self) -> None:
        """As many frames are held as may be: stop reading."""

    def busy(self, job: Any) -> None:
        """An async callback ``job`` is awaited: hold the client."""


class DispatcherOwner(Protocol):
    """The process a :class:`~wsx.process.dispatcher.Dispatcher` runs the callbacks of."""

    module: Any
    conn: Conn

    @property
    def holds(self) -> DispatcherHolds:
        """What holds the process."""

    @property
    def terminated(self) -> bool:
        """True once the process has ended."""

    @property
    def connection_state(self) -> str:
        """The public name of its state (``"open"``...)."""

    def remote_close(self, code: Any, reason: Any) -> None:
        """The peer's close frame arrived."""

    def protocol_error(self, error: Any) -> None:
        """The peer broke the protocol."""

    def decided(self, decision: tuple[Any, ...]) -> None:
        """An async ``handle_disconnect`` decided."""

    def terminated_with(self, reason: Any) -> None:
        """``terminate`` returned: end the process with ``reason``."""

    def local_close(self, code: Any, text: Any, reason: Any) -> None:
        """Start the close handshake; disconnect with ``reason``."""

    def terminate(self, reason: Any) -> None:
        """Run ``terminate`` and end the process with ``reason``."""


class LifecycleView(Protocol):
    """The client's :class:`~wsx.process.lifecycle.Lifecycle`, as the other parts use it."""

    @property
    def state(self) -> Any:
        """The current state (a :class:`~wsx.process.lifecycle.State`)."""

    @property
    def suspended(self) -> bool:
        """True while :func:`wsx.sys.suspend` holds frames and messages."""

    def suspend(self) -> None:
        """Hold frames and messages."""

    def resume(self) -> None:
        """Stop holding them."""

    def awaiting_in(self, name: str | None) -> None:
        """An async callback ``name`` is awaited (None: none)."""


class StoppingView(Protocol):
    """The client's :class:`~wsx.process.stopping.Stopping`, as the holds use it."""

    @property
    def asked(self) -> bool:
        """True once a stop was asked."""

    def when_free(self) -> None:
        """Go on with a stop that waited for the client to be free."""


class HoldsView(Protocol):
    """The client's :class:`~wsx.process.holds.Holds`, as the stopping uses them."""

    job: Any  # the async callback awaited, or None

    def abandon(self) -> None:
        """Drop the async callback awaited."""

    def end_suspension(self) -> None:
        """End any suspension and read again."""


class MailboxView(Protocol):
    """The client's :class:`~wsx.process.mailbox.Mailbox`, as the other parts use it."""

    def deliver(self, kind: str, msg: Any) -> None:
        """Queue a message (``"cast"``, ``"info"``, ``"call"``) and handle it in turn."""

    def drain(self) -> None:
        """Handle the messages that wait."""


class ConnectionParts(Protocol):
    """The connection process as its parts see it, whichever its role (see the module doc)."""

    loop: HostLoop
    conn: Conn
    transport: Transport
    close_reason: Any  # the reason of the close handshake under way, or None
    module: Any  # the callback module as given
    terminate_reason: Any  # why terminate was called, once it was

    @property
    def dispatcher(self) -> DispatcherView:
        """Runs its callbacks."""

    @property
    def lifecycle(self) -> LifecycleView:
        """Its states and transitions."""

    @property
    def stopping(self) -> StoppingView:
        """A stop asked of it."""

    @property
    def holds(self) -> HoldsView:
        """What it holds while suspended or awaiting an async callback."""

    @property
    def mailbox(self) -> MailboxView:
        """Its casts, infos and calls."""

    @property
    def read_path(self) -> Callable[[], None]:
        """What the loop calls when the socket is readable."""

    @property
    def suspended(self) -> bool:
        """True while :func:`wsx.sys.suspend` holds frames and messages."""

    def event(self, kind: str, *args: Any) -> None:
        """Record a debug event when debugging is on."""

    def connection_lost(self, sock: Any, reason: Any) -> None:
        """The connection ``sock`` ended with ``reason``."""

    def eof_reason(self) -> Any:
        """The disconnect reason when the peer closes TCP."""

    def connect_failed(self, error: WSXError) -> None:
        """The connection attempt failed."""

    def drop(self, reason: Any) -> None:
        """End the connection now with ``reason``."""

    @property
    def terminated(self) -> bool:
        """True once the process has ended."""

    def terminate(self, reason: Any) -> None:
        """Run ``terminate`` and end the process with ``reason``."""

    def terminated_with(self, reason: Any) -> None:
        """``terminate`` returned: end the process with ``reason``."""

    def local_close(self, code: Any, text: Any, reason: Any) -> None:
        """Start the close handshake (``code``, ``text``); disconnect with ``reason``."""


class ClientParts(ConnectionParts, Protocol):
    """The client as the parts of its role see it (the upgrade, the reconnect pacing)."""

    upgrade: Any  # the Upgrade of the current attempt, or None

    def upgraded(self, response: HandshakeResponse, extensions: list[Any]) -> None:
        """The handshake succeeded."""
