"""The callback module contract: :class:`Callbacks`, WebSockex's defaults (:class:`wsx.WebSocket`).

A callback module is what ``use WebSockex`` makes in Elixir: a set of
callbacks, each with a default. Subclass :class:`wsx.WebSocket` and override what
you need, or pass a plain Python module that defines some of the functions
(the others get the defaults).

Every callback except ``terminate`` returns a tuple:

* ``handle_connect(conn, state)`` → ``("ok", state)``
* ``handle_frame(frame, state)``, ``handle_cast(msg, state)``,
  ``handle_info(msg, state)``, ``handle_ping(frame, state)``,
  ``handle_pong(frame, state)`` → ``("ok", state)`` |
  ``("reply", frame, state)`` | ``("close", state)`` |
  ``("close", (code, reason), state)``
* ``handle_call(request, caller, state)`` (:func:`wsx.call`) → the shapes of
  ``handle_cast``; the answer goes to :func:`wsx.reply(caller, value)
  <wsx.reply>`, now or later
* ``handle_disconnect(status, state)`` → ``("ok", state)`` |
  ``("reconnect", state)`` | ``("reconnect", conn, state)`` (``conn`` a
  :class:`wsx.Conn`, or a URL string that keeps the current options) |
  ``("reconnect_after", seconds, state)`` (wsx: reconnect after a delay
  without blocking the loop; see :class:`wsx.Backoff`, and the properties
  of :class:`DisconnectStatus` to classify the reason)
* ``terminate(reason, state)`` → ignored
* ``code_change(old_vsn, state, extra)`` → ``("ok", state)`` | ``("error", reason)``
* ``format_status(opt, state)`` → what :func:`wsx.sys.get_status` shows
  (``opt`` is ``"normal"`` or ``"terminate"``)

These shapes are also type aliases, defined here once and exported by
:mod:`wsx`: :data:`FrameResult`, :data:`ConnectResult`,
:data:`DisconnectResult`, :data:`CodeChangeResult` (generic over the state
type ``S``), the frames :data:`Frame` (:data:`DataFrame`, :data:`PingFrame`,
:data:`PongFrame`), :data:`OutFrame`, :data:`CloseFrame`, and
:data:`CallbackModule`. :class:`Callbacks` is generic over ``S`` too:
``class Feed(wsx.WebSocket[FeedState])`` lets a type checker check every
callback's result and the state a client is started with.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal

from ..core.conn import Conn  # at run time too: DisconnectResult names it
from ..errors import FrameError

if TYPE_CHECKING:
    # A default (PEP 696) makes a bare ``wsx.WebSocket`` mean ``WebSocket[Any]``.
    # typing_extensions is only read by the type checker (its stubs come with
    # it): wsx has no run-time dependency, and typing.TypeVar takes no default
    # before Python 3.13.
    from typing_extensions import TypeVar

    from .caller import Caller

    S = TypeVar("S", default=Any)
else:
    from typing import TypeVar

    S = TypeVar("S")

__all__ = [
    "Callbacks", "DisconnectStatus", "CALLBACKS", "resolve_module",
    "Frame", "DataFrame", "PingFrame", "PongFrame", "OutFrame", "CloseFrame",
    "FrameResult", "ConnectResult", "DisconnectResult", "CodeChangeResult", "CallbackModule",
]

logger = logging.getLogger("wsx")

CALLBACKS = (
    "handle_connect",
    "handle_frame",
    "handle_cast",
    "handle_call",
    "handle_info",
    "handle_ping",
    "handle_pong",
    "handle_disconnect",
    "terminate",
    "code_change",
    "format_status",
)

#: Optional module attributes: ``trap_exit`` (see :mod:`wsx.process.client`) and
#: ``vsn`` (the version :func:`wsx.sys.change_code` hands to ``code_change``).
ATTRIBUTES = ("trap_exit", "vsn")

# The shapes of the callback contract as type aliases, exported by wsx (the
# names of __all__ after resolve_module). The generic ones are unions of
# tuples subscriptable at run time (``wsx.FrameResult[int]``) on every
# supported Python; ``S`` is the type of the state.

#: A message as ``handle_frame`` receives it: ``("text", str)`` or ``("binary", bytes)``.
DataFrame = tuple[Literal["text"], str] | tuple[Literal["binary"], bytes]

#: A ping as ``handle_ping`` receives it: ``"ping"`` (empty payload) or ``("ping", bytes)``.
PingFrame = Literal["ping"] | tuple[Literal["ping"], bytes]

#: A pong as ``handle_pong`` receives it: ``"pong"`` (empty payload) or ``("pong", bytes)``.
PongFrame = Literal["pong"] | tuple[Literal["pong"], bytes]

#: A frame as a callback receives it: a :data:`DataFrame`, :data:`PingFrame` or
#: :data:`PongFrame`. Each is a valid :data:`OutFrame` too.
Frame = DataFrame | PingFrame | PongFrame

_Bytes = bytes | bytearray | memoryview

#: A frame to send: with :func:`wsx.send_frame` or as the ``frame`` of a
#: ``("reply", frame, state)``. Every :data:`Frame`; a binary, ping or pong
#: payload of any bytes-like type (a ping or pong payload may also be a str);
#: and the pieces of a fragmented message, ``("fragment", "text" | "binary",
#: payload)``, ``("continuation", payload)`` and ``("finish", payload)``. A
#: text payload is a ``str`` (stricter than the run time, which also takes
#: valid UTF-8 bytes: the type checker flags ``("text", b"...")``).
OutFrame = (
    tuple[Literal["text"], str]
    | tuple[Literal["binary"], _Bytes]
    | Literal["ping", "pong"]
    | tuple[Literal["ping", "pong"], _Bytes | str]
    | tuple[Literal["fragment"], Literal["text", "binary"], str | _Bytes]
    | tuple[Literal["continuation", "finish"], str | _Bytes]
)

#: What :func:`wsx.send_frame` takes besides an :data:`OutFrame` to start the
#: close handshake: ``"close"`` (1000) or ``("close", code, reason)``.
CloseFrame = Literal["close"] | tuple[Literal["close"], int, str]

#: What ``handle_frame``, ``handle_cast``, ``handle_call``, ``handle_info``,
#: ``handle_ping`` and ``handle_pong`` return: ``("ok", state)``,
#: ``("reply", frame, state)`` (an :data:`OutFrame`), ``("close", state)`` (1000)
#: or ``("close", (code, reason), state)``. ``S`` is the type of the state.
FrameResult = (
    tuple[Literal["ok"], S]
    | tuple[Literal["reply"], OutFrame, S]
    | tuple[Literal["close"], S]
    | tuple[Literal["close"], tuple[int, str], S]
)

#: What ``handle_connect`` returns: ``("ok", state)`` (it may neither reply nor close).
ConnectResult = tuple[Literal["ok"], S]

#: What ``handle_disconnect`` returns: ``("ok", state)`` (the client ends),
#: ``("reconnect", state)``, ``("reconnect", conn, state)`` (a :class:`wsx.Conn`
#: or a URL string) or ``("reconnect_after", seconds, state)`` (seconds >= 0).
DisconnectResult = (
    tuple[Literal["ok"], S]
    | tuple[Literal["reconnect"], S]
    | tuple[Literal["reconnect"], Conn | str, S]
    | tuple[Literal["reconnect_after"], float, S]
)

#: What ``code_change`` returns: ``("ok", state)`` (the new module's state) or
#: ``("error", reason)`` (keep the old module).
CodeChangeResult = tuple[Literal["ok"], S] | tuple[Literal["error"], Any]


@dataclass
class DisconnectStatus:
    """What ``handle_disconnect`` receives (WebSockex's status map).

    ``reason`` is one of ``("local", "normal")``, ``("remote", "normal")``,
    ``("local", code, reason)``, ``("remote", code, reason)``,
    ``("remote", "closed")`` or ``("error", exception)``. ``attempt_number``
    counts the calls since the last successful connection (1 for the first).
    ``status["reason"]`` works too.

    The properties classify the reason for a reconnect policy: :attr:`clean`
    (a normal close), :attr:`code` (the close code), :attr:`remote` (the
    server ended it) and :attr:`error` (the exception of an error)::

        backoff = wsx.Backoff(base=0.5, cap=30)

        def handle_disconnect(self, status, state):
            if status.clean:                           # 1000/1001 or a normal local close
                return ("ok", state)
            if status.code in (1002, 1003, 1007, 1008, 1009, 1010):
                return ("ok", state)                   # retrying would fail the same way
            # 1011/1012/1013/1014, TCP resets, keepalive timeouts...: try again
            return ("reconnect_after", backoff.delay(status.attempt_number), state)
    """

    reason: Any
    attempt_number: int
    conn: Conn

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def clean(self) -> bool:
        """True for a normal close: ``("local", "normal")``, ``("remote", "normal")``
        (a close frame without a code) or a close code 1000 or 1001 either way.

        False for errors (``("error", exc)``), a TCP close without a close
        frame (``("remote", "closed")``) and every other close code.
        """
        r = self.reason
        if r == ("local", "normal") or r == ("remote", "normal"):
            return True
        return type(r) is tuple and len(r) == 3 and r[1] in (1000, 1001)

    @property
    def code(self) -> int | None:
        """The close code that ended the connection, when there was one.

        The server's code for ``("remote", code, reason)``; ours for
        ``("local", code, reason)`` and 1000 for ``("local", "normal")``;
        for ``("error", FrameError)`` (the server broke the protocol) the
        code the client closed with (1002, 1007 or 1009). ``None`` for a
        close frame without a code, a TCP close without a close frame and
        other errors (connection errors, :class:`wsx.TimeoutExpired`).
        """
        r = self.reason
        if type(r) is not tuple or len(r) < 2:
            return None
        if len(r) == 3 and isinstance(r[1], int):
            return int(r[1])
        if r == ("local", "normal"):
            return 1000
        if r[0] == "error" and isinstance(r[1], FrameError):
            return r[1].code
        return None

    @property
    def remote(self) -> bool:
        """True when the server ended the connection (a close frame or a TCP close)."""
        r = self.reason
        return type(r) is tuple and len(r) >= 2 and r[0] == "remote"

    @property
    def error(self) -> BaseException | None:
        """The exception of an ``("error", exception)`` reason, else ``None``.

        E.g. :class:`wsx.ConnError` (connection refused or broken),
        :class:`wsx.FrameError` (the server broke the protocol),
        :class:`wsx.TimeoutExpired` (``option == "ping_timeout"``: the
        keepalive got no answer), :class:`wsx.HandshakeError`.
        """
        r = self.reason
        if type(r) is tuple and len(r) == 2 and r[0] == "error" and isinstance(r[1], BaseException):
            return r[1]
        return None


class Callbacks(Generic[S]):
    """The callbacks with WebSockex's defaults: the base of :class:`wsx.WebSocket`.

    :class:`wsx.WebSocket` (in :mod:`wsx.process.api`) adds the
    ``start_link`` and ``child_spec`` helpers, which start clients: this
    module, the contract, needs nothing of the client.

    Generic over the type ``S`` of the state (``Any`` when not given). Each
    callback that returns a result is typed ``X[S] | Awaitable[X[S]]``, so
    that a plain override and an ``async def`` one both match.
    """

    def handle_connect(
        self, conn: Conn, state: S
    ) -> ConnectResult[S] | Awaitable[ConnectResult[S]]:
        """Called after each successful connection (and reconnection)."""
        return ("ok", state)

    def handle_frame(
        self, frame: DataFrame, state: S
    ) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for each text or binary message received. No default: raises."""
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_frame does not handle the frame {frame!r}"
        )

    def handle_cast(self, msg: Any, state: S) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for :func:`wsx.cast`. No default: raises."""
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_cast does not handle the message {msg!r}"
        )

    def handle_call(
        self, request: Any, caller: Caller, state: S
    ) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for :func:`wsx.call`; answer with :func:`wsx.reply` (now or later).

        Returns the shapes of :meth:`handle_cast`. No default: raises.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_call does not handle the request {request!r}"
        )

    def handle_info(self, msg: Any, state: S) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for :func:`wsx.send`. The default logs an error and ignores it."""
        logger.error("%s received an unexpected message in handle_info: %r",
                     type(self).__qualname__, msg)
        return ("ok", state)

    def handle_ping(
        self, frame: PingFrame, state: S
    ) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for each ping. The default answers with a pong with the same payload."""
        if frame == "ping":
            return ("reply", "pong", state)
        return ("reply", ("pong", frame[1]), state)

    def handle_pong(
        self, frame: PongFrame, state: S
    ) -> FrameResult[S] | Awaitable[FrameResult[S]]:
        """Called for each pong. The default ignores it.

        Pongs answering the client's own keepalive pings (``ping_interval``)
        are not passed here: the module did not send those pings.
        """
        return ("ok", state)

    def handle_disconnect(
        self, status: DisconnectStatus, state: S
    ) -> DisconnectResult[S] | Awaitable[DisconnectResult[S]]:
        """Called when the connection is lost or closed. The default lets the client end."""
        return ("ok", state)

    def terminate(self, reason: Any, state: S) -> object:
        """Called once when the client process ends; what it returns is ignored."""
        return None

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> CodeChangeResult[S]:
        """Called by :func:`wsx.sys.change_code` on the new module, with the old state."""
        return ("ok", state)

    def format_status(self, opt: Literal["normal", "terminate"], state: S) -> object:
        """What :func:`wsx.sys.get_status` shows of the state. The default: the state."""
        return state


#: A callback module of a state of type ``S``, as :func:`wsx.start_link` and
#: :func:`wsx.start` take it: a :class:`wsx.WebSocket` subclass or instance, or
#: a plain module (untyped: ``S`` is then the state's type). Any other class
#: or object with callbacks works at run time but is not of this type.
CallbackModule = type[Callbacks[S]] | Callbacks[S] | types.ModuleType


def resolve_module(module: Any) -> Callbacks[Any]:
    """Turn a callback module (class, instance or plain module) into a callable object."""
    if isinstance(module, type):
        if not issubclass(module, Callbacks):
            inst: Any = _adapt(module, module())
        else:
            return module()
        return inst  # type: ignore[no-any-return]
    if isinstance(module, Callbacks):
        return module
    origin = getattr(module, "__origin__", None)  # a subscripted class: Feed[int]
    if isinstance(origin, type) and issubclass(origin, Callbacks):
        return module()  # type: ignore[no-any-return]
    if isinstance(module, types.ModuleType) or module is not None:
        return _adapt(module, module)
    raise TypeError(f"a callback module must be a class, an instance or a module, not {module!r}")


def _adapt(module: Any, source: Any) -> Callbacks[Any]:
    adapter: Callbacks[Any] = Callbacks()
    found = False
    for name in CALLBACKS:
        fn = getattr(source, name, None)
        if fn is not None and callable(fn):
            setattr(adapter, name, fn)
            found = True
    if not found:
        raise TypeError(f"{module!r} defines none of the callbacks {', '.join(CALLBACKS)}")
    # Module attributes the runtime reads besides the callbacks.
    for name in ATTRIBUTES:
        if hasattr(source, name):
            setattr(adapter, name, getattr(source, name))
    return adapter
