"""Keepalive: ``ping_interval`` and ``ping_timeout`` for one open connection.

Off by default, as in WebSockex. With ``ping_interval`` set, one timer per
connection looks every ``ping_interval`` seconds for a sign of life from the
server since it last looked: any byte received, or progress writing a
backlog (``Transport.activity``), not only a pong. With none, it sends a ping
and comes back ``ping_timeout`` seconds later; still none then, and the
connection is dropped with ``("error", TimeoutExpired)``. The pongs answering
these pings are not passed to ``handle_pong``: the callback module did not
send those pings.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from ..core.state import ProtocolState
from ..errors import CloseCode, TimeoutExpired, WSXError

if TYPE_CHECKING:
    from .owner import ConnectionParts

__all__ = ["Keepalive"]

logger = logging.getLogger("wsx")


class _Phase(enum.Enum):
    WATCHING = "watching"  # the timer looks for a sign of life at the next interval
    AWAITING = "awaiting"  # a ping is out; its deadline is armed


class Keepalive:
    """The keepalive of one open connection of ``client`` (see the module documentation)."""

    def __init__(self, client: ConnectionParts, interval: float, timeout: float) -> None:
        self.client = client
        self.interval = interval
        self.timeout = timeout
        self.phase = _Phase.WATCHING
        self.sent: bytes | None = None  # payload of the last keepalive ping
        self.count = 0
        self._timer: Any = None

    def start(self) -> None:
        """Arm the timer (the connection just opened)."""
        self.client.transport.activity = False
        self._arm(self.interval)

    def stop(self) -> None:
        """Cancel the timer (the connection ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.phase = _Phase.WATCHING
        self.sent = None

    def _arm(self, delay: float) -> None:
        self._timer = self.client.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        client = self.client
        protocol = client.dispatcher.protocol
        if (not client.dispatcher.open or protocol is None
                or protocol.state is not ProtocolState.OPEN):
            return  # closing: close_timeout bounds the rest
        transport = client.transport
        if transport.activity or client.suspended:
            # Suspended (wsx.sys): nothing is read, so there is nothing to judge.
            transport.activity = False
            self.phase = _Phase.WATCHING
            self._arm(self.interval)
            return
        if self.phase is _Phase.AWAITING:
            self._expired()
            return
        self.count += 1
        payload = b"wsx-keepalive-%d" % self.count
        self.sent = payload
        self.phase = _Phase.AWAITING
        client.event("keepalive_ping", payload)
        self._arm(self.timeout)
        client.transport.write_frame(protocol, ("ping", payload))

    def claim(self, event: Any) -> bool:
        """True (and handled) if ``event`` is the pong to the last keepalive ping.

        The next idle interval starts now, not when ``ping_timeout`` would
        have passed.
        """
        if self.sent is None or event[0] != "pong" or event[-1] != self.sent:
            return False
        self.client.event("keepalive_pong", event[-1])
        if self.phase is _Phase.AWAITING:
            self.phase = _Phase.WATCHING
            self.client.transport.activity = False
            if self._timer is not None:
                self._timer.cancel()
            self._arm(self.interval)
        return True

    def _expired(self) -> None:
        client = self.client
        error = TimeoutExpired(
            "ping_timeout", self.timeout,
            f"{client.conn.url.host_header} showed no sign of life within {self.timeout:g} s "
            "of a keepalive ping (no pong, no data)",
        )
        logger.info("%r: %s", client, error)
        protocol = client.dispatcher.protocol
        try:  # best effort: the peer is probably gone
            if protocol is not None:
                client.transport.write_close(protocol, CloseCode.INTERNAL_ERROR,
                                             "keepalive timeout")
        except WSXError:
            pass
        client.drop(("error", error))
