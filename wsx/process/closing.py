"""The deadline of a client's close handshake.

Once the close handshake has started (the client queued its close frame, or
received the server's), the server has ``close_timeout`` seconds to finish it
(close TCP) before the client drops the connection. Those seconds count from
the moment the client's close frame is on the socket, not from when it was
queued: frames accepted before it (``wsx.send_frame``, replies) are written
first, and a slow server that reads them slowly gets them all.

While that backlog drains, the only limit is progress: when the server takes
no byte of it for ``send_timeout`` seconds (``close_timeout`` when
``send_timeout`` is None), the connection is dropped, and the reason says
how many accepted bytes were not sent (``("error", TimeoutExpired)`` with
``option == "send_timeout"``), never a clean close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import TimeoutExpired

if TYPE_CHECKING:
    from .owner import ConnectionParts

__all__ = ["CloseDeadline"]


class CloseDeadline:
    """The close handshake deadline of one client (see the module documentation)."""

    def __init__(self, client: ConnectionParts) -> None:
        self.client = client
        self._timer: Any = None
        self._draining = False  # waiting for the backlog before the close frame

    def start(self) -> None:
        """The close handshake started: start counting (once per connection)."""
        if self._timer is not None or self._draining:
            return
        transport = self.client.transport
        if transport.wbuf and transport.sock is not None:
            self._draining = True
            transport.on_drained = self._written
            self._watch(-1)
        else:
            self._arm()

    def cancel(self) -> None:
        """The connection ended."""
        self._draining = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _written(self) -> None:
        # The backlog, and the close frame with it, is on the socket.
        self.cancel()
        self._arm()

    def _arm(self) -> None:
        self._timer = self.client.loop.call_later(self.client.conn.close_timeout, self._expired)

    def _expired(self) -> None:
        self._timer = None
        client = self.client
        client.event("force_close")
        client.drop(client.close_reason or ("local", "normal"))

    def _watch(self, seen: int) -> None:
        self._timer = None
        client = self.client
        transport = client.transport
        conn = client.conn
        seconds = conn.send_timeout if conn.send_timeout is not None else conn.close_timeout
        if transport.backlog_written != seen:  # progress: look again later
            self._timer = client.loop.call_later(seconds, self._watch, transport.backlog_written)
            return
        self._draining = False
        option = "send_timeout" if conn.send_timeout is not None else "close_timeout"
        client.drop(("error", TimeoutExpired(
            option, seconds,
            f"closing: the server took no data for {seconds:g} s; {len(transport.wbuf)} "
            "bytes accepted for sending (and the close frame) were not sent")))
