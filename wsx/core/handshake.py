"""The client side of the RFC 6455 opening handshake, sans-I/O.

:class:`ClientHandshake` builds the HTTP upgrade request
(:meth:`~ClientHandshake.request_bytes`) and parses the server's answer from
whatever byte chunks the transport delivers (:meth:`~ClientHandshake.receive_data`,
:meth:`~ClientHandshake.receive_eof`). It never touches a socket.

A valid ``101 Switching Protocols`` answer yields a :class:`HandshakeResponse`
whose ``leftover`` holds any bytes that followed the header block (the start
of the frame stream). Any other status raises :class:`~wsx.errors.RequestError`
carrying the status, headers and a bounded prefix of the body; a malformed or
non-conforming answer raises :class:`~wsx.errors.HandshakeError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from ..errors import HandshakeError, RequestError
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
from .http import HeadReader
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

_DECIMAL_RE = re.compile(r"[0-9]+")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]+")


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
        self._buf = bytearray()  # the body of a non-101 answer
        # Non-101 body reading.
        self._body_mode = ""  # "length", "close" or "chunked"
        self._body_limit = 0
        self._chunked_body = bytearray()
        self._chunk_left = 0

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
            raise self._request_error(self._body())
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
        self._chunked_body = bytearray()

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
        headers = self._headers
        transfer_codings = parse_header_list(headers.get("Transfer-Encoding", ""))
        if status < 200 or status in (204, 304):
            self._body_mode, self._body_limit = "length", 0
        elif transfer_codings:
            chunked = transfer_codings[-1].lower() == "chunked"
            self._body_mode = "chunked" if chunked else "close"
            self._body_limit = self.max_body
        else:
            lengths = set(parse_header_list(headers.get("Content-Length", "")))
            if len(lengths) == 1 and _DECIMAL_RE.fullmatch(length := lengths.pop()):
                # ASCII digits only (str.isdigit() takes "²"); a length too long
                # to convert is still a length: more than max_body.
                digits = length.lstrip("0")
                size = int(digits or "0") if len(digits) <= 18 else self.max_body
                self._body_mode, self._body_limit = "length", min(size, self.max_body)
            else:
                self._body_mode, self._body_limit = "close", self.max_body

    def _read_body(self) -> None:
        """Raise the RequestError once enough of the body is in."""
        if self._body_mode == "chunked":
            complete = self._read_chunks()
        else:
            complete = len(self._buf) >= self._body_limit
        if complete:
            raise self._request_error(self._body())

    def _read_chunks(self) -> bool:
        """Decode the buffered part of a chunked body; True once it is complete."""
        buf, body, pos = self._buf, self._chunked_body, 0
        try:
            while len(body) < self._body_limit:
                if self._chunk_left:
                    taken = buf[pos : pos + self._chunk_left]
                    body += taken
                    pos += len(taken)
                    self._chunk_left -= len(taken)
                    if self._chunk_left:
                        return False
                eol = buf.find(b"\n", pos)
                if eol == -1:
                    return len(buf) - pos > self.max_line  # give up on a runaway line
                if eol - pos > self.max_line:
                    return True  # the same line, arrived whole: same answer
                line, pos = bytes(buf[pos:eol]).strip(), eol + 1
                if not line:  # the CRLF closing the previous chunk's data
                    continue
                size = line.split(b";", 1)[0].strip()
                if not _HEX_RE.fullmatch(size):
                    return True  # malformed: keep what was decoded
                self._chunk_left = int(size, 16)
                if self._chunk_left == 0:  # last chunk; trailers are not needed
                    return True
            return True
        finally:
            del buf[:pos]

    def _body(self) -> bytes:
        if self._body_mode == "chunked":
            return bytes(self._chunked_body[: self._body_limit])
        return bytes(self._buf[: self._body_limit])

    def _request_error(self, body: bytes) -> RequestError:
        assert self._status is not None
        status, reason, _ = self._status
        self._finish()
        return RequestError(status, reason, self._headers.items(), body)
