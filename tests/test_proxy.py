"""Proxies: HTTP CONNECT and SOCKS5 through a real proxy process (pproxy), misbehaving
proxies written here, proxy URLs and the environment variables."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import wsx
from conftest import RawServer, WSServer, read_request, wait_until
from wsx.core.conn import Conn
from wsx.core.proxy import (
    HTTPConnectNegotiation,
    ProxyError,
    ProxyURL,
    SOCKS5Negotiation,
    parse_proxy_url,
    proxy_bypassed,
    proxy_from_environment,
)
from wsx.core.url import parse_url

USER, PASSWORD = "alice", "s3cr:t@"  # ':' and '@' exercise percent-decoding
AUTH = "alice:s3cr%3At%40"


# ------------------------------------------------------------- a real proxy
_RUN_PPROXY = ("import runpy, sys; sys.modules['uvloop'] = None; "
               "sys.argv[0] = 'pproxy'; runpy.run_module('pproxy', run_name='__main__')")


class PProxy:
    """``pproxy`` (HTTP and SOCKS5 on one port) in a subprocess, logging each tunnel."""

    def __init__(self, tmp: Path, auth: bool) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        spec = f"http+socks5://127.0.0.1:{self.port}"
        if auth:
            spec += f"#{USER}:{PASSWORD}"
        self.log_path = tmp / f"pproxy-{self.port}.log"
        self._log = open(self.log_path, "w")
        # --auth 0: check the credentials on every connection (pproxy otherwise
        # lets an address in without them once it authenticated). pproxy uses
        # uvloop when it can import it, and fails to start with recent uvloops
        # (no current event loop): it runs on asyncio's own loop here.
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", _RUN_PPROXY, "-l", spec, "--auth", "0", "-v"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30  # a first start may compile pproxy's modules
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"pproxy did not start: {self.log()}") from None
                time.sleep(0.05)

    def url(self, scheme: str, auth: str | None = None) -> str:
        return f"{scheme}://{auth + '@' if auth else ''}127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def tunnels_to(self, target: str) -> int:
        """How many tunnels the proxy opened to ``target`` (as the client named it)."""
        return sum(1 for line in self.log().splitlines() if line.endswith(f"-> {target}"))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def pproxy_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[bool], PProxy]]:
    pytest.importorskip("pproxy")
    proxies: dict[bool, PProxy] = {}
    failures: dict[bool, RuntimeError] = {}
    tmp = tmp_path_factory.mktemp("pproxy")

    def get(auth: bool) -> PProxy:
        if auth in failures:  # fail the next tests at once instead of waiting again
            raise failures[auth]
        if auth not in proxies:
            try:
                proxies[auth] = PProxy(tmp, auth)
            except RuntimeError as exc:
                failures[auth] = exc
                raise
        return proxies[auth]

    yield get
    for p in proxies.values():
        p.close()


@pytest.fixture
def open_proxy(pproxy_factory: Callable[[bool], PProxy]) -> PProxy:
    return pproxy_factory(False)


@pytest.fixture
def auth_proxy(pproxy_factory: Callable[[bool], PProxy]) -> PProxy:
    return pproxy_factory(True)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


class Echo(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        state.append(frame)
        return ("ok", state)


def round_trip(conn: Conn) -> None:
    frames: list[Any] = []
    client = wsx.start_link(conn, Echo, frames)
    try:
        wsx.send_frame(client, ("text", "through the proxy"))
        wait_until(lambda: frames, what="the echo")
        assert frames == [("text", "through the proxy")]
    finally:
        assert wsx.stop(client)


def tls_echo_server(ws_server: Callable[..., WSServer], ca: trustme.CA) -> tuple[WSServer, list[Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(ctx)
    sni: list[Any] = []
    ctx.sni_callback = lambda _s, name, _c: sni.append(name)  # type: ignore[assignment,func-returns-value]
    return ws_server(ssl=ctx), sni


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


# ------------------------------------------------------- through pproxy
def test_ws_through_http_proxy(open_proxy: PProxy, echo_server: WSServer) -> None:
    round_trip(Conn(echo_server.url, proxy=open_proxy.url("http")))
    assert open_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}") == 1


def test_start_link_takes_the_proxy_option(open_proxy: PProxy, echo_server: WSServer) -> None:
    frames: list[Any] = []
    client = wsx.start_link(echo_server.url, Echo, frames, proxy=open_proxy.url("http"))
    try:
        assert client.conn.proxy is not None
        wsx.send_frame(client, ("text", "via start_link"))
        wait_until(lambda: frames, what="the echo")
    finally:
        assert wsx.stop(client)
    assert open_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}") == 1


def test_ws_through_http_proxy_with_credentials(auth_proxy: PProxy, echo_server: WSServer) -> None:
    round_trip(Conn(echo_server.url, proxy=auth_proxy.url("http", AUTH)))
    assert auth_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}") == 1


def test_wss_through_http_proxy_starts_tls_inside_the_tunnel(
    auth_proxy: PProxy, ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, sni = tls_echo_server(ws_server, ca)
    conn = Conn(f"wss://localhost:{server.port}/", proxy=auth_proxy.url("http", AUTH),
                ssl_context=trusting(ca))
    round_trip(conn)
    # The proxy was asked for the target by name; TLS used it for SNI and the check.
    assert auth_proxy.tunnels_to(f"localhost:{server.port}") == 1
    assert sni == ["localhost"]


def test_wss_through_socks5h_with_auth(
    auth_proxy: PProxy, ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, sni = tls_echo_server(ws_server, ca)
    conn = Conn(f"wss://localhost:{server.port}/", proxy=auth_proxy.url("socks5h", AUTH),
                ssl_context=trusting(ca))
    round_trip(conn)
    assert auth_proxy.tunnels_to(f"localhost:{server.port}") == 1
    assert sni == ["localhost"]


def test_proxy_refusal_reaches_handle_disconnect(auth_proxy: PProxy, echo_server: WSServer) -> None:
    class Record(wsx.WebSocket):
        def handle_disconnect(self, status: Any, state: Any) -> Any:
            state.append(status.reason)
            return ("ok", state)

    reasons: list[Any] = []
    with pytest.raises(ProxyError) as info:
        wsx.start_link(Conn(echo_server.url, proxy=auth_proxy.url("http")), Record, reasons,
                       handle_initial_conn_failure=True)
    assert reasons == [("error", info.value)]
    assert info.value.status == 407


def test_wss_through_proxy_still_verifies_the_target(
    open_proxy: PProxy, ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, _ = tls_echo_server(ws_server, ca)
    with pytest.raises(wsx.ConnError) as info:
        wsx.start_link(Conn(f"wss://localhost:{server.port}/", proxy=open_proxy.url("http")),
                       Echo, [])
    assert isinstance(info.value.original, ssl.SSLCertVerificationError)
    assert f"localhost:{server.port}" in str(info.value)


def test_socks5_without_auth(open_proxy: PProxy, echo_server: WSServer) -> None:
    round_trip(Conn(echo_server.url, proxy=open_proxy.url("socks5")))
    assert open_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}") >= 1


def test_socks5_with_auth(auth_proxy: PProxy, echo_server: WSServer) -> None:
    round_trip(Conn(echo_server.url, proxy=auth_proxy.url("socks5", AUTH)))


def test_socks5_resolves_locally_and_socks5h_remotely(
    open_proxy: PProxy, echo_server: WSServer
) -> None:
    target = f"ws://localhost:{echo_server.port}/"
    before = open_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}")
    round_trip(Conn(target, proxy=open_proxy.url("socks5")))
    # socks5://: wsx resolved localhost and sent an address.
    assert open_proxy.tunnels_to(f"127.0.0.1:{echo_server.port}") == before + 1
    assert open_proxy.tunnels_to(f"localhost:{echo_server.port}") == 0
    round_trip(Conn(target, proxy=open_proxy.url("socks5h")))
    # socks5h://: the proxy got the name.
    assert open_proxy.tunnels_to(f"localhost:{echo_server.port}") == 1


def test_http_proxy_407_is_a_proxy_error(auth_proxy: PProxy, echo_server: WSServer) -> None:
    with pytest.raises(ProxyError) as info:
        wsx.start_link(Conn(echo_server.url, proxy=auth_proxy.url("http")), Echo, [])
    assert str(info.value) == (
        f"proxy 127.0.0.1:{auth_proxy.port} answered 407 Proxy Authentication Required "
        f"to CONNECT 127.0.0.1:{echo_server.port}"
    )
    assert info.value.status == 407
    assert isinstance(info.value, wsx.ConnError)


def test_socks5_bad_credentials_and_no_credentials(auth_proxy: PProxy, echo_server: WSServer) -> None:
    # pproxy hangs up on wrong credentials instead of sending the RFC 1929 status.
    with pytest.raises(ProxyError, match=f"proxy 127.0.0.1:{auth_proxy.port} closed the "
                       f"connection during the negotiation for 127.0.0.1:{echo_server.port}"):
        wsx.start_link(Conn(echo_server.url, proxy=auth_proxy.url("socks5", "alice:wrong")),
                       Echo, [])
    with pytest.raises(ProxyError, match=f"proxy 127.0.0.1:{auth_proxy.port} closed"):
        wsx.start_link(Conn(echo_server.url, proxy=auth_proxy.url("socks5")), Echo, [])


# ------------------------------------------------------ misbehaving proxies
def http_proxy(raw_server: Callable[..., RawServer], answer: bytes, then: str = "close") -> RawServer:
    """A proxy that reads the CONNECT request, answers ``answer`` and closes or stalls."""
    requests: list[bytes] = []
    release = threading.Event()

    def handler(sock: socket.socket) -> None:
        requests.append(read_request(sock))
        if answer:
            sock.sendall(answer)
        if then == "stall":
            release.wait(10)

    server = raw_server(handler)
    server.requests = requests  # type: ignore[attr-defined]
    server.release = release  # type: ignore[attr-defined]
    return server


def test_connect_request_bytes(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ProxyError) as info:
        wsx.start_link(Conn("wss://example.com/", proxy=f"http://{AUTH}@127.0.0.1:{proxy.port}"),
                       Echo, [])
    assert str(info.value) == f"proxy 127.0.0.1:{proxy.port} answered 403 Forbidden to CONNECT example.com:443"
    [request] = proxy.requests  # type: ignore[attr-defined]
    lines = request.decode().split("\r\n")
    assert lines[0] == "CONNECT example.com:443 HTTP/1.1"
    assert "Host: example.com:443" in lines
    # base64("alice:s3cr:t@")
    assert "Proxy-Authorization: Basic YWxpY2U6czNjcjp0QA==" in lines


def test_own_407_proxy(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"HTTP/1.0 407 Proxy Authentication Required\r\n"
                       b"Proxy-Authenticate: Basic realm=x\r\n\r\n")
    with pytest.raises(ProxyError, match=f"proxy 127.0.0.1:{proxy.port} answered 407 Proxy "
                       "Authentication Required to CONNECT example.com:443"):
        wsx.start_link(Conn("wss://example.com/", proxy=f"http://127.0.0.1:{proxy.port}"),
                       Echo, [])
    [request] = proxy.requests  # type: ignore[attr-defined]
    assert b"Proxy-Authorization" not in request


def test_garbage_answer(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"SSH-2.0-OpenSSH_9.6\r\n")
    with pytest.raises(ProxyError, match="sent a malformed answer to CONNECT 127.0.0.1:9.*SSH-2.0"):
        wsx.start_link(Conn("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{proxy.port}"),
                       Echo, [])


def test_proxy_closes_mid_negotiation(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"HTTP/1.1 200 Conn")  # a partial status line, then EOF
    with pytest.raises(ProxyError, match="closed the connection during the negotiation for "
                       "127.0.0.1:9"):
        wsx.start_link(Conn("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{proxy.port}"),
                       Echo, [])


def test_stalled_proxy_is_cut_by_socket_connect_timeout(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"HTTP/1.1 200 Connection established\r\n", then="stall")
    start = time.monotonic()
    try:
        with pytest.raises(ProxyError) as info:
            wsx.start_link(Conn("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{proxy.port}",
                                socket_connect_timeout=0.5), Echo, [])
    finally:
        proxy.release.set()  # type: ignore[attr-defined]
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 3
    assert isinstance(info.value.original, TimeoutError)
    message = str(info.value)
    assert "timed out after 0.5 s (socket_connect_timeout)" in message
    assert f"during the negotiation with http proxy 127.0.0.1:{proxy.port} for 127.0.0.1:9" in message


def test_proxy_data_after_the_answer_is_refused(raw_server: Callable[..., RawServer]) -> None:
    proxy = http_proxy(raw_server, b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching")
    with pytest.raises(ProxyError, match="unexpected data after opening the tunnel"):
        wsx.start_link(Conn("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{proxy.port}"),
                       Echo, [])


def socks_proxy(
    raw_server: Callable[..., RawServer], reply_code: int = 0, method: int = 0, auth_status: int = 0
) -> RawServer:
    """A SOCKS5 proxy choosing ``method``, answering the authentication with
    ``auth_status`` and CONNECT with ``reply_code``; it records what it reads."""
    requests: list[bytes] = []

    def handler(sock: socket.socket) -> None:
        requests.append(sock.recv(16))
        sock.sendall(bytes([5, method]))
        if method == 0xFF:
            time.sleep(0.5)
            return
        if method == 2:
            requests.append(sock.recv(600))
            sock.sendall(bytes([1, auth_status]))
            if auth_status:
                time.sleep(0.5)
                return
        requests.append(sock.recv(300))
        sock.sendall(bytes([5, reply_code, 0, 1, 0, 0, 0, 0, 0, 0]))

    server = raw_server(handler)
    server.requests = requests  # type: ignore[attr-defined]
    return server


def test_socks5_reply_codes_are_explained(raw_server: Callable[..., RawServer]) -> None:
    proxy = socks_proxy(raw_server, 0x05)
    with pytest.raises(ProxyError) as info:
        wsx.start_link(Conn("ws://example.com:8000/", proxy=f"socks5h://127.0.0.1:{proxy.port}"),
                       Echo, [])
    assert str(info.value) == (
        f"SOCKS5 proxy 127.0.0.1:{proxy.port} refused CONNECT example.com:8000: "
        "connection refused (reply 0x05)"
    )
    assert info.value.status == 5
    greeting, request = proxy.requests  # type: ignore[attr-defined]
    assert greeting == b"\x05\x01\x00"
    assert request == b"\x05\x01\x00\x03\x0bexample.com\x1f\x40"


def test_proxy_unreachable_and_unresolvable(free_port: int) -> None:
    with pytest.raises(wsx.ConnError, match=f"cannot connect to proxy 127.0.0.1:{free_port}"):
        wsx.start_link(Conn("ws://example.com/", proxy=f"http://127.0.0.1:{free_port}"), Echo, [])
    with pytest.raises(wsx.ConnError, match="cannot resolve proxy host 'no-such-proxy.invalid'"):
        wsx.start_link(Conn("ws://example.com/", proxy="socks5://no-such-proxy.invalid:1080",
                            socket_connect_timeout=20), Echo, [])


# --------------------------------------------------------- the environment
def test_proxy_true_reads_the_environment(
    open_proxy: PProxy, echo_server: WSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    target = f"127.0.0.1:{echo_server.port}"
    monkeypatch.setenv("HTTP_PROXY", open_proxy.url("http"))
    conn = Conn(echo_server.url, proxy=True)
    assert conn.proxy == parse_proxy_url(open_proxy.url("http"))
    before = open_proxy.tunnels_to(target)
    round_trip(conn)
    assert open_proxy.tunnels_to(target) == before + 1

    # NO_PROXY exempts the host: a direct connection, the proxy sees nothing.
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    conn = Conn(echo_server.url, proxy=True)
    assert conn.proxy is None
    round_trip(conn)
    assert open_proxy.tunnels_to(target) == before + 1

    # Without proxy=True the environment is ignored.
    monkeypatch.delenv("NO_PROXY")
    assert Conn(echo_server.url).proxy is None
    assert Conn(echo_server.url, proxy=False).proxy is None


def test_environment_variables_by_scheme() -> None:
    ws, wss = parse_url("ws://example.com/"), parse_url("wss://example.com/")
    env = {"HTTP_PROXY": "http://h:1", "HTTPS_PROXY": "socks5h://s:2", "ALL_PROXY": "http://a:3"}
    assert proxy_from_environment(ws, env) == ProxyURL("http", "h", 1)
    assert proxy_from_environment(wss, env) == ProxyURL("socks5h", "s", 2)
    assert proxy_from_environment(wss, {"ALL_PROXY": "http://a:3"}) == ProxyURL("http", "a", 3)
    assert proxy_from_environment(ws, {"HTTPS_PROXY": "http://s:2"}) is None
    assert proxy_from_environment(ws, {}) is None
    # lower case wins; no scheme means http; empty means unset
    env = {"http_proxy": "lower:1", "HTTP_PROXY": "http://upper:2", "all_proxy": ""}
    assert proxy_from_environment(ws, env) == ProxyURL("http", "lower", 1)
    with pytest.raises(ValueError, match=r"https_proxy from the environment: invalid proxy "
                       r"URL 'ftp://u:\*\*\*@p:1'"):
        proxy_from_environment(wss, {"https_proxy": "ftp://u:pw@p:1"})


def test_proxy_true_follows_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """With proxy=True the choice is made for the URL connected to (a reconnect to
    another URL re-reads it), and a bad value fails when the Conn is made."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://p:1")
    monkeypatch.setenv("HTTPS_PROXY", "socks5h://s:2")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    conn = Conn("ws://example.com/", proxy=True)
    assert conn.proxy == ProxyURL("http", "p", 1)
    conn.url = parse_url("wss://example.com/")
    assert conn.proxy == ProxyURL("socks5h", "s", 2)
    conn.url = parse_url("wss://api.internal.example/")
    assert conn.proxy is None
    monkeypatch.setenv("HTTP_PROXY", "https://p:1")
    with pytest.raises(ValueError, match="HTTP_PROXY from the environment: invalid proxy URL "
                       "'https://p:1': unsupported scheme 'https'"):
        Conn("ws://example.com/", proxy=True)
    assert Conn("wss://example.com/", proxy=True).proxy == ProxyURL("socks5h", "s", 2)


class ReconnectOnce(wsx.WebSocket):
    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state.append(status.reason)
        if len(state) == 1:
            return ("reconnect", str(status.conn.url), state)  # a URL: keeps the options
        return ("ok", state)


def test_reconnect_to_a_url_keeps_the_proxy(
    open_proxy: PProxy, ws_server: Callable[..., WSServer]
) -> None:
    async def close_at_once(ws: Any) -> None:
        await ws.close()

    server = ws_server(close_at_once)
    target = f"127.0.0.1:{server.port}"
    reasons: list[Any] = []
    client = wsx.start_link(Conn(server.url, proxy=open_proxy.url("http")), ReconnectOnce,
                            reasons)
    assert client.join(5)
    assert [r[0] for r in reasons] == ["remote", "remote"]
    assert server.connections == 2
    assert open_proxy.tunnels_to(target) == 2


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("*", "ws://anything.example/", True),
        ("example.com", "ws://example.com/", True),
        ("example.com", "ws://api.example.com/", True),
        (".example.com", "ws://api.example.com/", True),
        (".example.com", "ws://example.com/", True),
        ("example.com", "ws://notexample.com/", False),
        ("example.com:8080", "ws://example.com:8080/", True),
        ("example.com:8080", "ws://example.com/", False),
        ("other.org,  example.com", "wss://www.example.com/", True),
        ("other.org example.com", "wss://www.example.com/", True),
        ("10.0.0.0/8", "ws://10.1.2.3/", True),
        ("10.0.0.0/8", "ws://11.1.2.3/", False),
        ("127.0.0.1", "ws://127.0.0.1:9000/", True),
        ("127.0.0.1:9000", "ws://127.0.0.1:9000/", True),
        ("127.0.0.1:9001", "ws://127.0.0.1:9000/", False),
        ("::1", "ws://[::1]:9000/", True),
        ("[::1]:9000", "ws://[::1]:9000/", True),
        ("EXAMPLE.COM", "ws://Example.com/", True),
        ("", "ws://example.com/", False),
    ],
)
def test_no_proxy_forms(no_proxy: str, url: str, bypassed: bool) -> None:
    parsed = parse_url(url)
    assert proxy_bypassed(parsed.host, parsed.port, no_proxy) is bypassed
    env = {"http_proxy": "http://p:1", "https_proxy": "http://p:1", "no_proxy": no_proxy}
    assert (proxy_from_environment(parsed, env) is None) is bypassed


# ------------------------------------------------------------ proxy URLs
def test_parse_proxy_urls() -> None:
    p = parse_proxy_url(f"http://{AUTH}@proxy.local:3128")
    assert (p.scheme, p.host, p.port, p.username, p.password) == (
        "http", "proxy.local", 3128, USER, PASSWORD)
    assert str(p) == "http://alice:***@proxy.local:3128" and PASSWORD not in repr(p)
    assert parse_proxy_url("http://p").port == 8080
    assert parse_proxy_url("socks5://p").port == 1080
    assert parse_proxy_url("SOCKS5H://[::1]:9").address == "[::1]:9"
    assert parse_proxy_url("socks5://u@p").password == ""
    assert not parse_proxy_url("socks5://p").remote_dns
    assert parse_proxy_url("socks5h://p").remote_dns and parse_proxy_url("http://p").remote_dns


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://p:1", "unsupported scheme 'https'"),
        ("ftp://p:1", "unsupported scheme 'ftp'"),
        ("p:1", "unsupported scheme 'p'"),
        ("http://:1", "no host"),
        ("http://p:99999", "Port out of range"),
        ("http://p:1/path", "no path or query"),
        ("socks5://" + "u" * 256 + ":pw@p", "over 255 bytes"),
    ],
)
def test_bad_proxy_urls_are_value_errors_naming_them(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid proxy URL") as info:
        Conn("ws://example.com/", proxy=url)
    assert why in str(info.value)
    assert url.replace(":pw@", ":***@") in str(info.value)


def test_password_is_hidden_in_bad_url_errors() -> None:
    with pytest.raises(ValueError) as info:
        parse_proxy_url("gopher://user:hunter2@p:1")
    assert "hunter2" not in str(info.value) and "user:***@p:1" in str(info.value)


def test_proxy_option_type_is_checked() -> None:
    with pytest.raises(TypeError, match="proxy must be"):
        Conn("ws://example.com/", proxy=8080)  # type: ignore[arg-type]


# ------------------------------------------------- negotiations, byte by byte
def test_http_connect_answer_byte_by_byte() -> None:
    nego = HTTPConnectNegotiation(ProxyURL("http", "p", 1), "::1", 443)
    assert nego.data_to_send().startswith(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n")
    assert nego.data_to_send() == b""
    answer = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"
    for i in range(len(answer)):
        assert not nego.done
        nego.receive_data(answer[i:i + 1])
    assert nego.done


def test_socks5_negotiation_byte_by_byte_with_auth_and_domain_reply() -> None:
    nego = SOCKS5Negotiation(ProxyURL("socks5h", "p", 1, "u", "pw"), "example.com", 443)
    assert nego.data_to_send() == b"\x05\x02\x00\x02"
    nego.receive_data(b"\x05")
    assert nego.data_to_send() == b""
    nego.receive_data(b"\x02")
    assert nego.data_to_send() == b"\x01\x01u\x02pw"
    nego.receive_data(b"\x01\x00")
    assert nego.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    reply = b"\x05\x00\x00\x03\x04host\x12\x34"
    for i in range(len(reply)):
        assert not nego.done
        nego.receive_data(reply[i:i + 1])
    assert nego.done
    ipv6 = SOCKS5Negotiation(ProxyURL("socks5", "p", 1), "::1", 80)
    assert ipv6.data_to_send() == b"\x05\x01\x00"
    ipv6.receive_data(b"\x05\x00")
    assert ipv6.data_to_send() == b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x00\x50"
    ipv6.receive_data(b"\x05\x00\x00\x04" + b"\x00" * 18)
    assert ipv6.done


def test_socks5_not_a_socks_server() -> None:
    nego = SOCKS5Negotiation(ProxyURL("socks5", "p", 1), "127.0.0.1", 80)
    with pytest.raises(ProxyError, match=r"p:1 is not a SOCKS5 proxy \(version byte 0x48\)"):
        nego.receive_data(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_socks5_authentication_refusals(raw_server: Callable[..., RawServer]) -> None:
    proxy = socks_proxy(raw_server, method=2, auth_status=1)
    with pytest.raises(ProxyError) as info:
        wsx.start_link(Conn("ws://example.com/", proxy=f"socks5h://{AUTH}@127.0.0.1:{proxy.port}"),
                       Echo, [])
    assert str(info.value) == (
        f"SOCKS5 proxy 127.0.0.1:{proxy.port} rejected the username/password for user "
        "'alice' (status 0x01)"
    )
    greeting, auth = proxy.requests  # type: ignore[attr-defined]
    assert greeting == b"\x05\x02\x00\x02"
    assert auth == b"\x01\x05alice\x07s3cr:t@"

    proxy = socks_proxy(raw_server, method=0xFF)
    with pytest.raises(ProxyError, match=r"accepts none of the offered authentication methods "
                       r"\(none\)"):
        wsx.start_link(Conn("ws://example.com/", proxy=f"socks5h://127.0.0.1:{proxy.port}"),
                       Echo, [])

    proxy = socks_proxy(raw_server, method=2)  # asks for credentials nobody offered
    with pytest.raises(ProxyError, match="chose authentication method 0x02, which was not offered"):
        wsx.start_link(Conn("ws://example.com/", proxy=f"socks5h://127.0.0.1:{proxy.port}"),
                       Echo, [])


def test_socks5_success_then_the_target_speaks(
    raw_server: Callable[..., RawServer], echo_server: WSServer
) -> None:
    """A hand-written SOCKS5 proxy that really relays: wsx's bytes reach the target."""

    def relay(sock: socket.socket) -> None:
        assert sock.recv(16) == b"\x05\x01\x00"
        sock.sendall(b"\x05\x00")
        request = sock.recv(300)
        assert request[:4] == b"\x05\x01\x00\x01"
        host = socket.inet_ntoa(request[4:8])
        port = int.from_bytes(request[8:10], "big")
        upstream = socket.create_connection((host, port))
        sock.sendall(b"\x05\x00\x00\x01" + request[4:10])

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            try:
                b.shutdown(socket.SHUT_WR)  # pass the end of stream on
            except OSError:
                pass

        back = threading.Thread(target=pump, args=(upstream, sock), daemon=True)
        back.start()
        pump(sock, upstream)
        back.join(5)
        upstream.close()

    proxy = raw_server(relay)
    round_trip(Conn(f"ws://localhost:{echo_server.port}/",
                    proxy=f"socks5://127.0.0.1:{proxy.port}"))
    assert proxy.errors == []
