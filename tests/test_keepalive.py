"""Liveness deadlines over real sockets: keepalive pings (``ping_interval`` /
``ping_timeout``) and the closing handshake deadline (``close_timeout``).

The peers are ``wsx.testing.Server`` (the ``wsx_server`` fixture: it echoes,
answers pings, or swallows them and never answers a close when told to), a
``websockets`` server, and raw TCP servers for the peers that drip bytes.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import wsx
from conftest import accept_response, read_frame, read_request, server_frame
from wsx.core.frames import OP_CLOSE, OP_TEXT
from wsx.errors import TimeoutExpired
from wsx.testing import Server

TIMEOUT = 5.0


class Log:
    """Callbacks seen by a :class:`Recorder` client, and what handle_disconnect returns."""

    def __init__(self, on_disconnect: Callable[[Any, Log], Any] | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        self.on_disconnect = on_disconnect

    def add(self, name: str, arg: Any) -> None:
        with self.cond:
            self.events.append((name, arg))
            self.cond.notify_all()

    def of(self, name: str) -> list[Any]:
        with self.cond:
            return [a for n, a in self.events if n == name]

    def wait(self, name: str, count: int = 1, timeout: float = TIMEOUT) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([1 for n, _ in self.events if n == name]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited for {count} {name!r}: {self.events!r}")
                self.cond.wait(left)
            return [a for n, a in self.events if n == name]


class Recorder(wsx.WebSocket):
    def handle_connect(self, conn: Any, log: Log) -> Any:
        log.add("connect", conn)
        return ("ok", log)

    def handle_frame(self, frame: Any, log: Log) -> Any:
        log.add("frame", frame)
        return ("ok", log)

    def handle_pong(self, frame: Any, log: Log) -> Any:
        log.add("pong", frame)
        return ("ok", log)

    def handle_disconnect(self, status: Any, log: Log) -> Any:
        log.add("disconnect", status)
        if log.on_disconnect is not None:
            return log.on_disconnect(status, log)
        return ("ok", log)

    def terminate(self, reason: Any, log: Log) -> None:
        log.add("terminate", reason)


def handshake(sock: socket.socket) -> None:
    sock.sendall(accept_response(read_request(sock)))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


# ================================================================ keepalive
def test_keepalive_is_off_by_default(wsx_server: Server) -> None:
    assert wsx.Conn(wsx_server.url).ping_interval is None
    c = wsx.start(wsx_server.url, Recorder, Log())
    time.sleep(0.5)  # idle: a keepalive (if any) would ping here
    assert wsx.stop(c)
    assert wsx_server.wait_for_close() == (1000, "")  # every frame before it is recorded
    assert [f for f in wsx_server.frames if f.kind == "ping"] == []


def test_keepalive_pings_an_idle_connection_and_hides_its_pongs(wsx_server: Server) -> None:
    log = Log()
    c = wsx.start(wsx_server.url, Recorder, log, ping_interval=0.05, ping_timeout=10.0)
    # Answered pings keep their interval: the next one does not wait for
    # ping_timeout to pass (four of them come well before it would).
    pings = [f.payload for f in wsx_server.wait_for_frames("ping", 4, timeout=5.0)]
    assert c.alive and c.connection_state == "open"
    assert all(p.startswith(b"wsx-keepalive-") for p in pings), pings
    assert len(set(pings)) == len(pings), "each keepalive ping carries its own payload"
    # The module did not send those pings: its handle_pong does not see their pongs...
    assert log.of("pong") == []
    # ...while the pongs to its own pings still reach it.
    wsx.send_frame(c, ("ping", b"mine"))
    assert log.wait("pong") == [("pong", b"mine")]
    wsx.stop(c)
    assert log.of("disconnect") == []


def test_keepalive_with_a_websockets_server(ws_server: Callable[..., Any]) -> None:
    # websockets answers pings by itself; with its own keepalive off, only
    # our pings travel. The connection stays up for many intervals.
    server = ws_server(ping_interval=None)
    log = Log()
    c = wsx.start(server.url, Recorder, log, ping_interval=0.05, ping_timeout=0.5,
                  debug=[("log", 1000)])
    time.sleep(0.6)
    assert c.alive and c.connection_state == "open"
    texts = [text for _, text in wsx.sys.log(c)]
    assert any(t.startswith("no sign of life from the server: sending keepalive ping") for t in texts), texts
    assert any(t.startswith("received keepalive pong") for t in texts), texts
    assert log.of("pong") == [] and log.of("disconnect") == []
    wsx.send_frame(c, ("text", "still here"))
    assert log.wait("frame") == [("text", "still here")]
    wsx.stop(c)


def test_traffic_counts_as_a_sign_of_life_no_ping_is_sent(wsx_server: Server) -> None:
    log = Log()
    c = wsx.start(wsx_server.url, Recorder, log, ping_interval=0.15, ping_timeout=0.15)
    wsx_server.wait_for_connections(1)
    deadline = time.monotonic() + 0.8  # five intervals with data flowing in all along
    while time.monotonic() < deadline:
        wsx_server.send("tick")  # more often than ping_interval
        time.sleep(0.02)
    assert c.alive and c.connection_state == "open"
    assert wsx.stop(c)
    assert wsx_server.wait_for_close() == (1000, "")
    assert len(log.of("frame")) > 10
    assert [f for f in wsx_server.frames if f.kind == "ping"] == []


def test_no_pong_within_ping_timeout_ends_the_connection(wsx_server: Server) -> None:
    wsx_server.stall()  # reads everything, answers nothing
    log = Log()
    c = wsx.start(wsx_server.url, Recorder, log, ping_interval=0.1, ping_timeout=0.2)
    status = log.wait("disconnect")[0]
    assert c.join(TIMEOUT)
    error = status.error
    assert isinstance(error, TimeoutExpired) and isinstance(error, wsx.WSXError)
    assert isinstance(error, TimeoutError)
    assert error.option == "ping_timeout" and error.seconds == 0.2
    assert "keepalive" in str(error) and "ping_timeout=0.2 s" in str(error)
    assert status.reason == ("error", error)
    assert not status.clean and status.code is None and not status.remote
    assert log.of("terminate") == [("error", error)]
    # It pinged once, then (best effort) said why it left.
    wsx_server.wait_for_disconnects(1)  # every frame it sent is recorded
    seen = wsx_server.frames
    kinds = [f.kind for f in seen]
    assert kinds[0] == "ping" and seen[0].payload.startswith(b"wsx-keepalive-")
    assert kinds.count("ping") == 1
    assert set(kinds) <= {"ping", "close"}, kinds
    assert [code for code, _ in wsx_server.closes] in ([], [1011])


def test_reconnect_after_a_keepalive_timeout(wsx_server: Server) -> None:
    wsx_server.drop_pongs()  # the first connection swallows the pings

    def policy(status: Any, log: Log) -> Any:
        if isinstance(status.error, TimeoutExpired):
            wsx_server.drop_pongs(False)  # the second connection answers them
            return ("reconnect", log)
        return ("ok", log)

    log = Log(on_disconnect=policy)
    c = wsx.start(wsx_server.url, Recorder, log, ping_interval=0.05, ping_timeout=0.2)
    status = log.wait("disconnect")[0]
    assert isinstance(status.error, TimeoutExpired) and status.attempt_number == 1
    log.wait("connect", 2)
    assert wsx_server.wait_for_connections(2) == 2
    time.sleep(0.5)  # the second connection answers its pings: it stays
    assert c.alive and c.connection_state == "open"
    assert len(log.of("disconnect")) == 1
    assert wsx_server.connections == 2
    assert [f for f in wsx_server.frames if f.kind == "ping" and f.connection == 2]
    assert wsx.stop(c)


def test_keepalive_pauses_while_suspended(wsx_server: Server) -> None:
    wsx_server.stall()  # reads everything, answers nothing
    log = Log()
    c = wsx.start(wsx_server.url, Recorder, log, ping_interval=0.05, ping_timeout=0.1)
    wsx.sys.suspend(c)

    def pings() -> int:
        return len([f for f in wsx_server.frames if f.kind == "ping"])

    time.sleep(0.05)  # a ping sent just before the suspension reaches the server
    pings_then = pings()
    time.sleep(0.5)
    # Nothing is read while suspended, so nothing is judged and nothing sent.
    assert c.alive and log.of("disconnect") == []
    assert pings() == pings_then
    wsx.sys.resume(c)
    status = log.wait("disconnect")[0]  # swallowed pings: the deadline applies again
    assert isinstance(status.error, TimeoutExpired)
    assert c.join(TIMEOUT)


@pytest.mark.parametrize("option, value", [
    ("ping_interval", 0), ("ping_interval", -1), ("ping_interval", "5"), ("ping_interval", True),
    ("ping_timeout", 0), ("ping_timeout", -0.5),
])
def test_keepalive_options_are_validated(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{option} must be a positive number.*{value!r}"):
        wsx.Conn("ws://127.0.0.1:1/", **{option: value})


def test_keepalive_option_defaults() -> None:
    conn = wsx.Conn("ws://127.0.0.1:1/", ping_interval=7)
    assert (conn.ping_interval, conn.ping_timeout) == (7.0, 7.0)
    conn = wsx.Conn("ws://127.0.0.1:1/", ping_interval=7, ping_timeout=2)
    assert (conn.ping_interval, conn.ping_timeout) == (7.0, 2.0)
    conn = wsx.Conn("ws://127.0.0.1:1/", ping_timeout=2)  # no keepalive: no deadline
    assert (conn.ping_interval, conn.ping_timeout) == (None, None)


# ============================================================ close_timeout
def test_close_timeout_server_never_answers_then_drops_late(wsx_server: Server) -> None:
    wsx_server.stall()  # the close is read, never answered, and TCP stays open
    log = Log()
    c = wsx.start(wsx_server.url, Recorder, log, close_timeout=0.3)
    t0 = time.monotonic()
    assert wsx.stop(c, timeout=TIMEOUT)
    # The client did not wait for the server (which never drops the connection).
    assert time.monotonic() - t0 < 1.5
    assert wsx_server.wait_for_close() == (1000, "")
    assert wsx_server.wait_for_disconnects(1)  # the client dropped the connection itself
    assert log.of("terminate") == ["normal"]


def test_close_timeout_holds_while_the_server_drips_bytes(raw_server: Any) -> None:
    # After the client's close, the server trickles a text frame one byte at
    # a time and never answers the close: incoming bytes must not extend the
    # closing deadline.
    done = threading.Event()

    def handler(sock: socket.socket) -> None:
        handshake(sock)
        while True:
            f = read_frame(sock)
            if f is None or f[0] == OP_CLOSE:
                break
        frame = server_frame(OP_TEXT, b"x" * 100)
        try:
            for i in range(len(frame)):
                if done.is_set():
                    return
                sock.sendall(frame[i:i + 1])
                time.sleep(0.03)  # the whole frame would take 3 s
        except OSError:
            return

    server = raw_server(handler)
    log = Log()
    c = wsx.start(server.url, Recorder, log, close_timeout=0.3)
    t0 = time.monotonic()
    assert wsx.stop(c, timeout=TIMEOUT)
    elapsed = time.monotonic() - t0
    done.set()
    assert elapsed < 2.5, f"the drip kept the closing connection {elapsed:.2f} s"
    assert log.of("terminate") == ["normal"]


def test_close_timeout_after_the_server_close_while_it_drips(raw_server: Any) -> None:
    # The server closes first, then drips garbage instead of closing TCP:
    # the client answers the close and drops the connection after close_timeout.
    done = threading.Event()
    got: list[Any] = []

    def handler(sock: socket.socket) -> None:
        handshake(sock)
        sock.sendall(server_frame(OP_CLOSE, close_payload(1001, "bye")))
        got.append(read_frame(sock))
        try:
            for _ in range(100):
                if done.is_set():
                    return
                sock.sendall(b"\x00")
                time.sleep(0.03)
        except OSError:
            return

    server = raw_server(handler)
    log = Log()
    c = wsx.start(server.url, Recorder, log, close_timeout=0.3)
    assert c.join(TIMEOUT)
    done.set()
    status = log.of("disconnect")[0]
    assert status.reason == ("remote", 1001, "bye") and status.clean and status.remote
    assert got == [(OP_CLOSE, close_payload(1001))]
