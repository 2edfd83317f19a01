"""Both sides of the RFC 6455 opening handshake, sans-I/O.

:class:`ClientHandshake` builds the HTTP upgrade request
(:meth:`~ClientHandshake.request_bytes`) and parses the server's answer from
whatever byte chunks the transport delivers (:meth:`~ClientHandshake.receive_data`,
:meth:`~ClientHandshake.receive_eof`). It never touches a socket.

A valid ``101 Switching Protocols`` answer yields a :class:`HandshakeResponse`
whose ``leftover`` holds any bytes that followed the header block (the start
of the frame stream). Any other status raises :class:`~wsx.errors.RequestError`
carrying the status, headers and a bounded prefix of the body; a malformed or
non-conforming answer raises :class:`~wsx.errors.HandshakeError`.

:class:`ServerHandshake` is the other side: it reads a client's request
(:meth:`~ServerHandshake.receive_data` gives a :class:`~wsx.core.http.Request`),
says whether it is a valid upgrade request (:meth:`~ServerHandshake.check`
raises a :class:`~wsx.core.http.Refusal` carrying the HTTP status for each
fault), and writes the ``101`` answer with the negotiated subprotocol and
extensions (:meth:`~ServerHandshake.accept`). Both read HTTP heads through
:class:`~wsx.core.http.HeadReader`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import NoReturn

from ..errors import HandshakeError, RequestError
from .extensions.permessage_deflate import Deflate, PerMessageDeflate
from .headers import (
    Extension,
    Headers,
    build_extension_offer,
    check_header,
    is_token,
    parse_extensions,
    parse_header_list,
    parse_status_line,
)
from .http import (
    BodyReader,
    HeadReader,
    HeadTooLarge,
    Refusal,
    Request,
    StartLineTooLong,
    http_response,
    parse_request_line,
)
from .url import WSURL

__all__ = [
    "GUID",
    "DEFAULT_USER_AGENT",
    "accept_key",
    "Headers",
    "parse_header_list",
    "parse_extensions",
    "build_extension_offer",
    "ClientHandshake",
    "HandshakeResponse",
    "ServerHandshake",
    "Accepted",
    "Request",
    "Refusal",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The RFC 6455 magic string appended to the key to compute the accept value."""


def _version() -> str:
    try:
        return metadata.version("wsx")
    except metadata.PackageNotFoundError:
        return "0+unknown"


DEFAULT_USER_AGENT = f"wsx/{_version()}"
"""The ``User-Agent`` sent unless the extra headers give one."""



def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value for ``key``: base64(sha1(key + GUID))."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass
class HandshakeResponse:
    """The server's accepted ``101 Switching Protocols`` answer."""

    status: int
    reason: str
    headers: Headers
    subprotocol: str | None = None
    """The subprotocol the server selected, or None."""
    extensions: list[Extension] = field(default_factory=list)
    """The parsed ``Sec-WebSocket-Extensions`` of the response, in order."""
    leftover: bytes = b""
    """Bytes received after the header block: the start of the frame stream."""


# Headers the handshake writes itself; extra_headers may not give them.
_MANAGED_HEADERS = {
    "upgrade": "it is always 'websocket'",
    "connection": "it is always 'Upgrade'",
    "sec-websocket-key": "use the key argument",
    "sec-websocket-version": "it is always 13",
    "sec-websocket-protocol": "use the subprotocols argument",
    "sec-websocket-extensions": "use the extensions argument",
}

_HEAD, _BODY, _DONE = "head", "body", "done"


class ClientHandshake:
    """Build the upgrade request and parse the answer, incrementally.

    ``extensions`` are ``Sec-WebSocket-Extensions`` offer values such as
    ``"permessage-deflate; client_max_window_bits"``; the response may only
    name extensions offered there (their parameters are checked elsewhere).
    ``extra_headers`` are appended to the request; ``Host``,
    ``Authorization`` and ``User-Agent`` given there replace the generated
    ones. ``max_line``/``max_headers`` bound the response head and
    ``max_body`` the body kept from a non-101 answer.

    Raises ``ValueError`` for a bad key, subprotocol, extension offer or
    extra header.
    """

    def __init__(
        self,
        url: WSURL,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[str] | None = None,
        extra_headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        key: str | None = None,
        max_line: int = 8192,
        max_headers: int = 128,
        max_body: int = 65536,
    ) -> None:
        if key is None:
            key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        else:
            try:
                raw = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 16:
                raise ValueError(f"Sec-WebSocket-Key {key!r} is not 16 bytes encoded in base64")
        self.key: str = key
        """The ``Sec-WebSocket-Key`` sent."""
        self.url = url
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        if isinstance(extensions, str):
            extensions = [extensions]
        self.subprotocols: tuple[str, ...] = tuple(subprotocols)
        for name in self.subprotocols:
            if not isinstance(name, str) or not is_token(name):
                raise ValueError(f"subprotocol {name!r} is not a token")
        offer = ", ".join(extensions or ())
        try:
            self.offered_extensions: frozenset[str] = frozenset(
                name for name, _ in parse_extensions([offer])
            )
        except HandshakeError as exc:
            raise ValueError(str(exc)) from None
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_body = max_body

        extra = list(extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers)
        for name, value in extra:
            check_header(name, value)
            lname = name.lower()
            if lname in _MANAGED_HEADERS:
                raise ValueError(
                    f"header {name!r} cannot be given in extra_headers: {_MANAGED_HEADERS[lname]}"
                )
            if lname == "origin" and origin is not None:
                raise ValueError("header 'Origin' given both as origin and in extra_headers")
        given = {name.lower() for name, _ in extra}

        lines = [f"GET {url.resource} HTTP/1.1"]
        headers: list[tuple[str, str]] = []
        if "host" not in given:
            headers.append(("Host", url.host_header))
        headers += [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if origin is not None:
            check_header("Origin", origin)
            headers.append(("Origin", origin))
        if self.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        if offer:
            check_header("Sec-WebSocket-Extensions", offer)
            headers.append(("Sec-WebSocket-Extensions", offer))
        if url.user is not None and "authorization" not in given:
            credentials = f"{url.user}:{url.password or ''}".encode()
            token = base64.b64encode(credentials).decode("ascii")
            headers.append(("Authorization", "Basic " + token))
        headers += extra
        if "user-agent" not in given:
            headers.append(("User-Agent", DEFAULT_USER_AGENT))
        lines += [f"{name}: {value}" for name, value in headers]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        # Response parser state.
        self._state = _HEAD
        self._head = HeadReader(
            "response", self._parse_status, max_line=max_line, max_headers=max_headers)
        self._buf = bytearray()  # the part of a non-101 answer's body not read yet
        self._body = BodyReader(0, Headers(), max_body=0, max_line=max_line)

    def request_bytes(self) -> bytes:
        """Return the HTTP upgrade request to send."""
        return self._request

    # -- response parsing -------------------------------------------------

    def receive_data(self, data: bytes) -> HandshakeResponse | None:
        """Feed bytes received from the server.

        Returns None until the whole header block is in, then the
        :class:`HandshakeResponse`. Raises :class:`~wsx.errors.HandshakeError`
        for an invalid answer and :class:`~wsx.errors.RequestError` for a
        non-101 status (once its body is read, so None may be returned while
        it arrives). Any call after a result or error raises HandshakeError.
        """
        if self._state == _DONE:
            raise HandshakeError("handshake already finished")
        try:
            if self._state == _HEAD:
                if not self._head.feed(data):
                    return None
                response = self._end_of_head()
                if response is not None or self._state == _HEAD:
                    return response
            else:
                self._buf += data
            self._read_body()
            return None
        except HandshakeError:
            self._finish()
            raise

    def receive_eof(self) -> None:
        """Signal that the server closed the connection; always raises.

        Raises :class:`~wsx.errors.RequestError` when a non-101 answer's body
        was being read (with the body received so far), otherwise
        :class:`~wsx.errors.HandshakeError`.
        """
        if self._state == _DONE:
            raise HandshakeError("handshake already finished")
        if self._state == _BODY:
            raise self._request_error(self._body.body())
        received = self._head.received
        self._finish()
        if not received:
            raise HandshakeError("connection closed by the server before any response")
        raise HandshakeError(
            f"connection closed by the server during the handshake response, "
            f"after {len(received)} bytes starting {received[:200]!r}"
        )

    def _finish(self) -> None:
        self._state = _DONE
        self._head.rest = bytearray()
        self._buf = bytearray()
        self._body.close()

    @property
    def _status(self) -> tuple[int, str, str] | None:
        return self._head.start

    @property
    def _headers(self) -> Headers:
        return self._head.headers

    @staticmethod
    def _parse_status(line: bytes) -> tuple[int, str, str]:
        status = parse_status_line(line)
        if status is None:
            raise HandshakeError(f"invalid HTTP status line {line[:200]!r}")
        return status

    def _end_of_head(self) -> HandshakeResponse | None:
        assert self._status is not None
        status, reason, version = self._status
        headers = self._headers
        self._buf = self._head.rest
        if status != 101:
            self._start_body(status)
            return None
        response = HandshakeResponse(status, reason, headers, leftover=bytes(self._buf))
        self._finish()
        if version != "HTTP/1.1":
            raise HandshakeError(f"101 response uses {version}, expected HTTP/1.1", response)
        self._check_101(response)
        return response

    def _check_101(self, response: HandshakeResponse) -> None:
        headers = response.headers

        def require_token(name: str, token: str) -> None:
            value = headers.get(name)
            if value is None:
                raise HandshakeError(f"missing {name} header in 101 response", response)
            if token not in (t.lower() for t in parse_header_list(value)):
                raise HandshakeError(f"{name} header is {value!r}, expected {token!r}", response)

        require_token("Upgrade", "websocket")
        require_token("Connection", "upgrade")

        expected = accept_key(self.key)
        accepts = headers.get_all("Sec-WebSocket-Accept")
        if not accepts:
            raise HandshakeError(
                f"missing Sec-WebSocket-Accept header, expected {expected!r}", response
            )
        if accepts != [expected]:
            received = headers.get("Sec-WebSocket-Accept")
            raise HandshakeError(
                f"Sec-WebSocket-Accept is {received!r}, expected {expected!r}", response
            )

        protocols = parse_header_list(headers.get("Sec-WebSocket-Protocol", ""))
        if len(protocols) > 1:
            raise HandshakeError(
                f"server selected several subprotocols {headers.get('Sec-WebSocket-Protocol')!r}",
                response,
            )
        if protocols:
            if protocols[0] not in self.subprotocols:
                offered = ", ".join(self.subprotocols) or "none"
                raise HandshakeError(
                    f"server selected subprotocol {protocols[0]!r}, which was not offered "
                    f"(offered: {offered})",
                    response,
                )
            response.subprotocol = protocols[0]

        try:
            response.extensions = parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
        except HandshakeError as exc:
            exc.response = response
            raise
        for name, _ in response.extensions:
            if name not in self.offered_extensions:
                offered = ", ".join(sorted(self.offered_extensions)) or "none"
                raise HandshakeError(
                    f"server accepted extension {name!r}, which was not offered "
                    f"(offered: {offered})",
                    response,
                )

    # -- non-101 body -----------------------------------------------------

    def _start_body(self, status: int) -> None:
        self._state = _BODY
        self._body = BodyReader(status, self._headers, max_body=self.max_body,
                                max_line=self.max_line)

    def _read_body(self) -> None:
        """Raise the RequestError once enough of the body is in."""
        if self._body.feed(self._buf):
            raise self._request_error(self._body.body())

    def _request_error(self, body: bytes) -> RequestError:
        assert self._status is not None
        status, reason, _ = self._status
        self._finish()
        return RequestError(status, reason, self._headers.items(), body)


def _is_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


@dataclass
class Accepted:
    """A request :meth:`ServerHandshake.accept` took: the 101 answer and what it settled."""

    response: bytes
    """The ``101 Switching Protocols`` answer to send."""
    subprotocol: str | None
    extensions: list[PerMessageDeflate]
    """The negotiated extensions, the server's side of them."""


# Headers the server's handshake writes itself; an accept's headers may not give them.
_MANAGED_RESPONSE_HEADERS = frozenset((
    "upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol",
    "sec-websocket-extensions", "content-length", "transfer-encoding",
))


class ServerHandshake:
    """Read a client's upgrade request and answer it, incrementally.

    ``subprotocols`` are the server's, in its order of preference: the
    first of them the client offers is selected. ``compress`` is the
    server's permessage-deflate configuration (``None``: extensions are
    declined). ``origins``, when given, are the ``Origin`` values accepted
    (a request with another, or none, is refused with 403).
    ``max_line``/``max_headers`` bound the request head (414 for a longer
    request line, 431 for a longer header line or more header lines).
    """

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        compress: Deflate | None = None,
        origins: Sequence[str] | None = None,
        max_line: int = 8192,
        max_headers: int = 128,
    ) -> None:
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        for name in subprotocols:
            if not isinstance(name, str) or not is_token(name):
                raise ValueError(f"subprotocol {name!r} is not a token")
        if compress is not None and not isinstance(compress, Deflate):
            raise TypeError(f"compress must be a wsx.Deflate or None, not {compress!r}")
        self.subprotocols = tuple(subprotocols)
        self.compress = compress
        self.origins = None if origins is None else frozenset(origins)
        self._head = HeadReader(
            "request", parse_request_line, max_line=max_line, max_headers=max_headers)
        self._done = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> Request | None:
        """Feed bytes from the client; the :class:`Request` once its head is in, else None.

        Raises :class:`Refusal`: 400 for a malformed head, 414 for a request
        line over ``max_line``, 431 for a head over
        the bounds. Any call after a result or an error raises HandshakeError.
        """
        if self._done:
            raise HandshakeError("handshake already finished")
        if data[:1] == b"\x16" and not self._head.received:
            self._done = True  # a TLS ClientHello has no line end to wait for
            raise Refusal(400, "the client started a TLS handshake: this is a plain ws:// server")
        try:
            if not self._head.feed(data):
                return None
        except StartLineTooLong as exc:
            self._done = True
            raise Refusal(414, str(exc)) from None  # RFC 9112 section 3: the target
        except HeadTooLarge as exc:
            self._done = True
            raise Refusal(431, str(exc)) from None
        except HandshakeError as exc:
            self._done = True
            raise Refusal(400, str(exc)) from None
        self._done = True
        assert self._head.start is not None
        method, target, version = self._head.start
        return Request(method, target, version, self._head.headers,
                       leftover=bytes(self._head.rest))

    def receive_eof(self) -> NoReturn:
        """The client closed the connection before its request was complete; always raises."""
        received = b"" if self._done else self._head.received
        self._done = True
        raise HandshakeError(
            f"connection closed by the client during its request, after {len(received)} "
            f"bytes starting {received[:200]!r}" if received
            else "connection closed by the client before any request")

    @staticmethod
    def is_upgrade(request: Request) -> bool:
        """True if ``request`` asks for a WebSocket (``Upgrade: websocket``)."""
        return request.lists("Upgrade", "websocket")

    def check(self, request: Request) -> None:
        """Raise :class:`Refusal` unless ``request`` is a valid upgrade request (RFC 6455 4.2.1).

        405 for a method other than GET; 426 (with ``Upgrade: websocket``)
        without ``Upgrade: websocket``, and (with
        ``Sec-WebSocket-Version: 13``) for another version; 400 for another
        HTTP version, no ``Host``, no ``Connection: Upgrade``, a bad key or a
        malformed ``Sec-WebSocket-Extensions``; 403 for an ``Origin`` not in
        ``origins``.
        """
        headers = request.headers
        if request.method != "GET":
            raise Refusal(405, f"method {request.method} is not allowed: a WebSocket "
                          "upgrade request is a GET", [("Allow", "GET")])
        if request.version != "HTTP/1.1":
            raise Refusal(400, f"{request.version} request: a WebSocket upgrade needs HTTP/1.1")
        if not self.is_upgrade(request):
            raise Refusal(426, "this is a WebSocket endpoint: the request has no "
                          f"'Upgrade: websocket' (Upgrade: {headers.get('Upgrade')!r})",
                          [("Upgrade", "websocket")])
        hosts = headers.get_all("Host")
        if len(hosts) != 1:  # RFC 9112 section 3.2: exactly one
            raise Refusal(400, "the request has no Host header" if not hosts else
                          f"the request has {len(hosts)} Host headers: {hosts!r}")
        if not request.lists("Connection", "upgrade"):
            raise Refusal(400, f"Connection header is {headers.get('Connection')!r}, "
                          "expected 'Upgrade'")
        version = headers.get("Sec-WebSocket-Version")
        if version != "13":
            raise Refusal(426, f"Sec-WebSocket-Version is {version!r}, only 13 is supported",
                          [("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")])
        keys = headers.get_all("Sec-WebSocket-Key")
        if len(keys) != 1 or not _is_key(keys[0]):
            raise Refusal(400, f"Sec-WebSocket-Key {headers.get('Sec-WebSocket-Key')!r} is not "
                          "16 bytes encoded in base64")
        try:
            request.extensions  # noqa: B018 (parsed to check it)
        except HandshakeError as exc:
            raise Refusal(400, str(exc)) from None
        if self.origins is not None and headers.get("Origin") not in self.origins:
            raise Refusal(403, f"origin {headers.get('Origin')!r} is not allowed")

    def select_subprotocol(self, request: Request) -> str | None:
        """The server's first subprotocol that the client offers, or None."""
        offered = request.subprotocols
        return next((name for name in self.subprotocols if name in offered), None)

    def accept(
        self,
        request: Request,
        *,
        subprotocol: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Accepted:
        """The ``101`` answer to ``request`` (checked with :meth:`check` first).

        ``subprotocol`` overrides the selection (it must be one the client
        offered; ``ValueError`` otherwise); ``headers`` are added to the
        answer (``ValueError`` for one the handshake writes itself).
        """
        self.check(request)
        if subprotocol is None:
            subprotocol = self.select_subprotocol(request)
        elif subprotocol not in request.subprotocols:
            offered = ", ".join(request.subprotocols) or "none"
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client "
                             f"(offered: {offered})")
        extensions: list[PerMessageDeflate] = []
        lines = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(request.headers.get("Sec-WebSocket-Key", ""))),
        ]
        if subprotocol is not None:
            lines.append(("Sec-WebSocket-Protocol", subprotocol))
        if self.compress is not None:
            negotiated = self.compress.negotiate(request.extensions)
            if negotiated is not None:
                extensions.append(negotiated[0])
                lines.append(("Sec-WebSocket-Extensions", negotiated[1]))
        for name, _ in headers:
            if not isinstance(name, str) or name.lower() in _MANAGED_RESPONSE_HEADERS:
                raise ValueError(f"header {name!r} cannot be given: the handshake writes it")
        return Accepted(http_response(101, b"", [*lines, *headers]), subprotocol, extensions)
