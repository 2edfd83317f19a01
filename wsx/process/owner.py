"""What the parts of a client use of it: the interface they see, not the ``Client`` class.

The lifecycle, the upgrade, the read path, the keepalive, the close deadline
and the reconnect pacing each serve one
:class:`~wsx.process.client.Client`, which creates them and hands them
itself. They know it through :class:`ClientParts`, a structural type, so
that none of them imports the client module: the dependencies run one way,
from the client to its parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.conn import Conn
    from ..core.handshake import HandshakeResponse
    from ..errors import WSXError
    from ..io.aioloop import HostLoop
    from ..io.transport import Transport
    from .dispatcher import Dispatcher

__all__ = ["ClientParts"]


class ClientParts(Protocol):
    """The client as its parts see it (see the module documentation)."""

    loop: HostLoop
    conn: Conn
    transport: Transport
    dispatcher: Dispatcher
    upgrade: Any  # the Upgrade of the current attempt, or None
    close_reason: Any  # the reason of the close handshake under way, or None
    module: Any  # the callback module as given

    @property
    def suspended(self) -> bool:
        """True while :func:`wsx.sys.suspend` holds frames and messages."""

    def event(self, kind: str, *args: Any) -> None:
        """Record a debug event when debugging is on."""

    def connection_lost(self, sock: Any, reason: Any) -> None:
        """The connection ``sock`` ended with ``reason``."""

    def eof_reason(self) -> Any:
        """The disconnect reason when the server closes TCP."""

    def connect_failed(self, error: WSXError) -> None:
        """The connection attempt failed."""

    def upgraded(self, response: HandshakeResponse, extensions: list[Any]) -> None:
        """The handshake succeeded."""

    def drop(self, reason: Any) -> None:
        """End the connection now with ``reason``."""
