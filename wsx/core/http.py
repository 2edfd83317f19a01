"""HTTP/1.1 message heads, sans-I/O: the part of HTTP both handshakes share.

:class:`HeadReader` collects a request or response head (start line and
header fields) from byte chunks of any size, with bounds on a line and on
the number of fields; both :class:`~wsx.core.handshake.ClientHandshake`
(a response) and :class:`~wsx.core.handshake.ServerHandshake` (a request)
read through it, so the rules for header lines are written once.
:func:`http_response` writes a response head and body.
"""

from __future__ import annotations

import http
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import parse_qsl

from ..errors import HandshakeError
from .headers import Extension, Headers, check_header, is_token, parse_extensions, parse_header_list

__all__ = [
    "BodyReader",
    "HeadReader",
    "HeadTooLarge",
    "StartLineTooLong",
    "Refusal",
    "Request",
    "http_response",
    "parse_request_line",
    "REASONS",
]

T = TypeVar("T")

_BAD_VALUE_BYTES_RE = re.compile(rb"[\x00\r]")
_DECIMAL_RE = re.compile(r"[0-9]+")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]+")

#: The reason phrase of each HTTP status (RFC 9110).
REASONS = {status.value: status.phrase for status in http.HTTPStatus}


_REQUEST_LINE_RE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) (HTTP/1\.[0-9])")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """``(method, target, version)`` of an HTTP/1.x request line; HandshakeError if not one."""
    match = _REQUEST_LINE_RE.fullmatch(line)
    if match is None:
        hint = " (a TLS handshake: this is a plain ws:// server)" if line[:1] == b"\x16" else ""
        raise HandshakeError(f"invalid HTTP request line {line[:200]!r}{hint}")
    method, target, version = (part.decode("latin-1") for part in match.groups())
    return method, target, version


@dataclass
class Request:
    """An HTTP request a server received: the WebSocket upgrade request, or any other.

    ``headers`` are case-insensitive and keep repeated names; ``peer`` is
    the client's address (set by the server that accepted the connection).
    """

    method: str
    target: str
    """The request target as sent (``/chat?room=1``)."""
    version: str
    headers: Headers
    peer: Any = None
    leftover: bytes = field(default=b"", repr=False)
    """Bytes received after the head: the start of the frame stream."""

    @property
    def path(self) -> str:
        """The target's path (``/chat``)."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> dict[str, str]:
        """The target's query parameters (``{"room": "1"}``; the last of repeated names)."""
        return dict(parse_qsl(self.target.partition("?")[2], keep_blank_values=True))

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return parse_header_list(self.headers.get("Sec-WebSocket-Protocol", ""))

    @property
    def extensions(self) -> list[Extension]:
        """The extensions the client offered, parsed (HandshakeError if malformed)."""
        return parse_extensions(self.headers.get_all("Sec-WebSocket-Extensions"))

    def lists(self, name: str, token: str) -> bool:
        """True if the comma-separated header ``name`` lists ``token`` (case-insensitive)."""
        token = token.lower()
        return any(t.lower() == token for t in parse_header_list(self.headers.get(name, "")))


class Refusal(HandshakeError):
    """A request a server answers with an HTTP error instead of the upgrade.

    ``status`` is the HTTP status (400, 403, 405, 426, 431...), ``detail``
    the reason given in the body, ``headers`` what the response adds
    (``Sec-WebSocket-Version: 13`` with a 426).
    """

    def __init__(
        self, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(f"{status} {REASONS.get(status, '')}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = list(headers)

    def response_bytes(self) -> bytes:
        """The HTTP response to send before closing the connection."""
        upgrade = any(name.lower() == "upgrade" for name, _ in self.headers)
        connection = "Upgrade, close" if upgrade else "close"  # RFC 9110 7.8
        return http_response(
            self.status, self.detail + "\n", [*self.headers, ("Connection", connection)])


class HeadTooLarge(HandshakeError):
    """A head broke a size bound (a header line, or the number of fields): a server answers 431."""


class StartLineTooLong(HeadTooLarge):
    """The start line (a request's: its target) is over the bound: a server answers 414."""


class HeadReader(Generic[T]):
    """Collect one HTTP head incrementally.

    ``what`` names the message in errors (``"response"``, ``"request"``).
    ``start`` parses the start line as soon as it is in (so a bad one fails
    before the rest arrives) and its result is kept as :attr:`start`.
    :meth:`feed` returns True once the blank line ending the head is in;
    :attr:`rest` then holds the bytes that followed it.
    """

    def __init__(
        self, what: str, start: Callable[[bytes], T], *, max_line: int, max_headers: int
    ) -> None:
        self.what = what
        self._parse_start = start
        self.max_line = max_line
        self.max_headers = max_headers
        self.start: T | None = None
        self.headers = Headers()
        self.rest = bytearray()  # the buffer; after the head: what followed it
        self._line_start = 0  # start of the line being read
        self._scan = 0  # where to resume looking for b"\n"

    @property
    def received(self) -> bytes:
        """The bytes buffered so far (for an error message)."""
        return bytes(self.rest)

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """Add received bytes; True once the head is complete (HandshakeError if broken)."""
        buf = self.rest
        buf += data
        while True:
            eol = buf.find(b"\n", max(self._scan, self._line_start))
            if eol == -1:
                self._scan = len(buf)
                if len(buf) - self._line_start > self.max_line + 1:  # +1: a pending b"\r"
                    self._line_too_long(buf[self._line_start :])
                return False
            start, self._line_start = self._line_start, eol + 1
            line = bytes(buf[start : eol - 1 if eol > start and buf[eol - 1] == 0x0D else eol])
            if len(line) > self.max_line:
                self._line_too_long(line)
            if self.start is None:
                self.start = self._parse_start(line)
            elif line:
                self._field(line)
            else:
                del buf[: self._line_start]
                return True

    def _line_too_long(self, line: bytes | bytearray) -> NoReturn:
        if self.start is None:
            raise StartLineTooLong(
                f"{self.what} line longer than max_line={self.max_line} bytes: "
                f"{bytes(line[:100])!r}...")
        raise HeadTooLarge(
            f"{self.what} header line longer than max_line={self.max_line} bytes: "
            f"{bytes(line[:100])!r}..."
        )

    def _field(self, line: bytes) -> None:
        if line[:1] in (b" ", b"\t"):
            raise HandshakeError(f"obsolete line folding is not allowed: {line!r}")
        name, colon, value = line.partition(b":")
        text_name = name.decode("latin-1")
        if not colon or not is_token(text_name):
            raise HandshakeError(f"invalid header line {line!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE_BYTES_RE.search(value):
            raise HandshakeError(f"invalid character in header line {line!r}")
        if len(self.headers) >= self.max_headers:
            raise HeadTooLarge(
                f"{self.what} has more than max_headers={self.max_headers} header lines"
            )
        self.headers.add(text_name, value.decode("latin-1"))


def http_response(
    status: int,
    body: bytes | str = b"",
    headers: Sequence[tuple[str, str]] = (),
    *,
    reason: str | None = None,
) -> bytes:
    """An HTTP/1.1 response: status line, ``headers``, then ``body``.

    A non-101 response gets ``Content-Length`` (and a text ``Content-Type``
    for a str body) unless ``headers`` give them. Raises ``ValueError`` for a
    status outside 100-599 or a header that cannot be sent (a newline in a
    value, a name that is not a token).
    """
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"HTTP status must be an int from 100 to 599, not {status!r}")
    given = set()
    for name, value in headers:
        check_header(name, value)
        given.add(name.lower())
    if isinstance(body, str):
        body = body.encode("utf-8")
        if "content-type" not in given:
            headers = [*headers, ("Content-Type", "text/plain; charset=utf-8")]
    if status != 101 and "content-length" not in given and "transfer-encoding" not in given:
        headers = [*headers, ("Content-Length", str(len(body)))]
    phrase = REASONS.get(status, "") if reason is None else reason
    # The space after the status stays with an empty phrase (RFC 9112 section 4).
    lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + bytes(body)


class BodyReader:
    """Read the body of a response (``status``, ``headers``), keeping at most ``max_body`` bytes.

    The body ends as the head says: a ``Content-Length``, chunked coding,
    or the end of the connection; none for 1xx, 204 and 304. Enough is read
    once ``max_body`` bytes are in. :meth:`feed` takes the buffer of
    received bytes (consuming what it decoded of a chunked body) and
    returns True once the body is complete or enough of it is in.
    """

    def __init__(self, status: int, headers: Headers, *, max_body: int, max_line: int) -> None:
        self.max_line = max_line
        self._chunked_body = bytearray()
        self._chunk_left = 0
        self._raw = bytearray()
        transfer_codings = parse_header_list(headers.get("Transfer-Encoding", ""))
        if status < 200 or status in (204, 304):
            self._mode, self._limit = "length", 0
        elif transfer_codings:
            chunked = transfer_codings[-1].lower() == "chunked"
            self._mode = "chunked" if chunked else "close"
            self._limit = max_body
        else:
            lengths = set(parse_header_list(headers.get("Content-Length", "")))
            if len(lengths) == 1 and _DECIMAL_RE.fullmatch(length := lengths.pop()):
                # ASCII digits only (str.isdigit() takes "²"); a length too long
                # to convert is still a length: more than max_body.
                digits = length.lstrip("0")
                size = int(digits or "0") if len(digits) <= 18 else max_body
                self._mode, self._limit = "length", min(size, max_body)
            else:
                self._mode, self._limit = "close", max_body

    def feed(self, buf: bytearray) -> bool:
        """True once enough of the body is in ``buf`` (the bytes received after the head)."""
        self._raw = buf
        if self._mode == "chunked":
            return self._read_chunks(buf)
        return len(buf) >= self._limit

    def body(self) -> bytes:
        """The body received so far, at most ``max_body`` bytes of it."""
        if self._mode == "chunked":
            return bytes(self._chunked_body[: self._limit])
        return bytes(self._raw[: self._limit])

    def close(self) -> None:
        """Let go of the buffers."""
        self._chunked_body = bytearray()
        self._raw = bytearray()

    def _read_chunks(self, buf: bytearray) -> bool:
        """Decode the buffered part of a chunked body; True once it is complete."""
        body, pos = self._chunked_body, 0
        try:
            while len(body) < self._limit:
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
