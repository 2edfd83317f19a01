"""The handshake phase of one connection attempt: upgrade request out, response in.

:class:`Upgrade` runs on a freshly connected socket: it writes the request of
a :class:`~wsx.core.handshake.ClientHandshake` through the transport, reads
the response (bounded by ``socket_recv_timeout``), checks the extensions the
server accepted against the offer, and tells its client the outcome:
``client.upgraded(response, extensions)`` or ``client.connect_failed(error)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.conn import Conn
from ..core.extensions.permessage_deflate import EXTENSION_NAME
from ..core.handshake import HandshakeResponse
from ..errors import ConnError, HandshakeError, WSXError

if TYPE_CHECKING:
    from .owner import ClientParts

__all__ = ["Upgrade", "negotiate"]


class Upgrade:
    """The upgrade of one connection attempt of ``client`` (see the module documentation)."""

    def __init__(self, client: ClientParts) -> None:
        conn = client.conn
        self.client = client
        # Raises ValueError for options the request cannot carry.
        self.handshake = conn.handshake()
        self._timer: Any = None

    def start(self) -> None:
        """Write the request and wait for the response."""
        client = self.client
        self._timer = client.loop.call_later(client.conn.socket_recv_timeout, self._timed_out)
        client.transport.start_reading(self._readable)
        client.transport.write(self.handshake.request_bytes())

    def cancel(self) -> None:
        """Stop waiting (the attempt ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        conn = self.client.conn
        error = HandshakeError(
            f"no complete upgrade response from {conn.url.host_header} within "
            f"{conn.socket_recv_timeout:g} s (socket_recv_timeout)"
        )
        error.challenge = self.handshake.key
        self.client.connect_failed(error)

    def _readable(self) -> None:
        client = self.client
        transport = client.transport
        if transport.sock is None or client.upgrade is not self:
            return
        buf = client.loop.read_buffer
        try:
            n = transport.recv_into(buf)
        except OSError as exc:
            client.connect_failed(ConnError("connection lost during the handshake", exc))
            return
        if n < 0:
            return  # nothing there yet
        hs = self.handshake
        try:
            if n == 0:
                hs.receive_eof()
                raise HandshakeError("the server closed the connection during the handshake")
            response = hs.receive_data(bytes(buf[:n]))
            if response is None:
                return
            extensions = negotiate(client.conn, response)
        except WSXError as exc:
            if isinstance(exc, HandshakeError):
                exc.challenge = hs.key
            client.connect_failed(exc)
            return
        self.cancel()
        client.upgraded(response, extensions)


def negotiate(conn: Conn, response: HandshakeResponse) -> list[Any]:
    """The extensions to run, from the server's accepted list (validated against the offer)."""
    extensions: list[Any] = []
    for name, params in response.extensions:
        if name == EXTENSION_NAME and conn.compress is not None and not extensions:
            try:
                extensions.append(conn.compress.accept(params))
            except HandshakeError as exc:
                exc.response = response
                raise
        else:
            raise HandshakeError(f"the server accepted extension {name!r} more than once "
                                 "or without an offer", response)
    return extensions
