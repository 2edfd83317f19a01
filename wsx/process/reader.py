"""The read path of an open connection: socket readable → bytes → protocol → dispatcher.

:class:`Reader` is what the loop calls when the socket of an open connection
is readable: it reads what is there (through the transport), counts it as a
sign of life, feeds it to the protocol and hands the events to the
dispatcher (:meth:`wsx.process.dispatcher.Dispatcher.receive`). For TLS it
reads again while the ``SSLSocket`` holds decrypted bytes (they do not wake
the selector).

When wsx is built, the client puts the compiled read path
(``wsx.process._reader.FastReader``) in front of it: that one does the usual
case (whole messages on a plain connection) in one C call and comes here for
everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConnError

if TYPE_CHECKING:
    from .owner import ConnectionParts

__all__ = ["Reader"]


class Reader:
    """The Python read path of one client (see the module documentation)."""

    __slots__ = ("client", "transport", "dispatcher", "buffer")

    def __init__(self, client: ConnectionParts) -> None:
        self.client = client
        self.transport = client.transport
        self.dispatcher = client.dispatcher
        #: The loop's read buffer, shared by every connection on it.
        self.buffer = client.loop.read_buffer

    def __call__(self) -> None:
        transport = self.transport
        sock = transport.sock
        buf = self.buffer
        while sock is not None and sock is transport.sock and not transport.read_paused:
            try:
                n = transport.recv_into(buf)
            except OSError as exc:
                self.client.connection_lost(sock, ("error", ConnError("connection broken", exc)))
                return
            if n < 0:
                return  # nothing there
            if n == 0:
                self.client.connection_lost(sock, self.client.eof_reason())
                return
            transport.activity = True
            self.dispatcher.receive(buf[:n])
            # Data already decrypted by TLS does not wake the selector again.
            if not (transport.secure and sock is transport.sock and transport.tls_pending()):
                return

