"""The wsx exception hierarchy.

Every exception raised by wsx derives from :class:`WSXError`. Names follow
WebSockex's (``WebSockex.ConnError`` becomes :class:`ConnError`, and so on),
and every message names the offending value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "WSXError",
    "URLError",
    "ConnError",
    "RequestError",
    "HandshakeError",
    "BadResponseError",
    "FrameError",
    "FrameEncodeError",
    "InvalidFrameError",
    "NotConnectedError",
    "CallingSelfError",
    "CloseCode",
    "TimeoutExpired",
]


class CloseCode:
    """RFC 6455 section 7.4.1 close status codes used by wsx."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent on the wire
    ABNORMAL = 1006  # never sent on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


class WSXError(Exception):
    """Base class of every exception raised by wsx."""


class URLError(WSXError, ValueError):
    """The URL cannot be used for a WebSocket connection."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"invalid WebSocket URL {url!r}: {reason}")


class ConnError(WSXError, ConnectionError):
    """The TCP/TLS connection could not be opened, or broke.

    ``original`` is the underlying exception (an ``OSError``, ``ssl.SSLError``,
    ``TimeoutError``...) when there is one.
    """

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        self.original = original
        if original is not None:
            message = f"{message}: {original!r}"
        super().__init__(message)


class HandshakeError(WSXError):
    """The server's answer to the opening handshake is not a valid WebSocket upgrade."""

    def __init__(self, message: str, response: Any = None) -> None:
        self.response = response
        #: The ``Sec-WebSocket-Key`` the client sent (WebSockex's
        #: ``challenge``), set once the request was written; else None.
        self.challenge: str | None = None
        super().__init__(message)


class RequestError(HandshakeError):
    """The server answered the upgrade request with a status other than 101.

    Carries ``status`` (int), ``reason`` (the reason phrase), ``headers``
    (a list of ``(name, value)`` pairs) and ``body`` (at most a bounded prefix
    of the response body, as bytes).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.body = body
        msg = f"server answered the upgrade with HTTP {status} {reason!r}, expected 101"
        if body:
            msg += f"; body starts {body[:200]!r}"
        super().__init__(msg)

    @property
    def code(self) -> int:
        """The HTTP status (WebSockex's ``RequestError.code``)."""
        return self.status


class BadResponseError(WSXError):
    """A callback returned a value that is not one of its allowed shapes."""

    def __init__(self, module: Any, callback: str, response: Any) -> None:
        self.module = module
        self.callback = callback
        self.response = response
        name = getattr(module, "__qualname__", None) or getattr(module, "__name__", repr(module))
        super().__init__(f"bad return value from {name}.{callback}: {response!r}")


class FrameError(WSXError):
    """The peer sent bytes that break RFC 6455 framing or message rules.

    ``code`` is the close code the connection must be failed with
    (1002 protocol error, 1007 invalid data, 1009 message too big).
    ``frames`` holds the frames the parser completed before the error.
    """

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        #: Frames that were complete before the error (set by the parser).
        self.frames: list[Any] = []
        super().__init__(f"{message} (close code {code})")


class FrameEncodeError(WSXError, ValueError):
    """A frame cannot be encoded: its payload breaks a protocol rule."""

    def __init__(self, message: str, frame: Any = None) -> None:
        self.frame = frame
        super().__init__(message)


class InvalidFrameError(WSXError, ValueError):
    """The value given as a frame is not one of the frame shapes wsx knows."""

    def __init__(self, frame: Any, detail: str = "") -> None:
        self.frame = frame
        msg = f"invalid frame {frame!r}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class NotConnectedError(WSXError):
    """The client is not connected (it is connecting, closing or closed)."""

    def __init__(self, connection_state: str) -> None:
        self.connection_state = connection_state
        super().__init__(f"not connected: the client is {connection_state}")


class CallingSelfError(WSXError):
    """A blocking wsx function was called from the client's own callback."""

    def __init__(self, function: str, instead: str | None = None) -> None:
        self.function = function
        super().__init__(
            f"{function} called from the client's own callback would deadlock; "
            + (instead or 'return ("reply", frame, state) from the callback instead')
        )


class TimeoutExpired(WSXError, TimeoutError):
    """A wsx deadline set by an option passed.

    ``option`` names the option (``"ping_timeout"``: the server showed no
    sign of life after a keepalive ping, the connection was dropped;
    ``"send_timeout"``: :func:`wsx.send_frame` waited that long for the write
    buffer to drain and did not send the frame) and ``seconds`` is its value.
    """

    def __init__(self, option: str, seconds: float, message: str) -> None:
        self.option = option
        self.seconds = seconds
        super().__init__(f"{message} ({option}={seconds:g} s)")
