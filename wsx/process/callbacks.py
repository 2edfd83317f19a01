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
"""

from __future__ import annotations

import logging
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import FrameError

if TYPE_CHECKING:
    from ..core.conn import Conn

__all__ = ["Callbacks", "DisconnectStatus", "CALLBACKS", "resolve_module"]

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

#: A frame as a callback receives or replies it.
Frame = (
    tuple[Literal["text"], str]
    | tuple[Literal["binary"], bytes]
    | Literal["ping", "pong"]
    | tuple[Literal["ping", "pong"], bytes]
)


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


class Callbacks:
    """The callbacks with WebSockex's defaults: the base of :class:`wsx.WebSocket`.

    :class:`wsx.WebSocket` (in :mod:`wsx.process.api`) adds the
    ``start_link`` and ``child_spec`` helpers, which start clients: this
    module, the contract, needs nothing of the client.
    """

    def handle_connect(self, conn: Conn, state: Any) -> Any:
        """Called after each successful connection (and reconnection)."""
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        """Called for each text or binary message received. No default: raises."""
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_frame does not handle the frame {frame!r}"
        )

    def handle_cast(self, msg: Any, state: Any) -> Any:
        """Called for :func:`wsx.cast`. No default: raises."""
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_cast does not handle the message {msg!r}"
        )

    def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
        """Called for :func:`wsx.call`; answer with :func:`wsx.reply` (now or later).

        Returns the shapes of :meth:`handle_cast`. No default: raises.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__}.handle_call does not handle the request {request!r}"
        )

    def handle_info(self, msg: Any, state: Any) -> Any:
        """Called for :func:`wsx.send`. The default logs an error and ignores it."""
        logger.error("%s received an unexpected message in handle_info: %r",
                     type(self).__qualname__, msg)
        return ("ok", state)

    def handle_ping(self, frame: Any, state: Any) -> Any:
        """Called for each ping. The default answers with a pong with the same payload."""
        if frame == "ping":
            return ("reply", "pong", state)
        return ("reply", ("pong", frame[1]), state)

    def handle_pong(self, frame: Any, state: Any) -> Any:
        """Called for each pong. The default ignores it.

        Pongs answering the client's own keepalive pings (``ping_interval``)
        are not passed here: the module did not send those pings.
        """
        return ("ok", state)

    def handle_disconnect(self, status: DisconnectStatus, state: Any) -> Any:
        """Called when the connection is lost or closed. The default lets the client end."""
        return ("ok", state)

    def terminate(self, reason: Any, state: Any) -> Any:
        """Called once when the client process ends."""
        return None

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> Any:
        """Called by :func:`wsx.sys.change_code` on the new module."""
        return ("ok", state)

    def format_status(self, opt: str, state: Any) -> Any:
        """What :func:`wsx.sys.get_status` shows of the state. The default: the state."""
        return state


def resolve_module(module: Any) -> Callbacks:
    """Turn a callback module (class, instance or plain module) into a callable object."""
    if isinstance(module, type):
        if not issubclass(module, Callbacks):
            inst: Any = _adapt(module, module())
        else:
            return module()
        return inst  # type: ignore[no-any-return]
    if isinstance(module, Callbacks):
        return module
    if isinstance(module, types.ModuleType) or module is not None:
        return _adapt(module, module)
    raise TypeError(f"a callback module must be a class, an instance or a module, not {module!r}")


def _adapt(module: Any, source: Any) -> Callbacks:
    adapter = Callbacks()
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
