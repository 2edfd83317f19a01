"""Opening the socket of a :class:`~wsx.core.conn.Conn` without blocking the loop.

:class:`Connector` opens the TCP (and TLS) connection for a ``Conn`` on a
:class:`~wsx.io.loop.Loop`: DNS runs off the loop thread, every address is
tried in turn, and the whole attempt (DNS, TCP connect, TLS handshake, proxy
negotiation) is bounded by ``socket_connect_timeout``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.conn import Conn
from ..core.proxy import (
    HTTPConnectNegotiation,
    ProxyError,
    ProxyURL,
    SOCKS5Negotiation,
    is_ip_literal,
    negotiation_for,
)
from ..errors import ConnError
from .loop import Timer

if TYPE_CHECKING:
    from .hostloop import HostLoop

__all__ = ["Connector"]

logger = logging.getLogger("wsx")

_CONNECT_PENDING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EAGAIN}
# OpenSSL's reasons for an answer to the ClientHello that is not a TLS record
# (an HTTP "400 Bad Request" from a plain server, for one).
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE"})


class Connector:
    """Opens the socket for a :class:`Conn` on a loop without blocking it.

    The steps, all within one ``socket_connect_timeout`` deadline: DNS
    (off the loop thread), a non-blocking TCP connect to each address in
    turn, the proxy negotiation when ``conn.proxy`` is set (HTTP ``CONNECT``
    or SOCKS5, see :mod:`wsx.core.proxy`), and for ``wss://`` the TLS handshake
    (inside the tunnel, with the target's host name for SNI and the
    certificate check).

    ``on_done(sock, None)`` runs with a connected non-blocking socket (an
    ``SSLSocket`` after the TLS handshake for ``wss://``), or
    ``on_done(None, ConnError)`` on failure or timeout (a
    :class:`~wsx.core.proxy.ProxyError` when the proxy refused or broke the
    tunnel). :meth:`cancel` drops the attempt and closes any socket it holds.
    """

    def __init__(
        self, loop: HostLoop, conn: Conn, on_done: Callable[[Any, ConnError | None], None]
    ) -> None:
        self.loop = loop
        self.conn = conn
        self._on_done: Callable[[Any, ConnError | None], None] | None = on_done
        self._sock: Any = None
        self._address: Any = None
        self._addresses: list[Any] = []
        self._errors: list[str] = []
        self._last_error: OSError | None = None  # of the last address tried
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
        if self.phase.startswith("the TLS handshake"):
            detail += ": no TLS answer (a plain ws:// server waits silently for a request)"
        message = (
            f"connecting to {conn.url.host_header} timed out after "
            f"{conn.socket_connect_timeout:g} s (socket_connect_timeout) during "
            f"{self.phase}{detail}"
        )
        original = TimeoutError("socket_connect_timeout")
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
                error = ConnError(f"cannot connect to proxy {proxy.address}: {errors}")
            else:
                error = ConnError(f"cannot connect to {self.conn.url.host_header}: {errors}")
            error.original = self._last_error  # e.g. ConnectionRefusedError (said above)
            self._finish(None, error)
            return
        family, type_, proto, _canon, address = self._addresses.pop(0)
        try:
            sock = socket.socket(family, type_, proto)
        except OSError as exc:
            self._errors.append(f"{address[0]}: {exc}")
            self._last_error = exc
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
        self._last_error = OSError(err, os.strerror(err))  # the errno's subclass
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
            if getattr(exc, "reason", None) in _NOT_TLS:
                # One sentence, not OpenSSL's: the server answered in plain text.
                error = ConnError(
                    f"{self.conn.url.host_header} does not speak TLS: it answered the TLS "
                    f"handshake of {self.conn.url} with data that is not TLS (a plain ws:// "
                    "server? then use ws://)")
                error.original = exc
                self._finish(None, error)
                return
            self._fail(f"TLS handshake with {self.conn.url.host_header} failed", exc)
        else:
            self.loop.remove_all(sock)
            self._finish(sock, None)
