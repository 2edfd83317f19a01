"""Connection descriptions: :class:`Conn`, WebSockex's ``Conn``.

:class:`Conn` is the URL and every connection option. After a successful
handshake it also carries what the server answered (``resp_headers``,
``subprotocol``, ``extensions``), which ``handle_connect`` receives. It is
data only: :class:`wsx.io.connector.Connector` opens the socket it describes.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence

from .extensions.permessage_deflate import Deflate
from .frames import DEFAULT_MAX_SIZE
from .handshake import ClientHandshake, Headers
from .proxy import ProxyURL, parse_proxy_url, proxy_from_environment
from .url import WSURL, parse_url

__all__ = ["Conn", "DEFAULT_WRITE_LIMIT"]

logger = logging.getLogger("wsx")

#: Default ``write_limit``: pending output above which backpressure applies.
DEFAULT_WRITE_LIMIT = 1 << 20



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
    :param min_reconnect_interval: the least time, in seconds, between the
        starts of two connection attempts when ``handle_disconnect`` asks
        for an immediate reconnect (``("reconnect", state)``) after an
        attempt that failed to connect: a server that is down is then tried
        at most ``1 / min_reconnect_interval`` times a second, not as fast
        as the CPU allows. A reconnect after a connection that was open is
        immediate, as in WebSockex. Default 0.1; 0 turns the floor off. For
        longer waits, return ``("reconnect_after", seconds, state)`` or use
        :class:`wsx.Backoff`.

    Every option is checked here, before any socket is opened: a bad value
    raises ``ValueError`` or ``TypeError`` naming it (``extra_headers``,
    ``origin`` and ``subprotocols`` by the rules of the upgrade request).
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
        min_reconnect_interval: float = 0.1,
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
        if (not isinstance(min_reconnect_interval, (int, float))
                or isinstance(min_reconnect_interval, bool) or not min_reconnect_interval >= 0):
            raise ValueError("min_reconnect_interval must be a non-negative number of seconds, "
                             f"not {min_reconnect_interval!r}")
        self.min_reconnect_interval = float(min_reconnect_interval)
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
        self.handshake()  # a header, origin or subprotocol the request cannot carry fails now

    def handshake(self) -> ClientHandshake:
        """The upgrade request of one connection attempt with these options (a new key).

        Raises ``ValueError`` for an option the request cannot carry.
        """
        return ClientHandshake(
            self.url,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extra_headers=self.extra_headers,
            extensions=[self.compress.offer()] if self.compress is not None else None,
        )

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
        URL each time (see :func:`wsx.core.proxy.proxy_from_environment`).
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
