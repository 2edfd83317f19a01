"""Every step of the connect phase is bounded: DNS, TCP connect, proxy, TLS, upgrade response.

``socket_connect_timeout`` is one deadline for DNS + TCP connect + proxy
negotiation + TLS handshake; ``socket_recv_timeout`` bounds the wait for the
complete upgrade response (a deadline too: not restarted by each byte). Each
error names the phase and the configured value.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wsx
from conftest import RawServer, accept_response, read_request, wait_until
from wsx.core.conn import Conn
from wsx.io.loop import Loop


class Client(wsx.WebSocket):
    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state.append(status.reason)
        return ("ok", state)


def connect_error(url_or_conn: Any, **opts: Any) -> tuple[wsx.WSXError, float]:
    """Start a client that must fail; return its error and how long it took."""
    start = time.monotonic()
    with pytest.raises(wsx.WSXError) as info:
        wsx.start_link(url_or_conn, Client, [], **opts)
    return info.value, time.monotonic() - start


class Peer:
    """A raw server handler that records when the client's side went away."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.behaviour = behaviour
        self.closed_at: list[float] = []

    def __call__(self, sock: socket.socket) -> None:
        self.behaviour(sock)
        sock.settimeout(10)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        self.closed_at.append(time.monotonic())


def silent(_sock: socket.socket) -> None:
    """Accept and say nothing."""


# ------------------------------------------------------------ TLS handshake
def test_tls_handshake_with_a_peer_that_never_speaks_tls(
    raw_server: Callable[..., RawServer],
) -> None:
    peer = Peer(silent)
    server = raw_server(peer)
    error, elapsed = connect_error(f"wss://127.0.0.1:{server.port}/",
                                   socket_connect_timeout=0.4)
    assert isinstance(error, wsx.ConnError) and isinstance(error.original, TimeoutError)
    assert str(error).startswith(
        f"connecting to 127.0.0.1:{server.port} timed out after 0.4 s (socket_connect_timeout) "
        f"during the TLS handshake with 127.0.0.1:{server.port}"
    )
    assert 0.35 <= elapsed < 2
    # The socket was closed at the deadline, not leaked.
    wait_until(lambda: peer.closed_at, what="the client's socket closed")
    assert peer.closed_at[0] - (time.monotonic() - elapsed) < 2


# ---------------------------------------------------------- upgrade response
def test_upgrade_request_answered_by_silence(raw_server: Callable[..., RawServer]) -> None:
    requests: list[bytes] = []
    peer = Peer(lambda sock: requests.append(read_request(sock)))
    server = raw_server(peer)
    error, elapsed = connect_error(server.url, socket_recv_timeout=0.4)
    assert isinstance(error, wsx.HandshakeError)
    assert str(error) == (
        f"no complete upgrade response from 127.0.0.1:{server.port} within 0.4 s "
        "(socket_recv_timeout)"
    )
    assert 0.35 <= elapsed < 2
    assert requests and requests[0].startswith(b"GET / HTTP/1.1\r\n")
    wait_until(lambda: peer.closed_at, what="the client's socket closed")


def test_dripped_upgrade_response_is_cut_by_the_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    """One byte every 0.2 s: each byte arrives well within the timeout, the whole does not."""
    sent: list[int] = []

    def drip(sock: socket.socket) -> None:
        response = accept_response(read_request(sock))
        for i in range(len(response)):
            try:
                sock.sendall(response[i:i + 1])
            except OSError:
                return
            sent.append(i)
            time.sleep(0.2)

    server = raw_server(Peer(drip))
    error, elapsed = connect_error(server.url, socket_recv_timeout=0.8)
    assert isinstance(error, wsx.HandshakeError)
    assert "within 0.8 s (socket_recv_timeout)" in str(error)
    assert 0.75 <= elapsed < 1.5, elapsed
    assert 3 <= len(sent) < 10  # bytes did arrive; the timer was not restarted by them


def test_upgrade_timeout_reaches_handle_disconnect(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(Peer(lambda sock: read_request(sock) and None))
    reasons: list[Any] = []
    with pytest.raises(wsx.HandshakeError):
        wsx.start_link(server.url, Client, reasons, socket_recv_timeout=0.3,
                       handle_initial_conn_failure=True)
    [(tag, error)] = reasons
    assert tag == "error" and isinstance(error, wsx.HandshakeError)
    assert "0.3 s (socket_recv_timeout)" in str(error)


# --------------------------------------------------------------- TCP connect
@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, connects hang."""
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
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
    except TimeoutError:
        pass  # what we want: the connect hangs
    else:
        pytest.skip("this kernel accepts connections beyond a full listen backlog")
    finally:
        probe.close()
    yield port
    for c in fillers:
        c.close()
    s.close()


def test_tcp_connect_timeout(full_backlog: int) -> None:
    error, elapsed = connect_error(f"ws://127.0.0.1:{full_backlog}/", socket_connect_timeout=0.4)
    assert isinstance(error, wsx.ConnError) and isinstance(error.original, TimeoutError)
    assert str(error).startswith(
        f"connecting to 127.0.0.1:{full_backlog} timed out after 0.4 s (socket_connect_timeout) "
        f"during the TCP connect to 127.0.0.1 port {full_backlog}"
    )
    assert 0.35 <= elapsed < 2


def test_tcp_connect_to_a_proxy_times_out(full_backlog: int) -> None:
    conn = Conn("ws://example.com/", proxy=f"http://127.0.0.1:{full_backlog}",
                socket_connect_timeout=0.3)
    error, _ = connect_error(conn)
    assert isinstance(error, wsx.ConnError)
    assert (f"timed out after 0.3 s (socket_connect_timeout) during the TCP connect to proxy "
            f"127.0.0.1 port {full_backlog}") in str(error)


# ----------------------------------------------------------------------- DNS
class StalledResolverLoop(Loop):
    """A loop whose resolver never answers (a stalled DNS server); the rest is real."""

    def __init__(self) -> None:
        super().__init__("stalled-dns-loop")
        self.asked: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int, callback: Callable[..., Any]) -> None:
        self.asked.append((host, port))


class SlowResolverLoop(Loop):
    """A loop whose resolver answers (really, via getaddrinfo) after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__("slow-dns-loop")
        self.delay = delay

    def resolve(self, host: str, port: int, callback: Callable[..., Any]) -> None:
        self.call_later(self.delay, super().resolve, host, port, callback)


@pytest.fixture
def run_loop() -> Iterator[Callable[[Loop], Loop]]:
    loops: list[Loop] = []

    def start(loop: Loop) -> Loop:
        loop.start_thread()
        loops.append(loop)
        return loop

    yield start
    for loop in loops:
        loop.stop()
        assert loop._thread is not None
        loop._thread.join(5)
        loop.close()


def test_stalled_dns_is_cut_by_socket_connect_timeout(run_loop: Callable[[Loop], Loop]) -> None:
    loop = run_loop(StalledResolverLoop())
    error, elapsed = connect_error("ws://stalled.example:8000/", socket_connect_timeout=0.3,
                                   loop=loop)
    assert isinstance(error, wsx.ConnError) and isinstance(error.original, TimeoutError)
    assert str(error).startswith(
        "connecting to stalled.example:8000 timed out after 0.3 s (socket_connect_timeout) "
        "during DNS resolution of host 'stalled.example'"
    )
    assert 0.25 <= elapsed < 2
    assert loop.asked == [("stalled.example", 8000)]  # type: ignore[attr-defined]


def test_stalled_dns_of_the_proxy_host(run_loop: Callable[[Loop], Loop]) -> None:
    loop = run_loop(StalledResolverLoop())
    conn = Conn("ws://example.com/", proxy="http://proxy.example:3128", socket_connect_timeout=0.3)
    error, _ = connect_error(conn, loop=loop)
    assert "during DNS resolution of proxy host 'proxy.example'" in str(error)
    assert loop.asked == [("proxy.example", 3128)]  # type: ignore[attr-defined]


def test_stalled_dns_of_the_target_behind_a_socks5_proxy(
    run_loop: Callable[[Loop], Loop], raw_server: Callable[..., RawServer]
) -> None:
    # socks5:// (not socks5h): wsx resolves the target after reaching the proxy.
    proxy = raw_server(Peer(silent))
    loop = run_loop(StalledResolverLoop())
    conn = Conn("ws://target.example/", proxy=f"socks5://127.0.0.1:{proxy.port}",
                socket_connect_timeout=0.3)
    error, _ = connect_error(conn, loop=loop)
    assert ("during DNS resolution of host 'target.example' (for the SOCKS5 proxy)"
            in str(error))
    assert proxy.connections == 1


def test_one_deadline_for_the_whole_attempt(
    run_loop: Callable[[Loop], Loop], raw_server: Callable[..., RawServer]
) -> None:
    """DNS takes 0.6 s of a 0.8 s budget: the TLS handshake gets only what is left."""
    server = raw_server(Peer(silent))
    loop = run_loop(SlowResolverLoop(0.6))
    error, elapsed = connect_error(f"wss://localhost:{server.port}/",
                                   socket_connect_timeout=0.8, loop=loop)
    assert "during the TLS handshake" in str(error)
    assert server.connections == 1
    assert 0.75 <= elapsed < 1.3, elapsed  # not 0.6 + 0.8


class FixedResolverLoop(Loop):
    """A loop whose resolver answers with fixed addresses (as a DNS server would)."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        super().__init__("fixed-dns-loop")
        self.addresses = addresses

    def resolve(self, host: str, port: int, callback: Callable[..., Any]) -> None:
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in self.addresses]
        self.call_soon(callback, infos, None)


def test_timeout_keeps_the_failed_addresses(
    run_loop: Callable[[Loop], Loop], raw_server: Callable[..., RawServer], free_port: int
) -> None:
    """The first address refuses, the second hangs in TLS: the error tells both."""
    server = raw_server(Peer(silent))
    loop = run_loop(FixedResolverLoop([("127.0.0.1", free_port), ("127.0.0.1", server.port)]))
    error, _ = connect_error(f"wss://two.example:{server.port}/", socket_connect_timeout=0.3,
                             loop=loop)
    message = str(error)
    assert (f"during the TLS handshake with two.example:{server.port} "
            f"(127.0.0.1 port {free_port}: Connection refused)") in message
    assert server.connections == 1


def test_timeout_while_other_clients_go_on(
    raw_server: Callable[..., RawServer], echo_server: Any
) -> None:
    """A client stuck in its TLS handshake does not hold up others on the same loop."""
    server = raw_server(Peer(silent))
    failed: list[BaseException] = []

    def stuck() -> None:
        try:
            wsx.start_link(f"wss://127.0.0.1:{server.port}/", Client, [],
                           socket_connect_timeout=2.0)
        except wsx.WSXError as exc:
            failed.append(exc)

    t = threading.Thread(target=stuck)
    t.start()
    wait_until(lambda: server.connections, what="the stuck client's TCP connection")
    start = time.monotonic()
    client = wsx.start_link(echo_server.url, Client, [])
    assert time.monotonic() - start < 1.5
    assert t.is_alive()  # still stuck in its TLS handshake
    assert wsx.stop(client)
    t.join(5)
    assert len(failed) == 1 and "TLS handshake" in str(failed[0])
