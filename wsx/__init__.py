"""wsx: a WebSocket client for Python with Elixir WebSockex's programming model.

A connection is a small process driven by an event loop; your code is a
callback module (a :class:`WebSocket` subclass, or a plain module); clients
fit into supervision trees (:class:`Supervisor`) and can be inspected and
traced at run time (:mod:`wsx.sys`).

>>> import wsx
>>> class Echo(wsx.WebSocket):
...     def handle_frame(self, frame, state):
...         print("Received", frame)
...         return ("ok", state)
>>> client = wsx.start_link("ws://127.0.0.1:8765/", Echo, None)   # doctest: +SKIP
>>> wsx.send_frame(client, ("text", "Hello"))                       # doctest: +SKIP
"""

from __future__ import annotations

from . import sys, telemetry
from .core.conn import Conn
from .core.extensions.permessage_deflate import Deflate
from .core.proxy import ProxyError, ProxyURL
from .errors import (
    BadResponseError,
    CallingSelfError,
    CloseCode,
    ConnError,
    FrameEncodeError,
    FrameError,
    HandshakeError,
    InvalidFrameError,
    NotConnectedError,
    RequestError,
    TimeoutExpired,
    URLError,
    WSXError,
)
from .io.loop import Loop, get_default_loop
from .mask import IMPLEMENTATION as implementation
from .process import NoProcessError, whereis
from .process.api import WebSocket, cast, send, send_frame, start, start_link, stop
from .process.backoff import Backoff
from .process.callbacks import (
    CallbackModule,
    CloseFrame,
    CodeChangeResult,
    ConnectResult,
    DataFrame,
    DisconnectResult,
    DisconnectStatus,
    Frame,
    FrameResult,
    OutFrame,
    PingFrame,
    PongFrame,
)
from .process.calls import Caller, SendAfter, call, reply, send_after
from .process.calls import self_ as self
from .process.client import Client
from .process.monitors import MonitorRef, demonitor, monitor
from .process.supervisor import Supervisor, SupervisorError

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "BadResponseError",
    "CallbackModule",
    "Caller",
    "CallingSelfError",
    "Client",
    "CloseCode",
    "CloseFrame",
    "CodeChangeResult",
    "Conn",
    "ConnError",
    "ConnectResult",
    "DataFrame",
    "Deflate",
    "DisconnectResult",
    "DisconnectStatus",
    "Frame",
    "FrameEncodeError",
    "FrameError",
    "FrameResult",
    "HandshakeError",
    "InvalidFrameError",
    "Loop",
    "MonitorRef",
    "NoProcessError",
    "NotConnectedError",
    "OutFrame",
    "PingFrame",
    "PongFrame",
    "ProxyError",
    "ProxyURL",
    "RequestError",
    "SendAfter",
    "Supervisor",
    "SupervisorError",
    "TimeoutExpired",
    "URLError",
    "WSXError",
    "WebSocket",
    "call",
    "cast",
    "demonitor",
    "get_default_loop",
    "implementation",
    "monitor",
    "reply",
    "self",
    "send",
    "send_after",
    "send_frame",
    "start",
    "start_link",
    "stop",
    "sys",
    "telemetry",
    "whereis",
]
