"""Proxies: proxy URLs, the environment, and the tunnel negotiations (sans-I/O).

wsx reaches a WebSocket server through a proxy by opening a tunnel first:

* ``http://[user:pass@]host[:port]``: an HTTP ``CONNECT host:port`` request
  (``Proxy-Authorization: Basic`` when credentials are given);
* ``socks5://[user:pass@]host[:port]``: SOCKS version 5 (RFC 1928) with
  username/password authentication (RFC 1929) when credentials are given; the
  target's host name is resolved by wsx and the proxy receives an address;
* ``socks5h://...``: the same, with the host name resolved by the proxy.

For ``wss://`` TLS then starts inside the tunnel, with the target's host name
for SNI and certificate checks. Nothing here touches a socket: the
:class:`~wsx.core.conn.Connector` feeds the negotiation objects the bytes it reads
and writes the bytes they produce, on the loop, within
``socket_connect_timeout``.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ..errors import ConnError
from .headers import parse_status_line
from .url import WSURL

__all__ = [
    "ProxyURL",
    "ProxyError",
    "parse_proxy_url",
    "proxy_from_environment",
    "proxy_bypassed",
    "HTTPConnectNegotiation",
    "SOCKS5Negotiation",
    "negotiation_for",
    "is_ip_literal",
]

_DEFAULT_PORTS = {"http": 8080, "socks5": 1080, "socks5h": 1080}
_MAX_RESPONSE_HEAD = 64 * 1024

#: RFC 1928 section 6 reply codes.
SOCKS5_REPLIES = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}


class ProxyError(ConnError):
    """The proxy refused the tunnel or broke the negotiation.

    ``proxy`` is the :class:`ProxyURL`; ``status`` is the HTTP status code
    or the SOCKS reply code when the proxy sent one, else ``None``.
    """

    def __init__(
        self,
        message: str,
        proxy: ProxyURL,
        status: int | None = None,
        original: BaseException | None = None,
    ) -> None:
        self.proxy = proxy
        self.status = status
        super().__init__(message, original)


class ProxyURL:
    """A parsed proxy URL: ``scheme`` (``http``, ``socks5``, ``socks5h``),
    ``host``, ``port`` and the optional ``username`` / ``password``
    (percent-decoded). ``str()`` and ``repr()`` never show the password.
    """

    __slots__ = ("scheme", "host", "port", "username", "password")

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.username = username
        self.password = password

    @property
    def address(self) -> str:
        """``host:port`` of the proxy (IPv6 literals in brackets)."""
        return _host_port(self.host, self.port)

    @property
    def remote_dns(self) -> bool:
        """True when the proxy resolves the target's host name."""
        return self.scheme != "socks5"

    def __str__(self) -> str:
        auth = f"{self.username}:***@" if self.username is not None else ""
        return f"{self.scheme}://{auth}{self.address}"

    def __repr__(self) -> str:
        return f"wsx.ProxyURL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProxyURL):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _redact(url: str) -> str:
    """``url`` with any password replaced, for error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***@" + hostpart
    return f"{scheme}{sep}{rest}"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse ``http://``, ``socks5://`` or ``socks5h://`` proxy URLs.

    The port defaults to 8080 for ``http`` and 1080 for SOCKS. Raises
    ``ValueError`` naming the URL (password hidden) when it cannot be used.
    """
    if not isinstance(url, str):
        raise TypeError(f"a proxy URL must be a str, not {url!r}")
    shown = _redact(url)
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {shown!r}: {exc}") from None
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"invalid proxy URL {shown!r}: unsupported scheme {scheme or '(none)'!r} "
            "(use http://, socks5:// or socks5h://)"
        )
    if not host:
        raise ValueError(f"invalid proxy URL {shown!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid proxy URL {shown!r}: a proxy URL has no path or query")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        password = ""
    if scheme.startswith("socks5") and username is not None and (
        len(username.encode()) > 255 or len(password.encode() if password else b"") > 255
    ):
        raise ValueError(f"invalid proxy URL {shown!r}: SOCKS5 credentials over 255 bytes")
    return ProxyURL(scheme, host, port or _DEFAULT_PORTS[scheme], username, password)


def _env(name: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``(variable, value)`` of ``name`` in lower case, else upper case, if set and not empty."""
    for key in (name.lower(), name.upper()):
        value = environ.get(key)
        if value and value.strip():
            return key, value.strip()
    return None


def proxy_bypassed(host: str, port: int, no_proxy: str) -> bool:
    """True when ``NO_PROXY``-style ``no_proxy`` exempts ``host:port``.

    Entries are separated by commas or spaces: ``*`` (everything), a host
    name matching itself and its subdomains (``example.com`` and
    ``.example.com`` both match ``a.example.com``), an IP address or CIDR
    network (``10.0.0.0/8``, ``::1``), each optionally with ``:port``.
    """
    host = host.lower().strip("[]").rstrip(".")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [v6]:port or [v6]
            addr, _, rest = entry[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
            entry = addr
        elif entry.count(":") == 1:  # name:port or v4:port
            name, _, p = entry.partition(":")
            if p.isdigit():
                entry, entry_port = name, int(p)
        if entry_port is not None and entry_port != port:
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def proxy_from_environment(
    url: WSURL, environ: Mapping[str, str] | None = None
) -> ProxyURL | None:
    """The proxy the environment gives for ``url``, or ``None``.

    ``wss://`` uses ``https_proxy`` / ``HTTPS_PROXY``, ``ws://`` uses
    ``http_proxy`` / ``HTTP_PROXY``, either falls back to ``all_proxy`` /
    ``ALL_PROXY`` (lower case first). ``no_proxy`` / ``NO_PROXY`` exempts
    hosts (see :func:`proxy_bypassed`). A value without a scheme is taken as
    ``http://``. Raises ``ValueError`` naming the variable when its value
    cannot be used.
    """
    env = os.environ if environ is None else environ
    names = ("https_proxy", "all_proxy") if url.secure else ("http_proxy", "all_proxy")
    found = None
    for name in names:
        found = _env(name, env)
        if found is not None:
            break
    if found is None:
        return None
    name, value = found
    no_proxy = _env("no_proxy", env)
    if no_proxy is not None and proxy_bypassed(url.host, url.port, no_proxy[1]):
        return None
    if "://" not in value:
        value = "http://" + value
    try:
        return parse_proxy_url(value)
    except ValueError as exc:
        raise ValueError(f"{name} from the environment: {exc}") from None


# ------------------------------------------------------------- negotiations
class _Negotiation:
    """Common shape: bytes to send, bytes received, ``done`` when the tunnel is up."""

    def __init__(self, proxy: ProxyURL, host: str, port: int) -> None:
        self.proxy = proxy
        self.host = host
        self.port = port
        self.done = False
        self._out = bytearray()
        self._buf = bytearray()

    @property
    def target(self) -> str:
        """``host:port`` of the tunnel's far end."""
        return _host_port(self.host, self.port)

    def data_to_send(self) -> bytes:
        """Bytes to write to the proxy now (empty when nothing is owed)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_eof(self) -> None:
        """The proxy closed the connection: always an error before ``done``."""
        if not self.done:
            raise self._error(
                f"proxy {self.proxy.address} closed the connection during the "
                f"negotiation for {self.target}"
            )

    def receive_data(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _error(self, message: str, status: int | None = None) -> ProxyError:
        return ProxyError(message, self.proxy, status)


class HTTPConnectNegotiation(_Negotiation):
    """``CONNECT host:port HTTP/1.1`` and its answer; a 2xx status opens the tunnel."""

    def __init__(self, proxy: ProxyURL, host: str, port: int) -> None:
        super().__init__(proxy, host, port)
        lines = [f"CONNECT {self.target} HTTP/1.1", f"Host: {self.target}"]
        if proxy.username is not None:
            token = f"{proxy.username}:{proxy.password or ''}".encode()
            lines.append(f"Proxy-Authorization: Basic {base64.b64encode(token).decode('ascii')}")
        lines.append("User-Agent: wsx")
        self._out += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def receive_data(self, data: bytes) -> None:
        """Feed the proxy's answer; raises :class:`ProxyError` on a refusal."""
        if self.done:
            raise self._error(
                f"proxy {self.proxy.address} sent unexpected data after opening the "
                f"tunnel to {self.target}"
            )
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_RESPONSE_HEAD:
                raise self._error(
                    f"proxy {self.proxy.address} sent a response head over "
                    f"{_MAX_RESPONSE_HEAD} bytes to CONNECT {self.target}"
                )
            if not self._buf.startswith(b"HTTP/"[: len(self._buf)]):
                raise self._garbage()
            return
        head = bytes(self._buf[:end])
        rest = bytes(self._buf[end + 4:])
        status = parse_status_line(head.split(b"\r\n", 1)[0])
        if status is None:
            raise self._garbage()
        code, reason, _ = status
        if not 200 <= code < 300:
            raise self._error(
                f"proxy {self.proxy.address} answered {code} {reason.strip()} "
                f"to CONNECT {self.target}".replace("  ", " "),
                code,
            )
        if rest:
            raise self._error(
                f"proxy {self.proxy.address} sent unexpected data after opening the "
                f"tunnel to {self.target}"
            )
        self.done = True
        self._buf.clear()

    def _garbage(self) -> ProxyError:
        first = bytes(self._buf[:40])
        return self._error(
            f"proxy {self.proxy.address} sent a malformed answer to CONNECT {self.target}: "
            f"{first!r}"
        )


class SOCKS5Negotiation(_Negotiation):
    """RFC 1928 (with RFC 1929 authentication) ``CONNECT`` to ``host:port``.

    ``host`` must be an IP address unless the proxy resolves names
    (``socks5h``); the :class:`~wsx.core.conn.Connector` resolves it first for
    ``socks5``.
    """

    def __init__(self, proxy: ProxyURL, host: str, port: int) -> None:
        super().__init__(proxy, host, port)
        methods = b"\x00\x02" if proxy.username is not None else b"\x00"
        self._out += bytes([5, len(methods)]) + methods
        self._state = "method"

    def _request(self) -> bytes:
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            try:
                name = self.host.encode("ascii")  # WSURL hosts are IDNA-encoded already
            except UnicodeEncodeError:
                name = self.host.encode("idna")
            if len(name) > 255:
                raise self._error(f"host name too long for SOCKS5: {self.host!r}") from None
            addr = b"\x03" + bytes([len(name)]) + name
        else:
            addr = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        return b"\x05\x01\x00" + addr + self.port.to_bytes(2, "big")

    def receive_data(self, data: bytes) -> None:
        """Feed the proxy's bytes; raises :class:`ProxyError` on a failure."""
        if self.done:
            raise self._error(
                f"SOCKS5 proxy {self.proxy.address} sent unexpected data after opening "
                f"the tunnel to {self.target}"
            )
        self._buf += data
        while not self.done and self._step():
            pass

    def _step(self) -> bool:
        buf, proxy = self._buf, self.proxy
        if self._state == "method":
            if len(buf) < 2:
                return False
            version, method = buf[0], buf[1]
            del buf[:2]
            if version != 5:
                raise self._error(
                    f"{proxy.address} is not a SOCKS5 proxy (version byte {version:#04x})"
                )
            if method == 0xFF:
                offered = "none, username/password" if proxy.username is not None else "none"
                raise self._error(
                    f"SOCKS5 proxy {proxy.address} accepts none of the offered "
                    f"authentication methods ({offered})",
                    method,
                )
            if method == 0x02 and proxy.username is not None:
                user = proxy.username.encode()
                password = (proxy.password or "").encode()
                self._out += bytes([1, len(user)]) + user + bytes([len(password)]) + password
                self._state = "auth"
            elif method == 0x00:
                self._out += self._request()
                self._state = "reply"
            else:
                raise self._error(
                    f"SOCKS5 proxy {proxy.address} chose authentication method {method:#04x}, "
                    "which was not offered",
                    method,
                )
            return True
        if self._state == "auth":
            if len(buf) < 2:
                return False
            status = buf[1]
            del buf[:2]
            if status != 0:
                raise self._error(
                    f"SOCKS5 proxy {proxy.address} rejected the username/password for "
                    f"user {proxy.username!r} (status {status:#04x})",
                    status,
                )
            self._out += self._request()
            self._state = "reply"
            return True
        # reply: VER REP RSV ATYP BND.ADDR BND.PORT
        if len(buf) < 5:
            return False
        if buf[0] != 5:
            raise self._error(
                f"SOCKS5 proxy {proxy.address} sent a malformed reply: {bytes(buf[:10])!r}"
            )
        rep, atyp = buf[1], buf[3]
        if rep != 0:
            meaning = SOCKS5_REPLIES.get(rep, "unknown reply code")
            raise self._error(
                f"SOCKS5 proxy {proxy.address} refused CONNECT {self.target}: "
                f"{meaning} (reply {rep:#04x})",
                rep,
            )
        if atyp == 1:
            size = 4 + 4 + 2
        elif atyp == 4:
            size = 4 + 16 + 2
        elif atyp == 3:
            size = 4 + 1 + buf[4] + 2
        else:
            raise self._error(
                f"SOCKS5 proxy {proxy.address} sent a reply with address type {atyp:#04x}"
            )
        if len(buf) < size:
            return False
        del buf[:size]
        if buf:
            raise self._error(
                f"SOCKS5 proxy {proxy.address} sent unexpected data after opening the "
                f"tunnel to {self.target}"
            )
        self.done = True
        return False


def negotiation_for(
    proxy: ProxyURL, host: str, port: int
) -> HTTPConnectNegotiation | SOCKS5Negotiation:
    """The negotiation opening a tunnel through ``proxy`` to ``host:port``."""
    if proxy.scheme == "http":
        return HTTPConnectNegotiation(proxy, host, port)
    return SOCKS5Negotiation(proxy, host, port)


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (no brackets)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
