"""Connection descriptions (:class:`Conn`) and non-blocking socket opening.

:class:`Conn` is WebSockex's ``Conn``: the URL and every connection option.
After a successful handshake it also carries what the server answered
(``resp_headers``, ``subprotocol``, ``extensions``), which ``handle_connect``
receives.

:class:`Connector` opens the TCP (and TLS) connection for a ``Conn`` on a
:class:`~wsx.loop.Loop` without blocking it: DNS runs off the loop thread,
every address is tried in turn, and the whole attempt (DNS, TCP connect, TLS
handshake, proxy negotiation) is bounded by ``socket_connect_timeout``.
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
from .proxy import (
    HTTPConnectNegotiation,
    ProxyError,
    ProxyURL,
    SOCKS5Negotiation,
    is_ip_literal,
    negotiation_for,
    parse_proxy_url,
    proxy_from_environment,
)
from .url import WSURL, parse_url

__all__ = ["Conn", "Connector"]

logger = logging.getLogger("wsx")

#: Default ``write_limit``: pending output above which backpressure applies.
DEFAULT_WRITE_LIMIT = 1 << 20

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
    :param proxy: reach the server through a proxy: ``None`` or ``False``
        (default) for none; a URL ``"http://[user:pass@]host[:port]"`` (HTTP
        ``CONNECT``, Basic ``Proxy-Authorization`` with credentials),
        ``"socks5://..."`` (SOCKS5, the host name resolved locally) or
        ``"socks5h://..."`` (SOCKS5, the proxy resolves it); or ``True`` to
        take it from the environment when the ``Conn`` is made
        (``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``, then
        ``all_proxy``, upper case too; ``no_proxy`` exempts hosts). The
        negotiation counts against ``socket_connect_timeout``; for
        ``wss://`` TLS runs inside the tunnel, verified against the
        target's host name.
    :param socket_connect_timeout: seconds for DNS, TCP connect, the proxy
        negotiation and the TLS handshake together: one deadline for the
        whole attempt, not per step (default 6).
    :param socket_recv_timeout: seconds to wait for the server's upgrade
        response (default 5).
    :param max_message_size: the largest message (and frame) accepted, in
        bytes; ``None`` for no limit. Default 16 MiB.
    :param close_timeout: seconds to wait for the server to finish the
        closing handshake before dropping the connection (default 5).
    :param compress: offer permessage-deflate (RFC 7692): ``True`` (default)
        with the default :class:`wsx.Deflate` settings, a ``Deflate`` to
        tune it, or ``False`` not to offer compression.
    :param ping_interval: keepalive (off by default, as in WebSockex): when
        a whole ``ping_interval`` seconds pass without any sign of life from
        the server (no byte received, no progress writing), the client sends
        a ping. ``None`` (default) sends no keepalive pings. The pongs that
        answer keepalive pings are not passed to ``handle_pong``.
    :param ping_timeout: seconds after a keepalive ping within which the
        server must show a sign of life (its pong, or any data); otherwise the
        connection is dropped and ``handle_disconnect`` receives
        ``("error", TimeoutExpired)`` with ``option == "ping_timeout"``.
        Default: ``ping_interval``; ignored without ``ping_interval``. A dead
        connection is noticed within ``2 * ping_interval + ping_timeout``
        seconds at worst.
    :param write_limit: bytes of pending (unsent) output above which the
        client applies backpressure: :func:`wsx.send_frame` from another
        thread waits, and the client stops reading from the socket (so that
        replies and pongs cannot grow the buffer) until the buffer drains to
        the limit. Default 1 MiB. One frame is never split: the buffer may
        exceed the limit by the last frame queued.
    :param send_timeout: seconds :func:`wsx.send_frame` (from another
        thread) waits for the write buffer to drain to ``write_limit``
        before raising :class:`wsx.TimeoutExpired` (the frame is then not
        sent; the connection stays open). Default 30; ``None`` waits as
        long as the connection is open.
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
        proxy: str | bool | None = None,
        socket_connect_timeout: float = 6.0,
        socket_recv_timeout: float = 5.0,
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        close_timeout: float = 5.0,
        compress: bool | Deflate = True,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        send_timeout: float | None = 30.0,
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
        # True: from the environment, for whatever URL this Conn (or a copy
        # made for a reconnect to another URL) has when it connects.
        self._proxy: ProxyURL | bool | None
        if proxy is None or proxy is False:
            self._proxy = None
        elif proxy is True:
            self._proxy = True
            proxy_from_environment(self.url)  # a bad value fails here, as ValueError
        elif isinstance(proxy, str):
            self._proxy = parse_proxy_url(proxy)
        elif isinstance(proxy, ProxyURL):
            self._proxy = proxy
        else:
            raise TypeError(f"proxy must be a URL string, True, False or None, not {proxy!r}")
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
            raise ValueError(
                f"max_message_size must be a positive int or None, not {max_message_size!r}"
            )
        self.max_message_size = max_message_size
        for option, seconds in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout),
                                ("send_timeout", send_timeout)):
            if seconds is not None and (not isinstance(seconds, (int, float))
                                        or isinstance(seconds, bool) or seconds <= 0):
                raise ValueError(f"{option} must be a positive number of seconds or None, "
                                 f"not {seconds!r}")
        #: Keepalive period (seconds) or ``None``; see the class documentation.
        self.ping_interval = None if ping_interval is None else float(ping_interval)
        #: Keepalive deadline (seconds) after a ping, or ``None`` when keepalive is off.
        self.ping_timeout = (None if self.ping_interval is None
                             else float(ping_timeout or self.ping_interval))
        if not isinstance(write_limit, int) or isinstance(write_limit, bool) or write_limit < 0:
            raise ValueError(f"write_limit must be a non-negative int (bytes), not {write_limit!r}")
        self.write_limit = write_limit
        self.send_timeout = None if send_timeout is None else float(send_timeout)
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
    def proxy(self) -> ProxyURL | None:
        """The proxy to go through, or ``None``.

        With ``proxy=True`` it is read from the environment for the current
        URL each time (see :func:`wsx.proxy.proxy_from_environment`).
        """
        if self._proxy is True:
            return proxy_from_environment(self.url)
        return self._proxy or None

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

    The steps, all within one ``socket_connect_timeout`` deadline: DNS
    (off the loop thread), a non-blocking TCP connect to each address in
    turn, the proxy negotiation when ``conn.proxy`` is set (HTTP ``CONNECT``
    or SOCKS5, see :mod:`wsx.proxy`), and for ``wss://`` the TLS handshake
    (inside the tunnel, with the target's host name for SNI and the
    certificate check).

    ``on_done(sock, None)`` runs with a connected non-blocking socket (an
    ``SSLSocket`` after the TLS handshake for ``wss://``), or
    ``on_done(None, ConnError)`` on failure or timeout (a
    :class:`~wsx.proxy.ProxyError` when the proxy refused or broke the
    tunnel). :meth:`cancel` drops the attempt and closes any socket it holds.
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
        self._negotiation: HTTPConnectNegotiation | SOCKS5Negotiation | None = None
        self._pending = bytearray()  # proxy negotiation bytes not yet written
        self._proxy: ProxyURL | None = None
        #: What the attempt is doing now, named in timeout errors.
        self.phase = "starting"

    def start(self) -> None:
        """Begin: resolve the host (or the proxy's), then connect."""
        conn = self.conn
        self._timer = self.loop.call_later(conn.socket_connect_timeout, self._timed_out)
        try:
            proxy = self._proxy = conn.proxy
        except ValueError as exc:  # proxy=True and the environment changed since
            self._fail(f"cannot use the proxy from the environment for {conn.url}", exc)
            return
        host, port = (proxy.host, proxy.port) if proxy is not None else (conn.host, conn.port)
        if is_ip_literal(host):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._resolved([(family, socket.SOCK_STREAM, 0, "", (host, port))], None)
        else:
            what = "proxy host" if proxy is not None else "host"
            self.phase = f"DNS resolution of {what} {host!r}"
            self.loop.resolve(host, port, self._resolved)

    def cancel(self) -> None:
        """Abandon the attempt; ``on_done`` will not be called."""
        self._on_done = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._negotiation = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self.loop.remove_all(sock)
            sock.close()

    def _finish(self, sock: Any, error: ConnError | None) -> None:
        callback, self._on_done = self._on_done, None
        if error is None:
            self._sock = None  # handed over
        self._cleanup()
        if callback is not None:
            callback(sock, error)

    def _fail(self, message: str, original: BaseException | None = None) -> None:
        self._finish(None, ConnError(message, original))

    def _timed_out(self) -> None:
        self._timer = None
        conn = self.conn
        detail = f" ({'; '.join(self._errors)})" if self._errors else ""
        message = (
            f"connecting to {conn.url.host_header} timed out after "
            f"{conn.socket_connect_timeout:g} s (socket_connect_timeout) during "
            f"{self.phase}{detail}"
        )
        original = TimeoutError(f"socket_connect_timeout ({self.phase})")
        if self._negotiation is not None and self._proxy is not None:
            self._finish(None, ProxyError(message, self._proxy, None, original))
        else:
            self._fail(message, original)

    def _resolved(self, infos: list[Any] | None, error: BaseException | None) -> None:
        if self._on_done is None:
            return
        proxy = self._proxy
        if error is not None or not infos:
            if proxy is not None:
                self._fail(f"cannot resolve proxy host {proxy.host!r} (proxy {proxy})", error)
            else:
                self._fail(f"cannot resolve host {self.conn.host!r}", error)
            return
        self._addresses = list(infos)
        self._try_next()

    def _try_next(self) -> None:
        if self._on_done is None:
            return
        proxy = self._proxy
        if not self._addresses:
            errors = "; ".join(self._errors)
            if proxy is not None:
                self._fail(f"cannot connect to proxy {proxy.address}: {errors}")
            else:
                self._fail(f"cannot connect to {self.conn.url.host_header}: {errors}")
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
        what = "proxy " if proxy is not None else ""
        self.phase = f"the TCP connect to {what}{address[0]} port {address[1]}"
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
        proxy = self._proxy
        if proxy is None:
            self._start_tls()
        elif proxy.remote_dns or is_ip_literal(self.conn.host):
            self._negotiate(self.conn.host)
        else:  # socks5:// - the proxy receives an address: resolve the target here
            self.phase = f"DNS resolution of host {self.conn.host!r} (for the SOCKS5 proxy)"
            self.loop.resolve(self.conn.host, self.conn.port, self._target_resolved)

    # ------------------------------------------------------------- proxies
    def _target_resolved(self, infos: list[Any] | None, error: BaseException | None) -> None:
        if self._on_done is None or self._sock is None:
            return
        if error is not None or not infos:
            self._fail(f"cannot resolve host {self.conn.host!r}", error)
            return
        # Prefer IPv4 (what a SOCKS proxy most often reaches), keep the resolver's order.
        infos = sorted(infos, key=lambda info: info[0] != socket.AF_INET)
        self._negotiate(str(infos[0][4][0]))

    def _negotiate(self, host: str) -> None:
        proxy = self._proxy
        assert proxy is not None and self._sock is not None
        try:
            self._negotiation = negotiation_for(proxy, host, self.conn.port)
        except ProxyError as exc:
            self._finish(None, exc)
            return
        self.phase = (
            f"the negotiation with {proxy.scheme} proxy {proxy.address} "
            f"for {self._negotiation.target}"
        )
        self.loop.add_reader(self._sock, self._proxy_readable)
        self._proxy_flush()

    def _proxy_flush(self) -> None:
        sock, nego = self._sock, self._negotiation
        if sock is None or nego is None:
            return
        self._pending += nego.data_to_send()
        if self._pending:
            try:
                sent = sock.send(self._pending)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._proxy_lost(exc)
                return
            del self._pending[:sent]
        if self._pending:
            self.loop.add_writer(sock, self._proxy_flush)
        else:
            self.loop.remove_writer(sock)

    def _proxy_lost(self, exc: BaseException) -> None:
        proxy = self._proxy
        assert proxy is not None
        self._finish(None, ProxyError(
            f"connection to proxy {proxy.address} lost during the negotiation "
            f"for {self.conn.url.host_header}", proxy, None, exc,
        ))

    def _proxy_readable(self) -> None:
        sock, nego = self._sock, self._negotiation
        if sock is None or nego is None:
            return
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._proxy_lost(exc)
            return
        try:
            if data:
                nego.receive_data(data)
            else:
                nego.receive_eof()
        except ProxyError as exc:
            self._finish(None, exc)
            return
        if nego.done:
            self._negotiation = None
            self.loop.remove_all(sock)
            self._start_tls()
        else:
            self._proxy_flush()

    # ----------------------------------------------------------------- TLS
    def _start_tls(self) -> None:
        sock = self._sock
        if not self.conn.secure:
            self._finish(sock, None)
            return
        if self.conn.insecure and self.conn.ssl_context is None:
            logger.warning(
                "TLS certificate verification is OFF for %s (insecure=True)", self.conn.url
            )
        # The SSLSocket takes over the file descriptor: unregister the plain socket.
        self.loop.remove_all(sock)
        self.phase = f"the TLS handshake with {self.conn.url.host_header}"
        try:
            ctx = self.conn.tls_context()
            self._sock = ctx.wrap_socket(
                sock, server_hostname=self.conn.host, do_handshake_on_connect=False
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
        except ssl.SSLCertVerificationError as exc:
            self._fail(
                f"TLS handshake with {self.conn.url.host_header} failed: the server's "
                f"certificate was rejected ({exc.verify_message or exc.reason})",
                exc,
            )
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self._fail(f"TLS handshake with {self.conn.url.host_header} failed", exc)
        else:
            self.loop.remove_all(sock)
            self._finish(sock, None)
