"""The echo server's side of the HTTP upgrade request, sans-I/O (see :mod:`.echo_server`)."""

from __future__ import annotations

from ..core.headers import Headers, parse_header_list

__all__ = ["HTTPRefusal", "parse_request", "has_token"]


class HTTPRefusal(Exception):
    """The request cannot be upgraded: answer ``status`` and close."""

    def __init__(self, status: int, reason: str, detail: str, extra: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.extra = extra

    def response(self) -> bytes:
        """The HTTP answer to send before closing."""
        body = (self.detail + "\n").encode("utf-8")
        return (
            f"HTTP/1.1 {self.status} {self.reason}\r\n"
            f"{self.extra}"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1") + body


def parse_request(head: bytes) -> tuple[str, str, str, Headers]:
    """Split a request head (without the blank line) into method, target, version, headers."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HTTPRefusal(400, "Bad Request", f"invalid HTTP request line {lines[0][:200]!r}")
    method, target, version = parts
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HTTPRefusal(400, "Bad Request", f"invalid header line {line[:200]!r}")
        headers.add(name, value.strip(" \t"))
    return method, target, version, headers


def has_token(headers: Headers, name: str, token: str) -> bool:
    """True if the comma-separated header ``name`` lists ``token`` (case-insensitive)."""
    return token in (t.lower() for t in parse_header_list(headers.get(name, "")))
