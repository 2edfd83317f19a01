"""HTTP header values of the upgrade, sans-I/O: the header map and the extension lists.

:class:`Headers` is the ordered, case-insensitive multi-map of a request or
response; :func:`parse_header_list`, :func:`parse_extensions` and
:func:`build_extension_offer` read and write the comma-separated values of
``Connection``, ``Upgrade``, ``Sec-WebSocket-Protocol`` and
``Sec-WebSocket-Extensions`` (RFC 7230 section 7, RFC 6455 section 9.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from ..errors import HandshakeError

__all__ = [
    "Extension",
    "Headers",
    "parse_header_list",
    "parse_extensions",
    "build_extension_offer",
    "check_header",
    "is_token",
    "parse_status_line",
]

Extension = tuple[str, list[tuple[str, str | None]]]
"""An extension as ``(name, [(param, value or None), ...])``."""

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_OWS_RE = re.compile(r"[ \t]*")
# qdtext and quoted-pair from RFC 7230 section 3.2.6.
_QUOTED_RE = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"')
_UNESCAPE_RE = re.compile(r"\\(.)")
# Control characters (C0 but tab, DEL, C1) that no header value may carry.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


# An HTTP/1.0 or 1.1 status line: three ASCII digits, a reason without controls.
_STATUS_RE = re.compile(rb"(HTTP/1\.[01]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")


def parse_status_line(line: bytes) -> tuple[int, str, str] | None:
    """``(code, reason, version)`` of an HTTP/1.x status line; None if it is not one.

    Only ``HTTP/1.0`` and ``HTTP/1.1`` with a status of three ASCII digits
    are status lines (``"HTTP/1.9 200"`` and ``"HTTP/1.1 2\u00b2\u00b2"`` are not).
    """
    match = _STATUS_RE.fullmatch(line)
    if match is None:
        return None
    version, code, reason = match.groups()
    return int(code), (reason or b"").decode("latin-1"), version.decode("ascii")


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def check_header(name: object, value: object) -> None:
    """Raise ValueError unless ``name: value`` can be sent as a request header line."""
    if not isinstance(name, str) or not is_token(name):
        raise ValueError(f"invalid header name {name!r}")
    if not isinstance(value, str):
        raise ValueError(f"invalid value {value!r} for header {name!r}: not a str")
    bad = _CONTROL_RE.search(value)
    if bad is not None:
        raise ValueError(
            f"invalid value {value!r} for header {name!r}: control character "
            f"{bad.group()!r} at index {bad.start()}"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"value {value!r} of header {name!r} is not ISO-8859-1 text") from None


class Headers:
    """An ordered, case-insensitive multi-map of ``(name, value)`` string pairs.

    Names keep the case they were received with. Iteration yields every name
    in order (repeated names repeat) and ``len`` counts header lines.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        self._items.append((name, value))
        self._index.setdefault(name.lower(), []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: str | None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of ``name``, repeated lines joined with ``", "``, or ``default``."""
        values = self._index.get(name.lower())
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` in order (an empty list when absent)."""
        return list(self._index.get(name.lower(), ()))

    def items(self) -> list[tuple[str, str]]:
        """Return the ``(name, value)`` pairs as received."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def parse_header_list(value: str) -> list[str]:
    """Split a comma-separated header value into stripped, non-empty elements."""
    return [element for element in (part.strip(" \t") for part in value.split(",")) if element]


def parse_extensions(values: Sequence[str]) -> list[Extension]:
    """Parse ``Sec-WebSocket-Extensions`` header values (RFC 6455 section 9.1).

    ``"permessage-deflate; client_max_window_bits=10, x-foo"`` gives
    ``[("permessage-deflate", [("client_max_window_bits", "10")]), ("x-foo", [])]``.
    Parameter values may be tokens or quoted strings (unquoted in the result,
    and then required to be tokens); a parameter without value gives ``None``.
    Raises :class:`~wsx.errors.HandshakeError` naming the bad text.
    """
    if isinstance(values, str):
        values = [values]
    extensions: list[Extension] = []
    for value in values:
        _parse_extension_value(value, extensions)
    return extensions


def _parse_extension_value(value: str, out: list[Extension]) -> None:
    def fail(pos: int, expected: str) -> HandshakeError:
        found = repr(value[pos:]) if pos < len(value) else "end of value"
        return HandshakeError(
            f"invalid Sec-WebSocket-Extensions {value!r}: expected {expected} at {found}"
        )

    def skip_ows(pos: int) -> int:
        return _OWS_RE.match(value, pos).end()  # type: ignore[union-attr]

    pos, end = 0, len(value)
    while True:
        pos = skip_ows(pos)
        if pos == end:
            return
        if value[pos] == ",":  # empty list element, allowed by RFC 7230 section 7
            pos += 1
            continue
        match = _TOKEN_RE.match(value, pos)
        if match is None:
            raise fail(pos, "an extension name")
        name, pos = match.group(), match.end()
        params: list[tuple[str, str | None]] = []
        while True:
            pos = skip_ows(pos)
            if pos == end or value[pos] == ",":
                break
            if value[pos] != ";":
                raise fail(pos, "';' or ','")
            pos = skip_ows(pos + 1)
            match = _TOKEN_RE.match(value, pos)
            if match is None:
                raise fail(pos, "a parameter name")
            param, pos = match.group(), match.end()
            param_value = None
            pos = skip_ows(pos)
            if pos < end and value[pos] == "=":
                pos = skip_ows(pos + 1)
                match = _TOKEN_RE.match(value, pos)
                if match is not None:
                    param_value = match.group()
                else:
                    match = _QUOTED_RE.match(value, pos)
                    if match is None:
                        raise fail(pos, f"a value for parameter {param!r}")
                    param_value = _UNESCAPE_RE.sub(r"\1", match.group(1))
                    if not is_token(param_value):
                        raise fail(pos, f"a token inside the quoted value of {param!r}")
                pos = match.end()
            params.append((param, param_value))
        out.append((name, params))


def build_extension_offer(
    extensions: Iterable[tuple[str, Iterable[tuple[str, str | None]]]],
) -> str:
    """Format ``(name, [(param, value or None), ...])`` pairs as a header value.

    The inverse of :func:`parse_extensions`. Names, parameters and values must
    be tokens (``ValueError`` otherwise), so no quoting is ever needed.
    """
    parts = []
    for name, params in extensions:
        if not is_token(name):
            raise ValueError(f"extension name {name!r} is not a token")
        pieces = [name]
        for param, value in params:
            if not is_token(param):
                raise ValueError(f"parameter name {param!r} of extension {name!r} is not a token")
            if value is None:
                pieces.append(param)
            elif is_token(value):
                pieces.append(f"{param}={value}")
            else:
                raise ValueError(f"value {value!r} of parameter {param!r} is not a token")
        parts.append("; ".join(pieces))
    return ", ".join(parts)
