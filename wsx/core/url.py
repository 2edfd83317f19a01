"""Parsing and validation of ``ws://`` and ``wss://`` URLs (RFC 6455 section 3).

This module is sans-I/O: it never resolves names or opens sockets. Use
:func:`parse_url` to turn a string into a :class:`WSURL`, which carries every
piece the opening handshake and the transport need (host, port, TLS or not,
the request target and the optional credentials).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from ..errors import URLError

__all__ = ["WSURL", "parse_url"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST_NAME_RE = re.compile(r"[a-z0-9._\-]+")
# Every printable ASCII character: kept as is in the resource, only non-ASCII
# characters are percent-encoded (as UTF-8).
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class WSURL:
    """A parsed WebSocket URL.

    Build it with :func:`parse_url`. ``str(url)`` gives the normalised URL
    without credentials; ``repr`` leaves out the password and the original string.
    """

    url: str = field(repr=False)
    """The original string (left out of ``repr``: it may hold a password)."""
    scheme: str
    """``"ws"`` or ``"wss"``."""
    host: str
    """Host name (lower-cased, IDNA-encoded) or IP literal (IPv6 without brackets)."""
    port: int
    """The explicit port, or 80 for ``ws`` and 443 for ``wss``."""
    resource: str
    """The request target: path (``"/"`` when empty) plus ``"?"`` and query, no fragment."""
    user: str | None
    """Percent-decoded user name from the userinfo, if any."""
    password: str | None = field(repr=False)
    """Percent-decoded password from the userinfo, if any."""

    @property
    def secure(self) -> bool:
        """True for ``wss`` (the connection uses TLS)."""
        return self.scheme == "wss"

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: host (IPv6 in brackets), plus ``:port`` unless default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        """The URL's authority without userinfo (the same text as :attr:`host_header`)."""
        return self.host_header

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.resource}"


def parse_url(url: str | WSURL) -> WSURL:
    """Parse and validate a ``ws://`` or ``wss://`` URL.

    A :class:`WSURL` is returned unchanged. Raises :class:`~wsx.errors.URLError`
    naming the problem when ``url`` is not a string, has a scheme other than
    ``ws``/``wss``, has no host, has a bad port or IPv6 literal, or contains
    whitespace or control characters. Path and query are kept as given,
    except that non-ASCII characters are percent-encoded as UTF-8; non-ASCII
    host names are IDNA-encoded.
    """
    if isinstance(url, WSURL):
        return url
    if not isinstance(url, str):
        raise URLError(url, f"expected a str, got {type(url).__name__}")
    for index, char in enumerate(url):
        if char.isspace() or unicodedata.category(char) == "Cc":
            raise URLError(url, f"whitespace or control character {char!r} at index {index}")

    match = _SCHEME_RE.match(url)
    if match is None:
        raise URLError(url, "missing scheme, expected ws:// or wss://")
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise URLError(
            url,
            f"unsupported scheme {match.group(1)!r}: only ws:// and wss:// are accepted"
            " (http:// and https:// are not WebSocket URLs)",
        )
    rest = url[match.end() :]
    if not rest.startswith("//"):
        raise URLError(url, f"expected '//' after '{match.group(1)}:'")
    rest = rest[2:]

    rest = rest.partition("#")[0]
    end = len(rest)
    for delimiter in "/?":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority, target = rest[:end], rest[end:]

    userinfo, at, hostport = authority.rpartition("@")
    user = password = None
    if at and userinfo:
        user_text, colon, password_text = userinfo.partition(":")
        user = unquote(user_text)
        password = unquote(password_text) if colon else None

    host, port_text = _split_host_port(url, hostport)
    port = _parse_port(url, port_text) if port_text else _DEFAULT_PORTS[scheme]

    if target.startswith("?"):
        target = "/" + target
    resource = target or "/"
    if not resource.isascii():
        try:
            resource = quote(resource, safe=_PRINTABLE_ASCII)
        except UnicodeEncodeError as exc:
            raise URLError(url, f"cannot encode resource {resource!r} as UTF-8: {exc}") from None

    return WSURL(url, scheme, host, port, resource, user, password)


def _split_host_port(url: str, hostport: str) -> tuple[str, str]:
    """Split ``host[:port]`` or ``[v6][:port]``; return the checked host and the port text."""
    if hostport.startswith("["):
        literal, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise URLError(url, f"unterminated IPv6 literal {hostport!r}")
        if after and not after.startswith(":"):
            raise URLError(url, f"unexpected {after!r} after IPv6 literal [{literal}]")
        if "%" in literal:
            raise URLError(url, f"IPv6 zone identifiers are not supported: [{literal}]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise URLError(url, f"invalid IPv6 literal [{literal}]") from None
        return literal.lower(), after[1:]

    if hostport.count(":") > 1:
        raise URLError(url, f"IPv6 address {hostport!r} must be enclosed in brackets")
    host, _, port_text = hostport.partition(":")
    if not host:
        raise URLError(url, "missing host")
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise URLError(url, f"cannot IDNA-encode host {host!r}: {exc}") from None
    if not _HOST_NAME_RE.fullmatch(host):
        bad = next(c for c in host if not _HOST_NAME_RE.fullmatch(c))
        raise URLError(url, f"invalid character {bad!r} in host {host!r}")
    return host, port_text


def _parse_port(url: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise URLError(url, f"port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise URLError(url, f"port {port} is out of range 1..65535")
    return port
