"""wsx.Conn options and the non-blocking Connector, over real sockets on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wsx
from wsx.core.conn import Conn
from wsx.core.frames import DEFAULT_MAX_SIZE
from wsx.io.connector import Connector
from wsx.io.loop import Loop


# --------------------------------------------------------------------- helpers
@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop("conn-test-loop")
    thread = threading.Thread(target=lp.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not lp.running and time.monotonic() < deadline:
        time.sleep(0.001)
    yield lp
    lp.stop()
    thread.join(5)
    assert not thread.is_alive()
    lp.close()


class Result:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.sock: Any = None
        self.error: Any = None
        self.calls = 0
        self.elapsed = 0.0
        self.start = time.monotonic()

    def __call__(self, sock: Any, error: Any) -> None:
        self.calls += 1
        self.sock, self.error = sock, error
        self.elapsed = time.monotonic() - self.start
        self.done.set()


def connect(lp: Loop, conn: Conn) -> tuple[Connector, Result]:
    result = Result()
    box: list[Connector] = []
    ready = threading.Event()

    def go() -> None:
        connector = Connector(lp, conn, result)
        box.append(connector)
        connector.start()
        ready.set()

    lp.call_soon_threadsafe(go)
    assert ready.wait(5)
    return box[0], result


def on_loop(lp: Loop, fn: Callable[[], Any]) -> Any:
    box: list[Any] = []
    done = threading.Event()
    lp.call_soon_threadsafe(lambda: (box.append(fn()), done.set()))
    assert done.wait(5)
    return box[0]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: new connections stay pending (SYN dropped)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    yield port
    for c in fillers:
        c.close()
    s.close()


# ------------------------------------------------------------------------ Conn
def test_conn_defaults_and_fields() -> None:
    c = Conn("ws://example.com/chat?room=1")
    assert c.host == "example.com"
    assert c.port == 80
    assert c.path == "/chat"
    assert c.query == "room=1"
    assert not c.secure
    assert c.extra_headers == []
    assert c.subprotocols == ()
    assert c.origin is None
    assert c.ssl_context is None
    assert c.insecure is False
    assert c.socket_connect_timeout == 6.0
    assert c.socket_recv_timeout == 5.0
    assert c.close_timeout == 5.0
    assert c.max_message_size == DEFAULT_MAX_SIZE
    assert c.resp_headers is None
    assert c.subprotocol is None
    assert c.extensions == []
    assert "ws://example.com" in repr(c)

    s = Conn("wss://example.com:8443")
    assert s.secure and s.port == 8443 and s.path == "/" and s.query is None
    assert Conn("wss://example.com").port == 443


def test_conn_options_are_normalised() -> None:
    c = Conn(
        "ws://h/",
        extra_headers={"X-A": "1", "X-B": "2"},
        subprotocols="chat",
        origin="http://o",
        socket_connect_timeout=1,
        socket_recv_timeout=2,
        close_timeout=0.5,
        max_message_size=None,
    )
    assert c.extra_headers == [("X-A", "1"), ("X-B", "2")]
    assert c.subprotocols == ("chat",)
    assert c.origin == "http://o"
    assert c.socket_connect_timeout == 1.0 and isinstance(c.socket_connect_timeout, float)
    assert c.socket_recv_timeout == 2.0
    assert c.close_timeout == 0.5
    assert c.max_message_size is None
    c2 = Conn("ws://h/", extra_headers=[("X-A", "1"), ("X-A", "2")], subprotocols=["a", "b"])
    assert c2.extra_headers == [("X-A", "1"), ("X-A", "2")]
    assert c2.subprotocols == ("a", "b")


@pytest.mark.parametrize("name", ["socket_connect_timeout", "socket_recv_timeout", "close_timeout"])
@pytest.mark.parametrize("value", [0, -1, "5", True, None])
def test_conn_rejects_bad_timeouts(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        Conn("ws://h/", **{name: value})


@pytest.mark.parametrize("value", [0, -5, 1.5, "10"])
def test_conn_rejects_bad_max_message_size(value: Any) -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        Conn("ws://h/", max_message_size=value)


def test_conn_rejects_bad_url_and_ssl_context() -> None:
    with pytest.raises(wsx.URLError):
        Conn("http://example.com/")
    with pytest.raises(TypeError, match="ssl_context"):
        Conn("wss://h/", ssl_context="not a context")  # type: ignore[arg-type]


def test_tls_context_verifies_by_default_and_insecure_turns_it_off() -> None:
    ctx = Conn("wss://h/").tls_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    ctx = Conn("wss://h/", insecure=True).tls_context()
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    mine = ssl.create_default_context()
    assert Conn("wss://h/", ssl_context=mine, insecure=True).tls_context() is mine


# ------------------------------------------------------------------- Connector
def test_connector_connects_to_a_listener(loop: Loop, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    _, result = connect(loop, Conn(f"ws://127.0.0.1:{port}/"))
    assert result.done.wait(5)
    assert result.error is None
    sock = result.sock
    try:
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        server_side, _ = listener.accept()
        sock.send(b"hello")
        assert server_side.recv(10) == b"hello"
        server_side.close()
    finally:
        sock.close()
    assert result.calls == 1


def test_connector_resolves_host_names(loop: Loop, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    _, result = connect(loop, Conn(f"ws://localhost:{port}/"))
    assert result.done.wait(10)
    if result.error is not None:
        # localhost may resolve to ::1 first; it must then have fallen back to 127.0.0.1
        pytest.fail(f"could not connect through localhost: {result.error!r}")
    result.sock.close()


def test_connector_refused_is_conn_error_quickly(loop: Loop, free_port: int) -> None:
    _, result = connect(loop, Conn(f"ws://127.0.0.1:{free_port}/"))
    assert result.done.wait(5)
    assert result.sock is None
    assert isinstance(result.error, wsx.ConnError)
    assert "127.0.0.1" in str(result.error)
    assert result.elapsed < 1.0


def test_connector_unknown_host_is_conn_error(loop: Loop) -> None:
    _, result = connect(loop, Conn("ws://no-such-host.invalid/", socket_connect_timeout=20))
    assert result.done.wait(25)
    assert isinstance(result.error, wsx.ConnError)
    assert "no-such-host.invalid" in str(result.error)


def test_connector_times_out(loop: Loop, full_backlog: int) -> None:
    _, result = connect(loop, Conn(f"ws://127.0.0.1:{full_backlog}/", socket_connect_timeout=0.3))
    assert result.done.wait(5)
    assert isinstance(result.error, wsx.ConnError)
    assert isinstance(result.error.original, TimeoutError)
    assert "timed out" in str(result.error)
    assert 0.25 <= result.elapsed < 2.0
    time.sleep(0.1)
    assert result.calls == 1


def test_connector_cancel_never_calls_back(loop: Loop, full_backlog: int) -> None:
    connector, result = connect(
        loop, Conn(f"ws://127.0.0.1:{full_backlog}/", socket_connect_timeout=0.2)
    )
    on_loop(loop, connector.cancel)
    time.sleep(0.4)
    assert result.calls == 0
    assert connector._sock is None  # socket closed and dropped


def test_connector_tls_against_plain_tcp_fails_with_conn_error(loop: Loop) -> None:
    # A server that accepts and then answers the ClientHello with garbage.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve() -> None:
        try:
            s, _ = srv.accept()
            s.recv(4096)
            s.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            time.sleep(0.5)
            s.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        _, result = connect(loop, Conn(f"wss://127.0.0.1:{port}/"))
        assert result.done.wait(5)
        assert isinstance(result.error, wsx.ConnError)
        assert "TLS" in str(result.error)
    finally:
        srv.close()


# ---------------------------------------------------------------- TLS end to end
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not available")
    d = tmp_path_factory.mktemp("cert")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )
    return str(crt), str(key)


class Collect(wsx.WebSocket):
    def handle_connect(self, conn: Any, state: Any) -> Any:
        state["connected"].set()
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        state["frames"].append(frame)
        return ("ok", state)


def _tls_server(ws_server: Callable[..., Any], cert: tuple[str, str]) -> Any:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    server = ws_server(ssl=ctx)
    return server


def test_wss_echo_with_custom_ssl_context(ws_server: Callable[..., Any], cert: tuple[str, str]) -> None:
    server = _tls_server(ws_server, cert)
    ctx = ssl.create_default_context(cafile=cert[0])
    state = {"connected": threading.Event(), "frames": []}
    url = f"wss://127.0.0.1:{server.port}/"
    c = wsx.start(url, Collect, state, ssl_context=ctx)
    try:
        big = "x" * 200_000  # several TLS records: pending() data must be read
        wsx.send_frame(c, ("text", "over tls"))
        wsx.send_frame(c, ("text", big))
        deadline = time.monotonic() + 5
        while len(state["frames"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state["frames"] == [("text", "over tls"), ("text", big)]
    finally:
        assert wsx.stop(c)


def test_wss_verification_failure_and_insecure(ws_server: Callable[..., Any], cert: tuple[str, str]) -> None:
    server = _tls_server(ws_server, cert)
    url = f"wss://127.0.0.1:{server.port}/"
    with pytest.raises(wsx.ConnError) as info:
        wsx.start(url, Collect, {"connected": threading.Event(), "frames": []})
    assert isinstance(info.value.original, ssl.SSLError)
    state = {"connected": threading.Event(), "frames": []}
    c = wsx.start(url, Collect, state, insecure=True)
    try:
        wsx.send_frame(c, ("binary", b"\x00tls"))
        deadline = time.monotonic() + 5
        while not state["frames"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state["frames"] == [("binary", b"\x00tls")]
    finally:
        assert wsx.stop(c)
