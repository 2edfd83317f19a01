"""Connection descriptions (:class:`Conn`) and non-blocking socket opening.

:class:`Conn` is WebSockex's ``Conn``: the URL and every connection option.
After a successful handshake it also carries what the server answered
(``resp_headers``, ``subprotocol``, ``extensions``), which ``handle_connect``
receives.

:class:`Connector` opens the TCP (and TLS) connection for a ``Conn`` on a
:class:`~wsx.loop.Loop` without blocking it: DNS runs off the loop thread,
every address is tried in turn, and the whole attempt (DNS, TCP connect, TLS
handshake) is bounded by ``socket_connect_timeout``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ConnError
from .extensions.permessage_deflate import Deflate
from .frames import DEFAULT_MAX_SIZE
from .handshake import Headers
from .loop import Loop, Timer
from .url import WSURL, parse_url

__all__ = ["Conn", "Connector"]

logger = logging.getLogger("wsx")

_CONNECT_PENDING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EAGAIN}


class Conn:
    """A WebSocket connection description: URL plus connection options.

    :param url: ``ws://`` or ``wss://`` URL (a string or a parsed ``WSURL``).
    :param extra_headers: headers added to the upgrade request
        (a mapping or a list of ``(name, value)`` pairs).
    :param subprotocols: subprotocols offered in ``Sec-WebSocket-Protocol``.
    :param origin: the ``Origin`` header, if any.
    :param ssl_context: an ``ssl.SSLContext`` for ``wss://`` (custom CAs,
        client certificates). By default ``ssl.create_default_context()``:
        certificates and host names are verified.
    :param insecure: ``True`` turns TLS verification off (logged as a
        warning). Default ``False``.
    :param socket_connect_timeout: seconds for DNS, TCP connect and the TLS
        handshake together (default 6).
    :param socket_recv_timeout: seconds to wait for the server's upgrade
        response (default 5).
    :param max_message_size: the largest message (and frame) accepted, in
        bytes; ``None`` for no limit. Default 16 MiB.
    :param close_timeout: seconds to wait for the server to finish the
        closing handshake before dropping the connection (default 5).
    :param compress: offer permessage-deflate (RFC 7692): ``True`` (default)
        with the default :class:`wsx.Deflate` settings, a ``Deflate`` to
        tune it, or ``False`` not to offer compression.
    """

    def __init__(
        self,
        url: str | WSURL,
        *,
        extra_headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        insecure: bool = False,
        socket_connect_timeout: float = 6.0,
        socket_recv_timeout: float = 5.0,
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        close_timeout: float = 5.0,
        compress: bool | Deflate = True,
    ) -> None:
        self.url: WSURL = parse_url(url)
        self.extra_headers: list[tuple[str, str]] = list(
            extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers
        )
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        self.subprotocols: tuple[str, ...] = tuple(subprotocols)
        self.origin = origin
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"ssl_context must be an ssl.SSLContext, not {ssl_context!r}")
        self.ssl_context = ssl_context
        self.insecure = bool(insecure)
        for name, value in (
            ("socket_connect_timeout", socket_connect_timeout),
            ("socket_recv_timeout", socket_recv_timeout),
            ("close_timeout", close_timeout),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        self.socket_connect_timeout = float(socket_connect_timeout)
        self.socket_recv_timeout = float(socket_recv_timeout)
        self.close_timeout = float(close_timeout)
        if max_message_size is not None and (
            not isinstance(max_message_size, int) or max_message_size <= 0
        ):
            raise ValueError(f"max_message_size must be a positive int or None, not {max_message_size!r}")
        self.max_message_size = max_message_size
        if compress is True:
            compress = Deflate()
        elif compress is not False and not isinstance(compress, Deflate):
            raise TypeError(f"compress must be True, False or a wsx.Deflate, not {compress!r}")
        #: The permessage-deflate configuration offered, or ``None``.
        self.compress: Deflate | None = compress or None
        #: Response headers of the last successful handshake.
        self.resp_headers: Headers | None = None
        #: Subprotocol the server selected, if any.
        self.subprotocol: str | None = None
        #: Extensions the server accepted: ``[(name, [(param, value), ...]), ...]``.
        self.extensions: list[tuple[str, list[tuple[str, str | None]]]] = []

    # WebSockex.Conn field names, for readers coming from Elixir.
    @property
    def host(self) -> str:
        """Host name or IP literal."""
        return self.url.host

    @property
    def port(self) -> int:
        """TCP port."""
        return self.url.port

    @property
    def path(self) -> str:
        """Request path without the query."""
        return self.url.resource.split("?", 1)[0]

    @property
    def query(self) -> str | None:
        """Query string, if any."""
        parts = self.url.resource.split("?", 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def secure(self) -> bool:
        """True for ``wss://``."""
        return self.url.secure

    def tls_context(self) -> ssl.SSLContext:
        """The TLS context used for ``wss://`` (verifying unless ``insecure``)."""
        if self.ssl_context is not None:
            return self.ssl_context
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def __repr__(self) -> str:
        return f"wsx.Conn({str(self.url)!r})"


class Connector:
    """Opens the socket for a :class:`Conn` on a loop without blocking it.

    ``on_done(sock, None)`` runs with a connected non-blocking socket (an
    ``SSLSocket`` after the TLS handshake for ``wss://``), or
    ``on_done(None, ConnError)`` on failure or timeout. :meth:`cancel` drops
    the attempt and closes any socket it holds.
    """

    def __init__(
        self, loop: Loop, conn: Conn, on_done: Callable[[Any, ConnError | None], None]
    ) -> None:
        self.loop = loop
        self.conn = conn
        self._on_done: Callable[[Any, ConnError | None], None] | None = on_done
        self._sock: Any = None
        self._address: Any = None
        self._addresses: list[Any] = []
        self._errors: list[str] = []
        self._timer: Timer | None = None

    def start(self) -> None:
        """Begin: resolve the host, then connect."""
        url = self.conn.url
        self._timer = self.loop.call_later(self.conn.socket_connect_timeout, self._timed_out)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in url.host else socket.AF_INET, url.host)
        except OSError:
            self.loop.resolve(url.host, url.port, self._resolved)
        else:
            family = socket.AF_INET6 if ":" in url.host else socket.AF_INET
            self._resolved([(family, socket.SOCK_STREAM, 0, "", (url.host, url.port))], None)

    def cancel(self) -> None:
        """Abandon the attempt; ``on_done`` will not be called."""
        self._on_done = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self.loop.remove_all(sock)
            sock.close()

    def _finish(self, sock: Any, error: ConnError | None) -> None:
        callback, self._on_done = self._on_done, None
        if error is not None:
            self._cleanup()
        else:
            self._sock = None  # handed over
            self._cleanup()
        if callback is not None:
            callback(sock, error)

    def _fail(self, message: str, original: BaseException | None = None) -> None:
        self._finish(None, ConnError(message, original))

    def _timed_out(self) -> None:
        self._timer = None
        url = self.conn.url
        detail = f" ({'; '.join(self._errors)})" if self._errors else ""
        self._fail(
            f"connecting to {url.host_header} timed out after "
            f"{self.conn.socket_connect_timeout:g} s{detail}",
            TimeoutError("socket_connect_timeout"),
        )

    def _resolved(self, infos: list[Any] | None, error: BaseException | None) -> None:
        if self._on_done is None:
            return
        if error is not None or not infos:
            self._fail(f"cannot resolve host {self.conn.url.host!r}", error)
            return
        self._addresses = list(infos)
        self._try_next()

    def _try_next(self) -> None:
        if self._on_done is None:
            return
        url = self.conn.url
        if not self._addresses:
            self._fail(f"cannot connect to {url.host_header}: {'; '.join(self._errors)}")
            return
        family, type_, proto, _canon, address = self._addresses.pop(0)
        try:
            sock = socket.socket(family, type_, proto)
        except OSError as exc:
            self._errors.append(f"{address[0]}: {exc}")
            self._try_next()
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._sock = sock
        self._address = address
        err = sock.connect_ex(address)
        if err == 0:
            self._connected()
        elif err in _CONNECT_PENDING:
            self.loop.add_writer(sock, self._connected)
        else:
            self._connect_error(err)

    def _connect_error(self, err: int) -> None:
        sock, self._sock = self._sock, None
        self.loop.remove_all(sock)
        sock.close()
        host, port = self._address[0], self._address[1]
        self._errors.append(f"{host} port {port}: {os.strerror(err)}")
        self._try_next()

    def _connected(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self.loop.remove_writer(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._connect_error(err)
            return
        if not self.conn.secure:
            self._finish(sock, None)
            return
        if self.conn.insecure and self.conn.ssl_context is None:
            logger.warning(
                "TLS certificate verification is OFF for %s (insecure=True)", self.conn.url
            )
        try:
            ctx = self.conn.tls_context()
            server_hostname = self.conn.url.host
            self._sock = ctx.wrap_socket(
                sock, server_hostname=server_hostname, do_handshake_on_connect=False
            )
        except (OSError, ValueError) as exc:
            self._fail(f"cannot start TLS with {self.conn.url.host_header}", exc)
            return
        self._tls_step()

    def _tls_step(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self.loop.remove_writer(sock)
            self.loop.add_reader(sock, self._tls_step)
        except ssl.SSLWantWriteError:
            self.loop.remove_reader(sock)
            self.loop.add_writer(sock, self._tls_step)
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self._fail(f"TLS handshake with {self.conn.url.host_header} failed", exc)
        else:
            self.loop.remove_all(sock)
            self._finish(sock, None)
