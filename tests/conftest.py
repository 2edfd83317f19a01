"""Shared test peers: a well-behaved ``websockets`` server and raw-socket servers.

Every peer listens on 127.0.0.1 on a free port and runs in background threads.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest

from wsx.core.handshake import accept_key


def wait_until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``pred`` until it returns something true (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what or pred}")
        time.sleep(0.005)


# ------------------------------------------------------------ websockets server
class WSServer:
    """A ``websockets`` asyncio server in its own thread.

    ``handler`` is an ``async def handler(ws)``; the default echoes every
    message back. ``url`` is the address to connect to; ``connections``
    counts accepted connections.
    """

    def __init__(self, handler: Callable[[Any], Awaitable[None]] | None = None, **kwargs: Any):
        self.handler = handler or self.echo
        self.kwargs = kwargs
        self.connections = 0
        self.received: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("websockets server did not start")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def echo(self, ws: Any) -> None:
        async for msg in ws:
            self.received.append(msg)
            await ws.send(msg)

    async def _handle(self, ws: Any) -> None:
        self.connections += 1
        try:
            await self.handler(ws)
        except Exception:
            pass

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = self.loop.create_future()
            async with serve(self._handle, "127.0.0.1", self.port, **self.kwargs) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop

        asyncio.run(main())

    def close(self) -> None:
        stop, loop = self._stop, self.loop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        self._thread.join(10)


@pytest.fixture
def ws_server() -> Iterator[Callable[..., WSServer]]:
    """Factory: ``ws_server(handler=None, **serve_kwargs)`` starts a websockets server."""
    servers: list[WSServer] = []

    def make(handler: Callable[[Any], Awaitable[None]] | None = None, **kwargs: Any) -> WSServer:
        server = WSServer(handler, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def echo_server(ws_server: Callable[..., WSServer]) -> WSServer:
    """A websockets echo server."""
    return ws_server()


# ------------------------------------------------------------- raw TCP servers
def read_request(sock: socket.socket, limit: int = 65536) -> bytes:
    """Read an HTTP request head (up to the blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            break
    return data


def accept_response(request: bytes, extra: str = "") -> bytes:
    """A valid 101 answer for ``request`` (extra header lines may be added)."""
    key = ""
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = accept_key(key)  # the core's rule (RFC 6455 4.2.2)
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked (server to client) frame, written byte by byte.

    Not the core's encoder on purpose: a misbehaving peer writes frames the
    encoder refuses (a long or fragmented control frame, any RSV bits).
    """
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """``n`` bytes from ``sock``; None on EOF."""
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    """Read one client frame: ``(opcode, unmasked payload)``; None on EOF.

    Independent of wsx's parser on purpose: it checks what wsx's client writes.

    Unmasks with one big-int XOR, so that megabyte payloads read fast.
    """
    head = recv_exact(sock, 2)
    if head is None:
        return None
    n = head[1] & 0x7F
    if n >= 126:
        raw = recv_exact(sock, 2 if n == 126 else 8)
        assert raw is not None
        n = int.from_bytes(raw, "big")
    key = recv_exact(sock, 4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = recv_exact(sock, n) if n else b""
    if key is None or payload is None:
        return None
    if payload and key != b"\0\0\0\0":
        mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")
    return head[0] & 0x0F, payload


def read_until_close(sock: socket.socket, got: list[tuple[int, bytes]]) -> None:
    """Append the client's frames to ``got`` up to and including its close frame (or EOF)."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return
        got.append(frame)
        if frame[0] == 0x8:
            return


class RawServer:
    """A TCP server on 127.0.0.1 calling ``handler(sock)`` in a thread per connection.

    The handler owns the socket (it is closed after the handler returns).
    ``connections`` counts accepted connections.
    """

    def __init__(self, handler: Callable[[socket.socket], Any]) -> None:
        self.handler = handler
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.errors: list[BaseException] = []
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.handler(sock)
        except OSError:
            pass
        except BaseException as exc:  # noqa: BLE001 - surfaced by the tests
            self.errors.append(exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes a pending accept()
        except OSError:
            pass
        self.listener.close()
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], Any]], RawServer]]:
    """Factory: ``raw_server(handler)`` starts a raw TCP server."""
    servers: list[RawServer] = []

    def make(handler: Callable[[socket.socket], Any]) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------- asyncio loops
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency on CPython
    uvloop = None

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    uvloop is None, reason="uvloop is not installed"))]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``run(coro_fn, timeout=20)``: run ``coro_fn()`` on a new loop of the parameter's kind."""

    def go(coro_fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 20.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro_fn(), timeout)

        if request.param == "uvloop":
            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(bounded())
        finally:
            loop.close()

    return go

