"""wsx.testing.Server and its pytest fixture: each fault, and a wsx client's reaction to it.

The fixture ``wsx_server`` comes from the installed package's ``pytest11``
entry point (no conftest import): these tests also prove it is registered.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import wsx
from wsx.errors import HandshakeError, RequestError, TimeoutExpired
from wsx.testing import VIOLATIONS, ReceivedFrame, Server

TIMEOUT = 5.0


class Events:
    """What a client's callbacks saw, in order, for the test thread to wait on."""

    def __init__(self, reconnect: bool = False) -> None:
        self.q: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.reconnect = reconnect

    def wait(self, kind: str, timeout: float = TIMEOUT) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} event within {timeout} s")
            try:
                event = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if event[0] == kind:
                return event[1:]


class Client(wsx.WebSocket[Events]):
    def handle_connect(self, conn: wsx.Conn, state: Events) -> wsx.ConnectResult[Events]:
        state.q.put(("connect",))
        return ("ok", state)

    def handle_frame(self, frame: wsx.DataFrame, state: Events) -> wsx.FrameResult[Events]:
        state.q.put(("frame", frame))
        return ("ok", state)

    def handle_ping(self, frame: wsx.PingFrame, state: Events) -> wsx.FrameResult[Events]:
        state.q.put(("ping", frame))
        return ("reply", ("pong", frame[1] if isinstance(frame, tuple) else b""), state)

    def handle_disconnect(self, status: wsx.DisconnectStatus,
                          state: Events) -> wsx.DisconnectResult[Events]:
        state.q.put(("disconnect", status))
        return ("reconnect", state) if state.reconnect else ("ok", state)


def start(server: Server, events: Events, **opts: Any) -> wsx.Client:
    return wsx.start(server.url, Client, events, **opts)


# ------------------------------------------------------------------- echo
def test_the_fixture_is_a_started_echo_server_that_records(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev, extra_headers={"X-Token": "t0k"})
    wsx.send_frame(c, ("text", "héllo"))
    wsx.send_frame(c, ("binary", b"\x00\x01"))
    assert ev.wait("frame") == (("text", "héllo"),)
    assert ev.wait("frame") == (("binary", b"\x00\x01"),)
    assert wsx_server.wait_for_messages(2) == [("text", "héllo"), ("binary", b"\x00\x01")]
    assert wsx_server.requests[0].headers.get("x-token") == "t0k"
    assert wsx_server.requests[0].target == "/"
    assert wsx_server.frames[0] == ReceivedFrame("text", "héllo".encode(), True, 1)
    assert wsx.stop(c)
    assert wsx_server.wait_for_close() == (1000, "")
    assert wsx_server.wait_for_disconnects(1) == 1 and wsx_server.open_connections == 0


def test_echo_false_only_records(wsx_server_factory: Any) -> None:
    server = wsx_server_factory(echo=False)
    ev = Events()
    c = start(server, ev)
    wsx.send_frame(c, ("text", "quiet"))
    assert server.wait_for_message("quiet") == 1
    with pytest.raises(AssertionError):
        ev.wait("frame", timeout=0.3)
    wsx.stop(c)


# ------------------------------------------------------- connection faults
def test_refused_connections_then_a_reconnect_policy_gets_through(wsx_server: Server) -> None:
    wsx_server.refuse(2)
    ev = Events(reconnect=True)
    c = wsx.start(wsx_server.url, Client, ev, handle_initial_conn_failure=True)
    for _ in range(2):
        status = ev.wait("disconnect")[0]
        assert status.reason[0] == "error", status.reason
    ev.wait("connect")
    assert wsx_server.attempts == 3 and wsx_server.connections == 1
    wsx.stop(c)


@pytest.mark.parametrize("status", [403, 503])
def test_handshake_status_fails_the_start_with_the_status(wsx_server: Server, status: int) -> None:
    wsx_server.handshake(status, {"Retry-After": "7"}, body="go away")
    with pytest.raises(RequestError) as info:
        start(wsx_server, Events())
    assert info.value.status == status
    assert "go away" in str(info.value.body)
    assert ("retry-after", "7") in [(k.lower(), v) for k, v in info.value.headers]
    # times=1: the next handshake is a plain 101.
    c = start(wsx_server, Events())
    wsx.stop(c)


def test_handshake_headers_replace_the_answer_s_headers(wsx_server: Server) -> None:
    wsx_server.handshake(headers={"Sec-WebSocket-Accept": "not-the-key"})
    with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept"):
        start(wsx_server, Events())
    wsx_server.handshake(headers={"Upgrade": None})
    with pytest.raises(HandshakeError, match="Upgrade"):
        start(wsx_server, Events())


def test_handshake_delay_meets_the_connect_timeout(wsx_server: Server) -> None:
    wsx_server.handshake(delay=1.0, times=None)
    began = time.monotonic()
    with pytest.raises(HandshakeError, match=r"within 0.3 s \(socket_recv_timeout\)"):
        start(wsx_server, Events(), socket_recv_timeout=0.3)
    assert time.monotonic() - began < 0.9
    wsx_server.clear_faults()
    c = start(wsx_server, Events())
    wsx.stop(c)


def test_a_delayed_handshake_within_the_timeout_connects(wsx_server: Server) -> None:
    wsx_server.handshake(delay=0.3)
    began = time.monotonic()
    c = start(wsx_server, Events())
    assert time.monotonic() - began >= 0.3
    wsx.stop(c)


# --------------------------------------------------------- liveness faults
def test_stall_after_the_handshake_trips_the_keepalive(wsx_server: Server) -> None:
    wsx_server.stall()
    ev = Events()
    c = start(wsx_server, ev, ping_interval=0.1, ping_timeout=0.2)
    wsx.send_frame(c, ("text", "anyone?"))
    status = ev.wait("disconnect")[0]
    assert isinstance(status.error, TimeoutExpired) and status.error.option == "ping_timeout"
    assert wsx_server.wait_for_message("anyone?")  # read, recorded, never answered
    assert not [f for f in wsx_server.frames if f.kind == "pong"]
    assert c.join(TIMEOUT)


def test_dropped_pongs_trip_the_keepalive_while_messages_still_echo(wsx_server: Server) -> None:
    wsx_server.drop_pongs()
    ev = Events()
    c = start(wsx_server, ev, ping_interval=0.2, ping_timeout=0.3)
    wsx.send_frame(c, ("text", "echoed"))
    assert ev.wait("frame") == (("text", "echoed"),)
    status = ev.wait("disconnect")[0]
    assert isinstance(status.error, TimeoutExpired)
    assert wsx_server.wait_for_frames("ping")[0].payload.startswith(b"wsx-keepalive-")
    assert c.join(TIMEOUT)


def test_server_pings_reach_handle_ping_and_the_pong_is_recorded(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    assert wsx_server.ping(b"are-you-there") == 1
    assert ev.wait("ping") == (("ping", b"are-you-there"),)
    assert wsx_server.wait_for_frames("pong")[0].payload == b"are-you-there"
    wsx.stop(c)


# ------------------------------------------------------------ close faults
def test_a_close_with_code_and_reason_reaches_handle_disconnect(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    assert wsx_server.close(4001, "maintenance") == 1
    status = ev.wait("disconnect")[0]
    assert status.reason == ("remote", 4001, "maintenance") and status.remote
    assert wsx_server.wait_for_close()[0] == 4001  # the client's answer echoes the code
    assert c.join(TIMEOUT)


def test_a_close_then_a_reconnect_policy_reconnects(wsx_server: Server) -> None:
    ev = Events(reconnect=True)
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    wsx_server.close(1012, "restart")
    assert ev.wait("disconnect")[0].reason == ("remote", 1012, "restart")
    ev.wait("connect")
    assert wsx_server.wait_for_connections(2) == 2
    wsx.stop(c)


def test_a_reset_is_an_error_disconnect(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    assert wsx_server.reset() == 1
    status = ev.wait("disconnect")[0]
    assert not status.clean and status.code is None
    assert status.reason in (("remote", "closed"),) or status.reason[0] == "error", status.reason
    assert c.join(TIMEOUT)
    assert not wsx_server.closes  # no close frame either way


def test_a_half_close_without_a_close_frame(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    assert wsx_server.half_close() == 1
    status = ev.wait("disconnect")[0]
    assert status.reason == ("remote", "closed") and not status.clean
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_disconnects(1)


# ---------------------------------------------------------- data faults
def test_stop_reading_backs_up_the_client_s_writes(wsx_server: Server) -> None:
    wsx_server.stop_reading()
    ev = Events()
    c = start(wsx_server, ev, write_limit=65536, send_timeout=0.3)
    with pytest.raises(TimeoutExpired) as info:
        for _ in range(10000):
            wsx.send_frame(c, ("binary", b"x" * 16384))
    assert info.value.option == "send_timeout"
    assert c.alive  # backpressure, not a failure
    wsx_server.stop_reading(False)
    wsx.send_frame(c, ("text", "drained"))
    assert wsx_server.wait_for_message("drained", timeout=TIMEOUT * 2)
    wsx.stop(c)


def test_fragmented_messages_arrive_whole(wsx_server: Server) -> None:
    wsx_server.fragment(5)
    ev = Events()
    c = start(wsx_server, ev)
    text = "snowman ☃ and more ☃☃ " * 10  # pieces cut inside characters
    wsx.send_frame(c, ("text", text))
    assert ev.wait("frame") == (("text", text),)
    wsx_server.send(b"\x01" * 7)
    assert ev.wait("frame") == (("binary", b"\x01" * 7),)
    wsx.stop(c)


def test_delayed_messages_arrive_late_and_in_order(wsx_server: Server) -> None:
    wsx_server.delay(0.3)
    ev = Events()
    c = start(wsx_server, ev)
    began = time.monotonic()
    for i in range(3):
        wsx.send_frame(c, ("text", str(i)))
    assert [ev.wait("frame")[0] for _ in range(3)] == [("text", "0"), ("text", "1"), ("text", "2")]
    assert time.monotonic() - began >= 0.3
    wsx.stop(c)


def test_invalid_utf8_is_closed_with_1007(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    wsx_server.send_invalid_utf8()
    status = ev.wait("disconnect")[0]
    assert status.code == 1007
    assert wsx_server.wait_for_close()[0] == 1007
    assert c.join(TIMEOUT)


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_a_protocol_violation_is_closed_with_1002(wsx_server: Server, kind: str) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    wsx_server.send_protocol_violation(kind)
    status = ev.wait("disconnect")[0]
    assert status.code == 1002, (kind, status.reason)
    assert wsx_server.wait_for_close()[0] == 1002
    assert c.join(TIMEOUT)


def test_send_raw_sends_bytes_as_they_are(wsx_server: Server) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(bytes([0x81, 2]) + b"ok")
    assert ev.wait("frame") == (("text", "ok"),)
    wsx.stop(c)


# ---------------------------------------------------------- the server itself
def test_waits_time_out_naming_what_the_server_saw(wsx_server: Server) -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"1 connection\(s\).*0 attempt\(s\)"):
        wsx_server.wait_for_connections(1, timeout=0.2)
    assert 0.2 <= time.monotonic() - began < 2.0


def test_actions_without_a_connection_and_bad_arguments_are_errors(wsx_server: Server) -> None:
    with pytest.raises(RuntimeError, match="no connection is open"):
        wsx_server.close()
    with pytest.raises(ValueError, match="unknown violation 'nope'"):
        wsx_server.send_protocol_violation("nope")
    with pytest.raises(ValueError, match="fragment"):
        wsx_server.fragment(0)
    with pytest.raises(ValueError, match="delay"):
        wsx_server.delay(-1)
    with pytest.raises(ValueError, match="status"):
        wsx_server.handshake(99)
    with pytest.raises(TypeError, match="int"):
        wsx_server.send(3)  # type: ignore[arg-type]
    with pytest.raises(wsx.FrameEncodeError):
        wsx_server.ping(b"x" * 126)


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What died on a thread during the test (a connection's thread, say)."""
    errors: list[str] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: "
                      f"{args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", hook)
    return errors


BAD_CLOSES = [
    (999, "", ValueError, "999"),
    (1005, "", ValueError, "1005"),
    (1006, "", ValueError, "1006"),
    (1015, "", ValueError, "1015"),
    (5000, "", ValueError, "5000"),
    (1000, "x" * 200, ValueError, "200 bytes"),
    (1000, "é" * 62, ValueError, "124 bytes"),
    (None, "why", ValueError, "needs a close code"),
    (1000, b"bytes", TypeError, "b'bytes'"),
    (1000, 7, TypeError, "7"),
    ("1000", "", TypeError, "'1000'"),
    (True, "", TypeError, "True"),
]


def test_actions_refuse_what_cannot_be_sent_and_the_connection_lives_on(
        wsx_server: Server, thread_errors: list[str]) -> None:
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    for code, reason, error, match in BAD_CLOSES:
        with pytest.raises(error, match=match):
            wsx_server.close(code, reason)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        wsx_server.send_raw(5)  # type: ignore[arg-type]  # bytes(5): five zeros
    with pytest.raises(TypeError, match="str"):
        wsx_server.ping("text")  # type: ignore[arg-type]
    with pytest.raises(UnicodeEncodeError):
        wsx_server.send("\ud800")
    with pytest.raises(ValueError, match="Latin-1"):
        wsx_server.handshake(headers={"X-Snow": "☃"})
    with pytest.raises(ValueError, match="Latin-1"):
        wsx_server.handshake(403, {"X-Snow": "☃"})
    with pytest.raises(TypeError, match="body"):
        wsx_server.handshake(403, body=b"no")  # type: ignore[arg-type]
    # Nothing went out, nothing died: the connection is open and echoes.
    wsx.send_frame(c, ("text", "still here"))
    assert ev.wait("frame") == (("text", "still here"),)
    assert wsx_server.open_connections == 1 and c.alive
    c2 = start(wsx_server, Events())  # the next handshake is a plain one
    assert wsx_server.wait_for_connections(2) == 2
    assert wsx_server.close(None) == 2  # valid: a close without a status code
    assert ev.wait("disconnect")[0].reason == ("remote", "normal")
    assert c.join(TIMEOUT) and c2.join(TIMEOUT)
    assert wsx_server.wait_for_disconnects(2) == 2
    assert thread_errors == []


@pytest.mark.parametrize("line", ["connected", "refused"])
def test_stop_from_the_log_callback_stops_everything(line: str,
                                                     thread_errors: list[str]) -> None:
    # "connected" is logged on the connection's own thread, "refused" on the listener's.
    raised: list[BaseException] = []
    armed, stopped = threading.Event(), threading.Event()

    def log(text: str) -> None:
        if armed.is_set() and line in text:
            armed.clear()
            try:
                server.stop()
            except BaseException as exc:  # noqa: BLE001 - the log would swallow it
                raised.append(exc)
            stopped.set()

    server = Server(log=log).start()
    port = server.port
    try:
        first = Events()
        start(server, first)
        server.wait_for_connections(1)
        armed.set()
        others = []
        if line == "refused":
            server.refuse()
            with pytest.raises(wsx.errors.WSXError):
                start(server, Events())
        else:
            others.append(Events())
            start(server, others[0], handle_initial_conn_failure=True)
        assert stopped.wait(TIMEOUT)
        assert raised == []
        for ev in [first, *others]:
            assert ev.wait("disconnect")[0].reason == ("remote", 1001, "server shutting down")
        assert server.wait_for_disconnects(1 + len(others)) == 1 + len(others)
        with pytest.raises(RuntimeError, match="not started"):
            _ = server.url
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        server.stop()  # from the test's thread: waits, and has nothing left to stop
    assert server.open_connections == 0
    assert thread_errors == []


def test_records_keep_the_newest_max_records_and_count_the_dropped(
        wsx_server_factory: Any) -> None:
    assert Server().max_records == 10_000  # the default bound
    with pytest.raises(ValueError, match="max_records"):
        Server(max_records=0)
    server = wsx_server_factory(echo=False, max_records=3)
    for i in range(5):  # requests and closes: one each per connection
        c = start(server, Events(), extra_headers={"X-N": str(i)})
        assert wsx.stop(c)
        server.wait_for_disconnects(i + 1)
    assert [r.headers.get("x-n") for r in server.requests] == ["2", "3", "4"]
    assert server.closes == [(1000, "")] * 3
    assert server.dropped["requests"] == 2 and server.dropped["closes"] == 2
    n = 20_000
    c = start(server, Events())
    for i in range(n):
        wsx.send_frame(c, ("text", str(i)))
    server.wait_for(lambda: server.dropped["messages"] + len(server.messages) >= n,
                    timeout=TIMEOUT * 2, what=f"{n} messages")
    assert server.messages == [("text", str(i)) for i in range(n - 3, n)]
    assert server.dropped["messages"] == n - 3
    assert len(server.frames) == 3 and server.frames[-1].payload == str(n - 1).encode()
    assert server.dropped["frames"] >= n + 5 - 3  # the 5 close frames, and maybe pings
    assert server.wait_for_message(str(n - 1)) == 1  # the waits see what is kept
    wsx.stop(c)


def test_stop_closes_open_connections_with_1001() -> None:
    ev = Events()
    with Server() as server:
        c = start(server, ev)
        server.wait_for_connections(1)
    assert ev.wait("disconnect")[0].reason == ("remote", 1001, "server shutting down")
    assert c.join(TIMEOUT)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


def test_the_plugin_is_registered_by_the_entry_point(tmp_path: Any) -> None:
    test = tmp_path / "test_user.py"
    test.write_text(textwrap.dedent("""
        import wsx

        class Feed(wsx.WebSocket[list]):
            def handle_connect(self, conn, state):
                wsx.cast(wsx.self(), "subscribe")  # on every connection
                return ("ok", state)

            def handle_cast(self, msg, state):
                return ("reply", ("text", msg), state)

            def handle_frame(self, frame, state):
                return ("ok", state + [frame])

            def handle_disconnect(self, status, state):
                return ("reconnect", state)

        def test_resubscribes(wsx_server):
            c = wsx.start(wsx_server.url, Feed, [])
            wsx_server.wait_for_message("subscribe")
            wsx_server.reset()
            wsx_server.wait_for_message("subscribe", count=2)
            wsx.stop(c)
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(test)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_client_that_does_not_read_does_not_spin_the_server(wsx_server: Server) -> None:
    # The server's output backs up; its thread must wait on the selector, not spin.
    ev = Events()
    c = start(wsx_server, ev)
    wsx_server.wait_for_connections(1)
    wsx.sys.suspend(c)  # the client stops reading its socket
    for _ in range(64):
        wsx_server.send(b"x" * 262144)
    time.sleep(0.2)  # let the kernel buffers fill
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.25
    wsx.sys.resume(c)
    for _ in range(64):
        assert ev.wait("frame")[0] == ("binary", b"x" * 262144)
    wsx.stop(c)


def test_waiting_for_more_messages_than_kept_is_refused() -> None:
    with Server(max_records=3) as server:
        with pytest.raises(ValueError, match="max_records=3"):
            server.wait_for_messages(4, timeout=0.1)


def test_a_scripted_refusal_with_a_header_that_cannot_be_sent_is_refused_at_once() -> None:
    with Server() as server:
        with pytest.raises(ValueError, match="X-Bad"):
            server.handshake(403, {"X-Bad": "a\r\nInjected: 1"})
        server.handshake(599, body="odd")  # no standard phrase: the status line keeps its space
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
        assert head.startswith(b"HTTP/1.1 599 ")
