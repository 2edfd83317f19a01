"""HTTP/1.1 message heads, sans-I/O: the part of HTTP both handshakes share.

:class:`HeadReader` collects a request or response head (start line and
header fields) from byte chunks of any size, with bounds on a line and on
the number of fields; both :class:`~wsx.core.handshake.ClientHandshake`
(a response) and :class:`~wsx.core.handshake.ServerHandshake` (a request)
read through it, so the rules for header lines are written once.
:func:`http_response` writes a response head and body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Generic, NoReturn, TypeVar

from ..errors import HandshakeError
from .headers import Headers, check_header, is_token

__all__ = ["HeadReader", "HeadTooLarge", "http_response", "REASONS"]

T = TypeVar("T")

_BAD_VALUE_BYTES_RE = re.compile(rb"[\x00\r]")

#: Reason phrases of the statuses wsx writes.
REASONS = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HeadTooLarge(HandshakeError):
    """A head broke a size bound (a line, or the number of fields): a server answers 431."""


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
        raise HeadTooLarge(
            f"{self.what} line longer than max_line={self.max_line} bytes: "
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
    lines = [f"HTTP/1.1 {status} {phrase}".rstrip()] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + bytes(body)
