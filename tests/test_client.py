"""The wsx client runtime over real sockets on 127.0.0.1.

Well-behaved peers are ``websockets`` servers (``ws_server`` / ``echo_server``);
misbehaving ones are ``wsx.testing.Server`` (``wsx_server``: scripted faults,
and a record of every frame the client sent) or, for what it cannot do (bytes
in the 101 packet, a broken HTTP answer), raw TCP servers (``raw_server``).
Every client runs on the shared default loop unless a test says otherwise, and
the tests that break a client check that the loop and the other clients on it
keep working (``witness``).
"""

from __future__ import annotations

import logging
import resource
import socket
import struct
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

import wsx
from conftest import accept_response, read_frame, read_request, server_frame, wait_until
from wsx.core.frames import OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT
from wsx.testing import ReceivedFrame, Server

TIMEOUT = 5.0


# ============================================================== test helpers

class Probe:
    """Shared state of a :class:`Rec` client: a log of every callback, and hooks.

    ``hooks[name](arg, probe)`` replaces the default answer of callback
    ``name`` (``connect``, ``frame``, ``cast``, ``info``, ``ping``, ``pong``,
    ``disconnect``, ``terminate``).
    """

    def __init__(self, **hooks: Callable[[Any, Probe], Any]) -> None:
        self.hooks = hooks
        self.log: list[tuple[str, Any]] = []
        self.times: list[tuple[str, float]] = []
        self.threads: set[int] = set()
        self.cond = threading.Condition()
        self.client: Any = None
        self.data: dict[str, Any] = {}

    def add(self, name: str, arg: Any) -> None:
        with self.cond:
            self.log.append((name, arg))
            self.times.append((name, time.monotonic()))
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def of(self, name: str) -> list[Any]:
        with self.cond:
            return [a for n, a in self.log if n == name]

    def names(self) -> list[str]:
        with self.cond:
            return [n for n, _ in self.log]

    def wait(self, name: str, count: int = 1, timeout: float = TIMEOUT) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [a for n, a in self.log if n == name]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited for {count} {name!r}; log: {self.log!r}")
                self.cond.wait(left)

    def time_of(self, name: str, index: int = 0) -> float:
        with self.cond:
            return [t for n, t in self.times if n == name][index]


class Rec(wsx.WebSocket):
    """Records every callback in the Probe (the state); hooks can change the answer."""

    def _run(self, name: str, arg: Any, st: Probe, default: Callable[[], Any]) -> Any:
        st.add(name, arg)
        hook = st.hooks.get(name)
        if hook is not None:
            return hook(arg, st)
        return default()

    def handle_connect(self, conn: Any, st: Probe) -> Any:
        return self._run("connect", conn, st, lambda: ("ok", st))

    def handle_frame(self, frame: Any, st: Probe) -> Any:
        return self._run("frame", frame, st, lambda: ("ok", st))

    def handle_cast(self, msg: Any, st: Probe) -> Any:
        return self._run("cast", msg, st, lambda: ("ok", st))

    def handle_info(self, msg: Any, st: Probe) -> Any:
        return self._run("info", msg, st, lambda: ("ok", st))

    def handle_ping(self, frame: Any, st: Probe) -> Any:
        return self._run("ping", frame, st, lambda: super(Rec, self).handle_ping(frame, st))

    def handle_pong(self, frame: Any, st: Probe) -> Any:
        return self._run("pong", frame, st, lambda: ("ok", st))

    def handle_disconnect(self, status: Any, st: Probe) -> Any:
        return self._run("disconnect", status, st, lambda: ("ok", st))

    def terminate(self, reason: Any, st: Probe) -> Any:
        return self._run("terminate", reason, st, lambda: None)


def start(url: str, probe: Probe | None = None, module: Any = Rec, **opts: Any) -> tuple[Any, Probe]:
    probe = probe if probe is not None else Probe()
    client = wsx.start(url, module, probe, **opts)
    probe.client = client
    return client, probe


def close_code(payload: bytes) -> tuple[int | None, str]:
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def handshake(sock: socket.socket) -> bytes:
    request = read_request(sock)
    sock.sendall(accept_response(request))
    return request


class ClosingServer:
    """A websockets server recording messages and each connection's close code/reason.

    Messages: ``"ping-me"`` makes the server ping (payload ``b"srv"``),
    ``"close-me"`` / ``"close-me:CODE:REASON"`` makes it close, anything else
    is echoed.
    """

    def __init__(self, ws_server: Callable[..., Any], **kwargs: Any) -> None:
        self.closes: list[tuple[int | None, str]] = []
        self.received: list[Any] = []
        self.requests: list[Any] = []
        self.subprotocols: list[Any] = []
        self.closed = threading.Event()
        self.server = ws_server(self.handler, **kwargs)
        self.url = self.server.url

    async def handler(self, ws: Any) -> None:
        self.requests.append(ws.request)
        self.subprotocols.append(ws.subprotocol)
        try:
            async for msg in ws:
                self.received.append(msg)
                if msg == "ping-me":
                    await ws.ping(b"srv")
                elif isinstance(msg, str) and msg.startswith("close-me"):
                    parts = msg.split(":", 2)
                    if len(parts) == 3:
                        await ws.close(int(parts[1]), parts[2])
                    else:
                        await ws.close()
                else:
                    await ws.send(msg)
        finally:
            await ws.wait_closed()
            self.closes.append((ws.close_code, ws.close_reason))
            self.closed.set()

    def wait_close(self, count: int = 1) -> tuple[int | None, str]:
        assert wait_until(lambda: len(self.closes) >= count), f"closes: {self.closes}"
        return self.closes[count - 1]


@pytest.fixture
def closing_server(ws_server: Callable[..., Any]) -> ClosingServer:
    return ClosingServer(ws_server)


class Witness:
    """A client on the default loop used to check the loop still serves others."""

    def __init__(self, url: str) -> None:
        self.client, self.probe = start(url)
        self.n = 0

    def assert_echo(self) -> None:
        assert self.client.alive, f"the witness died: {self.client.exit_reason!r}"
        self.n += 1
        text = f"witness-{self.n}"
        wsx.send_frame(self.client, ("text", text))
        assert wait_until(lambda: ("text", text) in self.probe.of("frame")), \
            "the witness got no echo: the loop is stuck or dead"


@pytest.fixture
def witness(echo_server: Any) -> Iterator[Witness]:
    w = Witness(echo_server.url)
    w.assert_echo()
    yield w
    w.assert_echo()
    assert wsx.get_default_loop().running
    wsx.stop(w.client)


def echo(client: Any, probe: Probe, text: str) -> None:
    wsx.send_frame(client, ("text", text))
    assert wait_until(lambda: ("text", text) in probe.of("frame")), probe.log


# ======================================================== callback return shapes
def test_echo_text_and_binary(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    wsx.send_frame(c, ("text", "héllo"))
    wsx.send_frame(c, ("binary", b"\x00\xff" * 1000))
    wsx.send_frame(c, ("text", ""))
    wsx.send_frame(c, ("binary", b""))
    frames = p.wait("frame", 4)
    assert frames == [("text", "héllo"), ("binary", b"\x00\xff" * 1000), ("text", ""), ("binary", b"")]
    assert type(frames[1][1]) is bytes
    assert echo_server.received == ["héllo", b"\x00\xff" * 1000, "", b""]
    assert wsx.stop(c)
    assert p.of("terminate") == ["normal"]
    assert c.exit_reason == "normal"
    assert p.of("disconnect") == []


def test_large_binary_messages_roundtrip(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    big = bytes(range(256)) * 4096  # 1 MiB: partial writes and several reads
    wsx.send_frame(c, ("binary", big))
    wsx.send_frame(c, ("binary", big[::-1]))
    frames = p.wait("frame", 2, timeout=10)
    assert frames[0] == ("binary", big)
    assert frames[1] == ("binary", big[::-1])
    wsx.stop(c)


class Counter(wsx.WebSocket):
    """State is an int; terminate stores the final state."""

    finals: ClassVar[list[Any]] = []

    def handle_connect(self, conn: Any, state: Any) -> Any:
        return ("ok", state + 100)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state + 1)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("ok", state + msg)

    def handle_info(self, msg: Any, state: Any) -> Any:
        return ("ok", state * msg)

    def terminate(self, reason: Any, state: Any) -> None:
        Counter.finals.append(state)


def test_ok_returns_replace_the_state(echo_server: Any) -> None:
    Counter.finals = []
    c = wsx.start(echo_server.url, Counter, 0)
    for i in range(3):
        wsx.send_frame(c, ("text", str(i)))
    assert wait_until(lambda: wsx.sys.get_state(c) == 103)
    wsx.cast(c, 10)
    wsx.send(c, 2)
    assert wait_until(lambda: wsx.sys.get_state(c) == 226)
    assert wsx.stop(c)
    assert Counter.finals == [226]


# Trigger of each message callback, given a client and its ClosingServer.
def _trigger(name: str, client: Any) -> None:
    if name == "frame":
        wsx.send_frame(client, ("text", "trigger"))
    elif name == "cast":
        wsx.cast(client, "trigger")
    elif name == "info":
        wsx.send(client, "trigger")
    elif name == "ping":
        wsx.send_frame(client, ("text", "ping-me"))  # the server pings b"srv"
    elif name == "pong":
        wsx.send_frame(client, ("ping", b"cli"))  # the server pongs b"cli"
    else:
        raise AssertionError(name)


_TRIGGER_ARG = {
    "frame": ("text", "trigger"),
    "cast": "trigger",
    "info": "trigger",
    "ping": ("ping", b"srv"),
    "pong": ("pong", b"cli"),
}

MESSAGE_CALLBACKS = ["frame", "cast", "info", "ping", "pong"]


def _on_trigger(name: str, answer: Callable[[Probe], Any]) -> Callable[[Any, Probe], Any]:
    def hook(arg: Any, st: Probe) -> Any:
        if arg == _TRIGGER_ARG[name]:
            return answer(st)
        if name == "ping":
            return ("reply", ("pong",) + tuple(arg[1:]) if arg != "ping" else "pong", st)
        return ("ok", st)

    return hook


@pytest.mark.parametrize("name", MESSAGE_CALLBACKS)
def test_reply_from_each_callback(closing_server: ClosingServer, name: str) -> None:
    p = Probe(**{name: _on_trigger(name, lambda st: ("reply", ("text", f"reply-from-{name}"), st))})
    c, _ = start(closing_server.url, p)
    _trigger(name, c)
    assert wait_until(lambda: f"reply-from-{name}" in closing_server.received), closing_server.received
    # The echo of the reply comes back as a frame.
    assert ("text", f"reply-from-{name}") in p.wait("frame", 2 if name == "frame" else 1)
    assert c.alive
    assert wsx.stop(c)


@pytest.mark.parametrize("name", MESSAGE_CALLBACKS)
def test_close_from_each_callback(closing_server: ClosingServer, name: str) -> None:
    p = Probe(**{name: _on_trigger(name, lambda st: ("close", st))})
    c, _ = start(closing_server.url, p)
    _trigger(name, c)
    assert c.join(TIMEOUT)
    assert closing_server.wait_close() == (1000, "")
    [status] = p.of("disconnect")
    assert status.reason == ("local", "normal")
    assert status.attempt_number == 1
    assert status.conn is c.conn
    assert status.clean
    assert p.of("terminate") == [("local", "normal")]
    assert c.exit_reason == ("local", "normal")


@pytest.mark.parametrize("name", MESSAGE_CALLBACKS)
def test_close_with_code_from_each_callback(closing_server: ClosingServer, name: str) -> None:
    p = Probe(**{name: _on_trigger(name, lambda st: ("close", (4000, "bye"), st))})
    c, _ = start(closing_server.url, p)
    _trigger(name, c)
    assert c.join(TIMEOUT)
    assert closing_server.wait_close() == (4000, "bye")
    [status] = p.of("disconnect")
    assert status.reason == ("local", 4000, "bye")
    assert status["reason"] == ("local", 4000, "bye")
    assert status.code == 4000
    assert not status.clean
    assert c.exit_reason == ("local", 4000, "bye")


def test_close_with_invalid_code_from_callback_crashes(closing_server: ClosingServer, witness: Witness) -> None:
    p = Probe(cast=lambda msg, st: ("close", (1005, "reserved"), st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT)
    assert closing_server.wait_close() == (1011, "")
    [reason] = p.of("terminate")
    assert reason[0] == "error"
    assert p.of("disconnect") == []


def test_handle_connect_receives_conn_and_ok_state(closing_server: ClosingServer) -> None:
    c, p = start(closing_server.url)
    [conn] = p.of("connect")
    assert isinstance(conn, wsx.Conn)
    assert conn is c.conn
    assert conn.port == closing_server.server.port
    assert c.connection_state == "open"
    wsx.stop(c)


# ============================================================== ping and pong
def test_ping_pong_from_raw_server_bare_and_with_payload(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.ping()
    wsx_server.ping(b"hello")
    pongs = wsx_server.wait_for_frames("pong", 2)
    wsx_server.send_raw(server_frame(OP_PONG) + server_frame(OP_PONG, b"pp"))
    assert p.wait("pong", 2) == ["pong", ("pong", b"pp")]
    assert p.of("ping") == ["ping", ("ping", b"hello")]
    assert wsx_server.frames[:2] == pongs
    assert [f.payload for f in pongs] == [b"", b"hello"]
    wsx_server.close(1000)
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close() == (1000, "")
    assert wsx_server.frames[2] == ReceivedFrame("close", close_payload(1000), True, 1)
    assert c.exit_reason == ("remote", 1000, "")


def test_ping_payload_of_125_bytes_answered_in_full(wsx_server: Server) -> None:
    payload = bytes(range(125))
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.ping(payload)
    wsx_server.wait_for_frames("pong")
    assert wsx_server.frames == [ReceivedFrame("pong", payload, True, 1)]
    assert p.of("ping") == [("ping", payload)]
    assert wsx.stop(c)


def test_client_sends_ping_and_pong_bare_and_with_payload(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx.send_frame(c, "ping")
    wsx.send_frame(c, ("ping", b"abc"))
    wsx.send_frame(c, "pong")
    wsx.send_frame(c, ("pong", b"def"))
    assert p.wait("pong", 2) == ["pong", ("pong", b"abc")]
    assert wsx.stop(c)
    assert [(f.kind, f.payload) for f in wsx_server.frames] == [
        ("ping", b""), ("ping", b"abc"), ("pong", b""), ("pong", b"def"),
        ("close", close_payload(1000)),
    ]
    assert c.exit_reason == "normal"


def test_websockets_server_answers_client_pings(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    wsx.send_frame(c, "ping")
    wsx.send_frame(c, ("ping", b"data"))
    assert p.wait("pong", 2) == ["pong", ("pong", b"data")]
    wsx.stop(c)


def test_handle_ping_custom_reply_and_ok(wsx_server: Server) -> None:
    def on_ping(frame: Any, st: Probe) -> Any:
        if frame == ("ping", b"1"):
            return ("ok", st)  # no pong at all
        return ("reply", ("text", "custom"), st)

    c, _ = start(wsx_server.url, Probe(ping=on_ping))
    wsx_server.wait_for_connections(1)
    wsx_server.ping(b"1")
    wsx_server.ping(b"2")
    assert wsx_server.wait_for_message("custom") == 1
    assert wsx.stop(c)
    assert [(f.kind, f.payload) for f in wsx_server.frames] == [
        ("text", b"custom"), ("close", close_payload(1000))]


# ================================================================== fragments
def test_fragments_arrive_reassembled(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    wsx.send_frame(c, ("fragment", "text", "Hel"))
    wsx.send_frame(c, ("continuation", "lo, "))
    wsx.send_frame(c, "ping")  # control frames may be interleaved
    wsx.send_frame(c, ("finish", "world"))
    wsx.send_frame(c, ("fragment", "binary", b"\x00\x01"))
    wsx.send_frame(c, ("continuation", b""))
    wsx.send_frame(c, ("finish", b"\x02"))
    e = "é".encode()
    wsx.send_frame(c, ("fragment", "text", b"caf" + e[:1]))  # a character split in two
    wsx.send_frame(c, ("finish", e[1:]))
    wsx.send_frame(c, ("fragment", "text", ""))
    wsx.send_frame(c, ("finish", ""))
    frames = p.wait("frame", 4)
    assert echo_server.received == ["Hello, world", b"\x00\x01\x02", "café", ""]
    assert frames == [("text", "Hello, world"), ("binary", b"\x00\x01\x02"), ("text", "café"), ("text", "")]
    wsx.stop(c)


def test_fragment_wire_format(wsx_server: Server) -> None:
    c, _ = start(wsx_server.url)
    wsx.send_frame(c, ("fragment", "binary", b"a"))
    wsx.send_frame(c, ("continuation", b"b"))
    wsx.send_frame(c, ("finish", b"c"))
    assert wsx.stop(c)
    assert wsx_server.frames[:3] == [ReceivedFrame("binary", b"a", False, 1),
                                     ReceivedFrame("continuation", b"b", False, 1),
                                     ReceivedFrame("continuation", b"c", True, 1)]
    assert wsx_server.messages == [("binary", b"abc")]


def test_fragment_misuse_raises_and_keeps_the_connection(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    with pytest.raises(wsx.FrameEncodeError):
        wsx.send_frame(c, ("continuation", "x"))
    with pytest.raises(wsx.FrameEncodeError):
        wsx.send_frame(c, ("finish", "x"))
    wsx.send_frame(c, ("fragment", "text", "a"))
    with pytest.raises(wsx.FrameEncodeError):
        wsx.send_frame(c, ("text", "interleaved"))
    with pytest.raises(wsx.FrameEncodeError):
        wsx.send_frame(c, ("fragment", "text", "nested"))
    with pytest.raises(wsx.InvalidFrameError):
        wsx.send_frame(c, ("fragment", "ping", b""))
    wsx.send_frame(c, ("finish", "b"))
    assert p.wait("frame") == [("text", "ab")]
    echo(c, p, "after")
    wsx.stop(c)


# ============================================================== close reasons
def test_remote_close_1000(closing_server: ClosingServer) -> None:
    c, p = start(closing_server.url)
    wsx.send_frame(c, ("text", "close-me"))
    assert c.join(TIMEOUT)
    [status] = p.of("disconnect")
    assert status.reason == ("remote", 1000, "")
    assert c.exit_reason == ("remote", 1000, "")
    assert closing_server.wait_close() == (1000, "")


def test_remote_close_with_code(closing_server: ClosingServer) -> None:
    c, p = start(closing_server.url)
    wsx.send_frame(c, ("text", "close-me:4001:nope"))
    assert c.join(TIMEOUT)
    [status] = p.of("disconnect")
    assert status.reason == ("remote", 4001, "nope")
    assert status.code == 4001
    # The client echoes the code (RFC 6455 5.5.1).
    assert closing_server.wait_close()[0] == 4001
    assert c.exit_reason == ("remote", 4001, "nope")
    assert p.of("terminate") == [("remote", 4001, "nope")]


def test_remote_close_without_status_code(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.close(None)
    assert c.join(TIMEOUT)
    assert p.of("disconnect")[0].reason == ("remote", "normal")
    assert wsx_server.wait_for_close() == (None, "")
    # empty close answered with an empty close
    assert wsx_server.frames == [ReceivedFrame("close", b"", True, 1)]


def test_remote_closed_without_close_frame(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.half_close()
    assert c.join(TIMEOUT)
    [status] = p.of("disconnect")
    assert status.reason == ("remote", "closed")
    assert not status.clean
    assert c.exit_reason == ("remote", "closed")


def test_connection_reset_is_error_reason(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    assert wsx_server.reset() == 1
    assert c.join(TIMEOUT)
    [status] = p.of("disconnect")
    assert status.reason[0] in ("error", "remote")
    if status.reason[0] == "error":
        assert isinstance(status.reason[1], wsx.ConnError)


PROTOCOL_VIOLATIONS = {
    "reserved data opcode": (server_frame(0x3, b"x"), 1002),
    "reserved control opcode": (server_frame(0xB, b""), 1002),
    "rsv bit without extension": (server_frame(OP_TEXT, b"x", rsv=0x40), 1002),
    "masked server frame": (bytes([0x81, 0x81, 1, 2, 3, 4, ord("x") ^ 1]), 1002),
    "fragmented ping": (server_frame(OP_PING, b"x", fin=False), 1002),
    "ping over 125 bytes": (server_frame(OP_PING, b"x" * 126), 1002),
    "continuation without start": (server_frame(OP_CONTINUATION, b"x"), 1002),
    "new message inside fragments": (server_frame(OP_TEXT, b"a", fin=False) + server_frame(OP_TEXT, b"b"), 1002),
    "invalid utf-8 text": (server_frame(OP_TEXT, b"\xff\xfe"), 1007),
    "invalid utf-8 in a fragment": (
        server_frame(OP_TEXT, b"ok", fin=False) + server_frame(OP_CONTINUATION, b"\xc3\x28"), 1007),
    "close with 1-byte payload": (server_frame(OP_CLOSE, b"\x03"), 1002),
    "close with reserved code 1005": (server_frame(OP_CLOSE, close_payload(1005)), 1002),
    "close reason not utf-8": (server_frame(OP_CLOSE, close_payload(1000) + b"\xff"), 1007),
}


@pytest.mark.parametrize("violation", sorted(PROTOCOL_VIOLATIONS))
def test_protocol_violation_fails_the_connection(wsx_server: Server, witness: Witness,
                                                 violation: str) -> None:
    data, code = PROTOCOL_VIOLATIONS[violation]
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(data)
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close()[0] == code
    assert wsx_server.frames[0].kind == "close"  # the client's first and only answer
    [status] = p.of("disconnect")
    kind, error = status.reason
    assert kind == "error"
    assert isinstance(error, wsx.FrameError)
    assert error.code == code
    assert c.exit_reason == status.reason
    assert p.of("frame") == []
    witness.assert_echo()


def test_frames_before_a_protocol_error_are_delivered(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(server_frame(OP_TEXT, b"first") + server_frame(0x3))
    assert c.join(TIMEOUT)
    assert p.of("frame") == [("text", "first")]
    assert wsx_server.wait_for_close()[0] == 1002


def test_leftover_frames_in_the_handshake_packet_are_delivered(raw_server: Any) -> None:
    def handler(sock: socket.socket) -> None:
        request = read_request(sock)
        sock.sendall(accept_response(request) + server_frame(OP_TEXT, b"early") + server_frame(OP_PING, b"p"))
        read_frame(sock)
        time.sleep(0.2)

    server = raw_server(handler)
    c, p = start(server.url)
    assert p.wait("frame") == [("text", "early")]
    assert p.wait("ping") == [("ping", b"p")]
    assert p.names()[0] == "connect"
    c.join(TIMEOUT)


# ======================================================= crashing callbacks
class Boom(Exception):
    pass


def _raise(arg: Any, st: Probe) -> Any:
    raise Boom(f"boom on {arg!r}")


@pytest.mark.parametrize("name", MESSAGE_CALLBACKS)
@pytest.mark.parametrize("how", ["raise", "bad return"])
def test_crashing_callback(closing_server: ClosingServer, witness: Witness, name: str, how: str) -> None:
    bad_value = ("reply", "not-a-frame-shape", "x", "y")
    answer = _raise if how == "raise" else (lambda arg, st: bad_value)
    p = Probe(**{name: lambda arg, st: answer(arg, st) if arg == _TRIGGER_ARG[name] else ("ok", st)})
    c, _ = start(closing_server.url, p)
    other, other_p = start(closing_server.url)  # another client on the same loop
    _trigger(name, c)
    assert c.join(TIMEOUT)
    assert closing_server.wait_close() == (1011, "")
    [reason] = p.of("terminate")
    assert reason[0] == "error"
    exc = reason[1]
    if how == "raise":
        assert isinstance(exc, Boom)
    else:
        assert isinstance(exc, wsx.BadResponseError)
        assert exc.callback == f"handle_{name}"
        assert exc.response == bad_value
        assert f"handle_{name}" in str(exc) and "not-a-frame-shape" in str(exc)
    assert p.of("disconnect") == []
    assert c.exit_reason == reason
    assert not c.alive
    with pytest.raises(wsx.NotConnectedError):
        wsx.send_frame(c, ("text", "too late"))
    echo(other, other_p, "still here")
    witness.assert_echo()
    wsx.stop(other)


@pytest.mark.parametrize("bad", [None, "ok", ("ok",), ("ok", 1, 2), ["ok", 1], ("reply", "ping"), ("close",),
                                 ("close", 1000, "x"), ("close", (1000,), "s"), ("noreply", 1)])
def test_bad_returns_are_bad_response_errors(closing_server: ClosingServer, bad: Any) -> None:
    p = Probe(cast=lambda msg, st: bad)
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT)
    [reason] = p.of("terminate")
    assert isinstance(reason[1], wsx.BadResponseError)
    assert reason[1].response == bad
    assert closing_server.wait_close() == (1011, "")


def test_reply_with_unencodable_frame_closes_with_1011_and_goes_to_handle_disconnect(
        closing_server: ClosingServer, witness: Witness) -> None:
    # As WebSockex: handle_disconnect gets ("error", exc) (and may reconnect).
    p = Probe(cast=lambda msg, st: ("reply", ("ping", b"x" * 126), st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT)
    assert closing_server.wait_close() == (1011, "")
    [status] = p.of("disconnect")
    assert status.reason[0] == "error" and isinstance(status.reason[1], wsx.FrameEncodeError)
    assert p.of("terminate") == [status.reason]


def test_reply_with_unknown_frame_goes_to_handle_disconnect(closing_server: ClosingServer) -> None:
    p = Probe(cast=lambda msg, st: ("reply", ("txt", "typo"), st),
              disconnect=lambda status, st: ("reconnect", st) if len(st.of("disconnect")) == 1
              else ("ok", st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    p.wait("connect", 2)  # handle_disconnect chose to reconnect
    [status] = p.of("disconnect")
    assert isinstance(status.reason[1], wsx.InvalidFrameError)
    assert closing_server.wait_close() == (1011, "")
    assert c.alive
    assert wsx.stop(c)


def test_handle_connect_raising_fails_start(closing_server: ClosingServer, witness: Witness) -> None:
    p = Probe(connect=_raise)
    with pytest.raises(Boom):
        wsx.start(closing_server.url, Rec, p)
    assert closing_server.wait_close() == (1011, "")
    assert p.of("disconnect") == []
    [reason] = p.of("terminate")
    assert isinstance(reason[1], Boom)


def test_handle_connect_bad_return_fails_start(closing_server: ClosingServer) -> None:
    p = Probe(connect=lambda conn, st: ("reply", ("text", "no"), st))
    with pytest.raises(wsx.BadResponseError) as info:
        wsx.start(closing_server.url, Rec, p)
    assert info.value.callback == "handle_connect"
    assert closing_server.wait_close() == (1011, "")
    assert closing_server.received == []


def test_handle_disconnect_raising_terminates(closing_server: ClosingServer, witness: Witness) -> None:
    p = Probe(disconnect=_raise)
    c, _ = start(closing_server.url, p)
    wsx.send_frame(c, ("text", "close-me"))
    assert c.join(TIMEOUT)
    [reason] = p.of("terminate")
    assert reason[0] == "error" and isinstance(reason[1], Boom)


@pytest.mark.parametrize("bad", [("ok",), ("reconnect", "http://127.0.0.1:1/", None),
                                 ("reconnect_after", -1, None), ("reconnect_after", "1", None), None])
def test_handle_disconnect_bad_return(closing_server: ClosingServer, bad: Any) -> None:
    p = Probe(disconnect=lambda status, st: bad)
    c, _ = start(closing_server.url, p)
    wsx.send_frame(c, ("text", "close-me"))
    assert c.join(TIMEOUT)
    [reason] = p.of("terminate")
    assert isinstance(reason[1], wsx.BadResponseError)
    assert reason[1].callback == "handle_disconnect"
    assert reason[1].response == bad


def test_terminate_raising_still_ends_the_client(closing_server: ClosingServer, witness: Witness) -> None:
    p = Probe(terminate=_raise)
    c, _ = start(closing_server.url, p)
    assert wsx.stop(c)
    assert c.exit_reason == "normal"


def test_system_exit_in_a_callback_does_not_stop_the_loop(closing_server: ClosingServer, witness: Witness) -> None:
    def bye(msg: Any, st: Probe) -> Any:
        raise SystemExit(3)

    p = Probe(cast=bye)
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT)
    assert c.exit_reason[0] == "error"
    assert isinstance(c.exit_reason[1], SystemExit)
    assert closing_server.wait_close() == (1011, "")
    witness.assert_echo()


def test_crash_while_handshake_leftover_is_handled(raw_server: Any) -> None:
    """A crash right after handle_connect (frames in the 101 packet) must not break start()."""

    def handler(sock: socket.socket) -> None:
        request = read_request(sock)
        sock.sendall(accept_response(request) + server_frame(OP_TEXT, b"boom"))
        read_frame(sock)

    def slow_terminate(reason: Any, st: Probe) -> None:
        time.sleep(0.002)  # gives the starting thread the GIL

    server = raw_server(handler)
    for _ in range(20):
        p = Probe(frame=_raise, terminate=slow_terminate)
        c = wsx.start(server.url, Rec, p)
        assert c.join(TIMEOUT)
        assert isinstance(c.exit_reason[1], Boom)


# ============================================== default callbacks and modules
class Bare(wsx.WebSocket):
    pass


def test_default_handle_frame_and_cast_raise(closing_server: ClosingServer) -> None:
    c = wsx.start(closing_server.url, Bare)
    wsx.send_frame(c, ("text", "unhandled"))
    assert c.join(TIMEOUT)
    assert c.exit_reason[0] == "error"
    assert isinstance(c.exit_reason[1], NotImplementedError)
    assert "unhandled" in str(c.exit_reason[1])
    assert closing_server.wait_close() == (1011, "")
    c = wsx.start(closing_server.url, Bare)
    wsx.cast(c, "unhandled cast")
    assert c.join(TIMEOUT)
    assert isinstance(c.exit_reason[1], NotImplementedError)
    assert closing_server.wait_close(2) == (1011, "")


def test_default_handle_info_logs_and_continues(
    closing_server: ClosingServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="wsx"):
        c = wsx.start(closing_server.url, Bare)
        wsx.send(c, ("unexpected", 42))
        assert wait_until(lambda: "unexpected" in caplog.text)
    assert c.alive
    wsx.send_frame(c, "ping")
    assert wsx.stop(c)
    assert c.exit_reason == "normal"


def test_plain_module_as_callback_module(closing_server: ClosingServer) -> None:
    mod = types.ModuleType("my_handler")
    seen: list[Any] = []

    def handle_connect(conn: Any, state: Any) -> Any:
        seen.append(("connect", state))
        return ("ok", state + ["connected"])

    def handle_frame(frame: Any, state: Any) -> Any:
        seen.append(frame)
        if frame == ("text", "reply please"):
            return ("reply", ("text", "replied"), state)
        return ("ok", state)

    def terminate(reason: Any, state: Any) -> None:
        seen.append(("terminate", reason, state))

    mod.handle_connect = handle_connect
    mod.handle_frame = handle_frame
    mod.terminate = terminate
    mod.not_a_callback = 42

    c = wsx.start(closing_server.url, mod, [])
    wsx.send_frame(c, ("text", "reply please"))
    assert wait_until(lambda: ("text", "replied") in seen)
    assert closing_server.received == ["reply please", "replied"]
    # Defaults fill in the rest: the server's ping is answered with a pong.
    wsx.send_frame(c, ("text", "ping-me"))
    assert wsx.stop(c)
    assert seen[0] == ("connect", [])
    assert seen[-1] == ("terminate", "normal", ["connected"])
    # Default handle_cast raises: the module's client crashes.
    c2 = wsx.start(closing_server.url, mod, [])
    wsx.cast(c2, "no handle_cast")
    assert c2.join(TIMEOUT)
    assert isinstance(c2.exit_reason[1], NotImplementedError)


def test_plain_module_default_pong_on_raw_server(wsx_server: Server) -> None:
    mod = types.ModuleType("pong_default")
    mod.handle_frame = lambda frame, state: ("ok", state)
    c = wsx.start(wsx_server.url, mod)
    wsx_server.wait_for_connections(1)
    wsx_server.ping(b"mod")
    wsx_server.wait_for_frames("pong")
    assert wsx_server.frames == [ReceivedFrame("pong", b"mod", True, 1)]
    assert wsx.stop(c)


def test_module_with_no_callbacks_is_rejected(echo_server: Any) -> None:
    with pytest.raises(TypeError):
        wsx.start(echo_server.url, types.ModuleType("empty"))


# ========================================================== names and options
def test_name_registration_and_use(closing_server: ClosingServer) -> None:
    p = Probe()
    c = wsx.start(closing_server.url, Rec, p, name="named-client")
    assert wsx.whereis("named-client") is c
    assert c.name == "named-client"
    with pytest.raises(ValueError):
        wsx.start(closing_server.url, Rec, Probe(), name="named-client")
    wsx.send_frame("named-client", ("text", "by name"))
    wsx.cast("named-client", "cast by name")
    wsx.send("named-client", "info by name")
    assert p.wait("frame") == [("text", "by name")]
    assert p.wait("cast") == ["cast by name"]
    assert p.wait("info") == ["info by name"]
    assert wsx.stop("named-client", "shutdown")
    assert p.of("terminate") == ["shutdown"]
    assert wsx.whereis("named-client") is None
    with pytest.raises(wsx.NoProcessError):
        wsx.send_frame("named-client", ("text", "x"))
    with pytest.raises(wsx.NoProcessError):
        wsx.cast("named-client", "x")
    # The name is free again.
    c2 = wsx.start(closing_server.url, Rec, Probe(), name="named-client")
    assert wsx.whereis("named-client") is c2
    wsx.stop(c2)


def test_unknown_option_and_conn_with_options_are_rejected(echo_server: Any) -> None:
    with pytest.raises(TypeError, match="bogus"):
        wsx.start(echo_server.url, Rec, Probe(), bogus=1)
    with pytest.raises(TypeError):
        wsx.start(wsx.Conn(echo_server.url), Rec, Probe(), origin="http://x")


def test_start_with_a_conn_object(echo_server: Any) -> None:
    conn = wsx.Conn(echo_server.url, max_message_size=1000)
    c, p = start(conn)  # type: ignore[arg-type]
    assert c.conn is conn
    assert p.of("connect") == [conn]
    echo(c, p, "conn")
    wsx.stop(c)


def test_extra_headers_subprotocols_origin_reach_the_server(ws_server: Callable[..., Any]) -> None:
    server = ClosingServer(ws_server, subprotocols=["chat"])
    c, p = start(server.url, extra_headers={"X-Token": "abc"}, subprotocols=["superchat", "chat"],
                 origin="http://example.test")
    [conn] = p.of("connect")
    assert conn.subprotocol == "chat"
    assert conn.resp_headers.get("Sec-WebSocket-Protocol") == "chat"
    assert wait_until(lambda: server.requests)  # the handler runs after the 101 is sent
    request = server.requests[0]
    assert request.headers["X-Token"] == "abc"
    assert request.headers["Origin"] == "http://example.test"
    assert request.headers["Sec-WebSocket-Protocol"] == "superchat, chat"
    assert server.subprotocols == ["chat"]
    wsx.stop(c)


def test_resp_headers_available_in_handle_connect(wsx_server: Server) -> None:
    seen: dict[str, Any] = {}

    def on_connect(conn: Any, st: Probe) -> Any:
        seen["custom"] = conn.resp_headers.get("X-Custom")
        seen["upgrade"] = conn.resp_headers.get("upgrade")
        return ("ok", st)

    wsx_server.handshake(headers={"X-Custom": "yes"})
    c, _ = start(wsx_server.url, Probe(connect=on_connect))
    assert seen == {"custom": "yes", "upgrade": "websocket"}
    wsx.stop(c, timeout=TIMEOUT)


def test_request_path_and_query_are_sent(wsx_server: Server) -> None:
    c, _ = start(wsx_server.url + "chat/room?x=1&y=2")
    # Recorded before the answer; the server upgrades only a GET in HTTP/1.1.
    [request] = wsx_server.requests
    assert request.target == "/chat/room?x=1&y=2"
    assert wsx_server.connections == 1
    wsx.stop(c, timeout=TIMEOUT)


# ============================================================== async_connect
def test_async_connect(wsx_server: Server) -> None:
    wsx_server.handshake(delay=1.0)  # the answer is held while the test looks
    t0 = time.monotonic()
    c, p = start(wsx_server.url, async_connect=True)
    assert time.monotonic() - t0 < 0.5
    assert c.alive
    assert c.connection_state == "connecting"
    with pytest.raises(wsx.NotConnectedError) as info:
        wsx.send_frame(c, ("text", "too early"))
    assert info.value.connection_state == "connecting"
    # Messages sent while connecting are held and delivered in order after handle_connect.
    wsx.cast(c, 1)
    wsx.send(c, 2)
    wsx.cast(c, 3)
    time.sleep(0.05)
    assert p.log == []
    assert wait_until(lambda: len(p.log) == 4)
    assert p.log[0][0] == "connect"
    assert p.log[1:] == [("cast", 1), ("info", 2), ("cast", 3)]
    wsx.send_frame(c, ("text", "now"))
    assert wsx.stop(c)
    assert wsx_server.frames[0] == ReceivedFrame("text", b"now", True, 1)


def test_async_connect_failure_ends_the_client(free_port: int) -> None:
    c, p = start(f"ws://127.0.0.1:{free_port}/", async_connect=True)
    assert c.join(TIMEOUT)
    assert c.exit_reason[0] == "error"
    assert isinstance(c.exit_reason[1], wsx.ConnError)
    assert "disconnect" not in p.names()


# ================================================= initial connection failure
def test_refused_connection_raises_conn_error_quickly(free_port: int) -> None:
    p = Probe()
    t0 = time.monotonic()
    with pytest.raises(wsx.ConnError) as info:
        wsx.start(f"ws://127.0.0.1:{free_port}/", Rec, p)
    assert time.monotonic() - t0 < 1.0
    assert isinstance(info.value.original, ConnectionRefusedError) or "refused" in str(info.value).lower()
    assert p.log == []  # neither handle_disconnect nor terminate


def test_404_raises_request_error(wsx_server: Server) -> None:
    wsx_server.handshake(404, {"X-Why": "gone"}, body="not here!")
    with pytest.raises(wsx.RequestError) as info:
        wsx.start(wsx_server.url, Rec, Probe())
    assert info.value.status == 404
    assert info.value.code == 404
    assert info.value.reason == "Not Found"
    assert info.value.body == b"not here!\n"  # the body the server sent, newline included
    assert ("X-Why", "gone") in info.value.headers


def test_404_without_length_read_until_close(raw_server: Any) -> None:
    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 404 Not Found\r\n\r\npartial body")

    server = raw_server(handler)
    with pytest.raises(wsx.RequestError) as info:
        wsx.start(server.url, Rec, Probe())
    assert info.value.status == 404
    assert info.value.body == b"partial body"


def test_bad_accept_key_raises_handshake_error(wsx_server: Server) -> None:
    wsx_server.handshake(headers={"Sec-WebSocket-Accept": "dGhlIHNhbXBsZSBub25jZQ=="})
    with pytest.raises(wsx.HandshakeError) as info:
        wsx.start(wsx_server.url, Rec, Probe())
    assert not isinstance(info.value, wsx.RequestError)
    assert "Sec-WebSocket-Accept" in str(info.value)


def test_garbage_instead_of_http_raises_handshake_error(raw_server: Any) -> None:
    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"\x00\x01garbage garbage\r\n\r\n")
        time.sleep(0.5)

    server = raw_server(handler)
    with pytest.raises(wsx.HandshakeError):
        wsx.start(server.url, Rec, Probe())


def test_server_closing_during_handshake_raises_handshake_error(raw_server: Any) -> None:
    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 101 Switch")

    server = raw_server(handler)
    with pytest.raises(wsx.HandshakeError):
        wsx.start(server.url, Rec, Probe())


def test_server_closing_before_reading_request(raw_server: Any) -> None:
    server = raw_server(lambda sock: None)
    with pytest.raises((wsx.HandshakeError, wsx.ConnError)):
        wsx.start(server.url, Rec, Probe())


def test_stalled_handshake_times_out(raw_server: Any, witness: Witness) -> None:
    release = threading.Event()

    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")  # and never the rest
        release.wait(TIMEOUT)

    server = raw_server(handler)
    t0 = time.monotonic()
    with pytest.raises(wsx.HandshakeError) as info:
        wsx.start(server.url, Rec, Probe(), socket_recv_timeout=0.3)
    elapsed = time.monotonic() - t0
    release.set()
    assert 0.25 <= elapsed < 2.0
    assert "socket_recv_timeout" in str(info.value)
    witness.assert_echo()


def test_connect_timeout(witness: Witness) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    try:
        t0 = time.monotonic()
        with pytest.raises(wsx.ConnError) as info:
            wsx.start(f"ws://127.0.0.1:{port}/", Rec, Probe(), socket_connect_timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 2.0
        assert isinstance(info.value.original, TimeoutError)
    finally:
        for f in fillers:
            f.close()
        s.close()
    witness.assert_echo()


def test_handle_initial_conn_failure_calls_handle_disconnect(free_port: int) -> None:
    p = Probe()
    with pytest.raises(wsx.ConnError):
        wsx.start(f"ws://127.0.0.1:{free_port}/", Rec, p, handle_initial_conn_failure=True)
    [status] = p.of("disconnect")
    assert status.reason[0] == "error"
    assert isinstance(status.reason[1], wsx.ConnError)
    assert status.attempt_number == 1
    assert status.conn.port == free_port
    [reason] = p.of("terminate")
    assert reason == status.reason


def test_handle_initial_conn_failure_then_reconnect_succeeds(wsx_server: Server) -> None:
    wsx_server.handshake(503)  # the first upgrade only
    p = Probe(disconnect=lambda status, st: ("reconnect", st))
    c = wsx.start(wsx_server.url, Rec, p, handle_initial_conn_failure=True)
    assert c.connection_state == "open"
    [status] = p.of("disconnect")
    assert isinstance(status.reason[1], wsx.RequestError)
    assert status.reason[1].status == 503
    assert len(p.of("connect")) == 1
    assert len(wsx_server.requests) == 2 and wsx_server.connections == 1
    p.hooks.clear()
    assert wsx.stop(c)


# ================================================================== reconnect
def test_reconnect_attempts_count_up_then_ok_ends(wsx_server: Server) -> None:
    def on_disconnect(status: Any, st: Probe) -> Any:
        if status.attempt_number == 1:
            wsx_server.refuse(2)  # the next attempts are reset as they are accepted
        return ("reconnect", st) if status.attempt_number < 3 else ("ok", st)

    c, p = start(wsx_server.url, Probe(disconnect=on_disconnect))
    wsx_server.wait_for_connections(1)
    wsx_server.close(1001, "restarting")
    assert c.join(TIMEOUT)
    statuses = p.of("disconnect")
    assert [s.attempt_number for s in statuses] == [1, 2, 3]
    assert statuses[0].reason == ("remote", 1001, "restarting")
    for s in statuses[1:]:
        assert s.reason[0] == "error" and isinstance(s.reason[1], wsx.ConnError)
        assert s.conn is c.conn
    assert p.of("terminate") == [statuses[-1].reason]
    assert c.exit_reason == statuses[-1].reason
    assert len(p.of("connect")) == 1
    assert wsx_server.connections == 1 and wsx_server.attempts == 3


def test_reconnect_calls_handle_connect_again_and_resets_attempts(closing_server: ClosingServer) -> None:
    p = Probe(disconnect=lambda status, st: ("reconnect", st) if len(st.of("disconnect")) == 1 else ("ok", st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "queued")  # delivered on the first connection
    p.wait("cast")
    wsx.send_frame(c, ("text", "close-me:4002:again"))
    conns = p.wait("connect", 2)
    assert conns[0] is conns[1] is c.conn
    echo(c, p, "second connection")
    wsx.send_frame(c, ("text", "close-me"))
    assert c.join(TIMEOUT)
    statuses = p.of("disconnect")
    assert [s.reason for s in statuses] == [("remote", 4002, "again"), ("remote", 1000, "")]
    assert [s.attempt_number for s in statuses] == [1, 1]
    assert closing_server.server.connections == 2
    assert p.names() == ["connect", "cast", "disconnect", "connect", "frame", "disconnect", "terminate"]


def test_reconnect_with_new_conn_switches_url(ws_server: Callable[..., Any]) -> None:
    a = ClosingServer(ws_server)
    b = ClosingServer(ws_server)
    new_conn = wsx.Conn(b.url + "second", extra_headers=[("X-Second", "1")])

    def on_disconnect(status: Any, st: Probe) -> Any:
        if status.conn.port == a.server.port:
            return ("reconnect", new_conn, st)
        return ("ok", st)

    c, p = start(a.url, Probe(disconnect=on_disconnect))
    wsx.send_frame(c, ("text", "close-me"))
    conns = p.wait("connect", 2)
    assert conns[1] is new_conn
    assert c.conn is new_conn
    assert wait_until(lambda: b.server.connections == 1 and b.requests)
    assert b.requests[0].path == "/second"
    assert b.requests[0].headers["X-Second"] == "1"
    echo(c, p, "on b")
    assert b.received == ["on b"]
    assert wsx.stop(c)


def test_reconnect_after_waits_without_blocking_the_loop(closing_server: ClosingServer) -> None:
    delay = 0.5
    p = Probe(disconnect=lambda status, st: ("reconnect_after", delay, st) if len(st.of("disconnect")) == 1
              else ("ok", st))
    c, _ = start(closing_server.url, p)
    other, op = start(closing_server.url)  # same (default) loop
    wsx.send_frame(c, ("text", "close-me"))
    p.wait("disconnect")
    t_disc = p.time_of("disconnect")
    # The other client keeps echoing during the wait.
    echoed_at = []
    for i in range(5):
        echo(other, op, f"meanwhile {i}")
        echoed_at.append(time.monotonic())
    assert c.connection_state == "connecting"
    p.wait("connect", 2)
    t_conn = p.time_of("connect", 1)
    assert t_conn - t_disc >= delay - 0.01
    assert t_conn - t_disc < delay + 1.0
    assert all(t < t_conn for t in echoed_at)
    echo(c, p, "back")
    wsx.stop(c)
    wsx.stop(other)


def test_stop_during_reconnect_wait(closing_server: ClosingServer) -> None:
    p = Probe(disconnect=lambda status, st: ("reconnect_after", 30, st))
    c, _ = start(closing_server.url, p)
    wsx.send_frame(c, ("text", "close-me"))
    p.wait("disconnect")
    t0 = time.monotonic()
    assert wsx.stop(c, "shutdown", timeout=TIMEOUT)
    assert time.monotonic() - t0 < 1.0
    assert p.of("terminate") == ["shutdown"]
    assert closing_server.server.connections == 1


def test_reconnect_while_server_refuses_then_comes_back(wsx_server: Server) -> None:
    # First connection is accepted then dropped; the next attempts meet HTTP
    # errors; then the server accepts again.
    p = Probe(disconnect=lambda status, st: ("reconnect", st))
    c, _ = start(wsx_server.url, p)
    wsx_server.wait_for_connections(1)
    wsx_server.handshake(503, times=2)
    wsx_server.half_close()  # TCP closed without close frame
    p.wait("connect", 2)
    statuses = p.of("disconnect")
    assert [s.attempt_number for s in statuses] == [1, 2, 3]
    assert statuses[0].reason == ("remote", "closed")
    assert isinstance(statuses[1].reason[1], wsx.RequestError)
    assert statuses[2].reason[1].status == 503
    assert wsx_server.connections == 2 and len(wsx_server.requests) == 4
    p.hooks.clear()
    assert wsx.stop(c)


# ============================================================ send_frame errors
def test_send_frame_invalid_frames(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    for bad in [("txt", "x"), 42, "text", ("text",), ("text", 5), ("binary", "str"), ("text", "a", "b"),
                ("ping", 5), [("text", "list")], None, ()]:
        with pytest.raises(wsx.InvalidFrameError) as info:
            wsx.send_frame(c, bad)
        assert isinstance(info.value, ValueError)
    for bad in [("ping", b"x" * 126), ("pong", b"x" * 200), ("text", b"\xff\xfe")]:
        with pytest.raises(wsx.FrameEncodeError):
            wsx.send_frame(c, bad)
    echo(c, p, "still fine")
    assert echo_server.received == ["still fine"]
    wsx.send_frame(c, ("ping", b"x" * 125))
    wsx.stop(c)


def test_send_frame_from_own_callback_is_calling_self_error(closing_server: ClosingServer) -> None:
    errors: list[Any] = []

    def on_cast(msg: Any, st: Probe) -> Any:
        try:
            wsx.send_frame(st.client if msg == "handle" else "selfish", ("text", "from inside"))
        except wsx.CallingSelfError as exc:
            errors.append(exc)
        return ("ok", st)

    p = Probe(cast=on_cast)
    c = wsx.start(closing_server.url, Rec, p, name="selfish")
    p.client = c
    wsx.cast(c, "handle")
    wsx.cast(c, "name")
    p.wait("cast", 2)
    assert wait_until(lambda: len(errors) == 2)
    assert all(e.function == "send_frame" for e in errors)
    assert c.alive
    echo(c, p, "ok after")
    assert closing_server.received == ["ok after"]
    wsx.stop(c)


def test_send_frame_to_another_client_from_a_callback(closing_server: ClosingServer) -> None:
    target, tp = start(closing_server.url)

    def on_cast(msg: Any, st: Probe) -> Any:
        wsx.send_frame(target, ("text", "relayed"))
        return ("ok", st)

    c, _ = start(closing_server.url, Probe(cast=on_cast))
    wsx.cast(c, "go")
    assert tp.wait("frame") == [("text", "relayed")]
    assert c.alive
    wsx.stop(c)
    wsx.stop(target)


def test_send_frame_after_server_vanished(wsx_server: Server, witness: Witness) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    assert wsx_server.reset() == 1  # RST
    errors: list[BaseException] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            wsx.send_frame(c, ("text", "x" * 1000))
        except (wsx.ConnError, wsx.NotConnectedError) as exc:
            errors.append(exc)
            if isinstance(exc, wsx.NotConnectedError) and not c.alive:
                break
        time.sleep(0.01)
    assert errors, "send_frame never failed after the server vanished"
    assert c.join(TIMEOUT)
    with pytest.raises(wsx.NotConnectedError):
        wsx.send_frame(c, ("text", "x"))
    assert p.of("disconnect")[0].reason[0] in ("error", "remote")


def test_send_frame_while_closing_is_not_connected(wsx_server: Server) -> None:
    wsx_server.stall()  # the client's close is read, not answered: it stays "closing"
    c, _ = start(wsx_server.url, Probe(cast=lambda m, st: ("close", st)))
    wsx.cast(c, "close")
    assert wait_until(lambda: c.connection_state == "closing")
    with pytest.raises(wsx.NotConnectedError) as info:
        wsx.send_frame(c, ("text", "late"))
    assert info.value.connection_state == "closing"
    assert wsx_server.wait_for_close() == (1000, "")
    assert wsx_server.close(1000) == 1  # the answer, at last
    assert c.join(TIMEOUT)
    assert c.exit_reason == ("local", "normal")


def test_cast_and_send_to_a_terminated_client_do_not_raise(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    assert wsx.stop(c)
    wsx.cast(c, "late")
    wsx.send(c, "late")
    time.sleep(0.05)
    assert "cast" not in p.names() and "info" not in p.names()
    assert wsx.stop(c) is True


# ======================================================================= stop
def test_stop_performs_the_close_handshake(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    t0 = time.monotonic()
    assert wsx.stop(c) is True
    assert time.monotonic() - t0 < 1.0
    assert wsx_server.closes == [(1000, "")]  # recorded before it is answered
    assert not c.alive
    assert c.exit_reason == "normal"
    assert p.of("terminate") == ["normal"]
    assert "disconnect" not in p.names()
    assert c.connection_state == "terminated"


def test_stop_with_reason_from_another_thread(closing_server: ClosingServer) -> None:
    c, p = start(closing_server.url)
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(wsx.stop(c, ("shutdown", "bye"), 5)))
    t.start()
    t.join(TIMEOUT)
    assert results == [True]
    assert p.of("terminate") == [("shutdown", "bye")]
    assert c.exit_reason == ("shutdown", "bye")
    assert closing_server.wait_close() == (1000, "")


def test_stop_from_own_callback(closing_server: ClosingServer) -> None:
    results: list[Any] = []

    def on_cast(msg: Any, st: Probe) -> Any:
        results.append(wsx.stop(st.client, "self-stop"))
        return ("ok", st)

    c, p = start(closing_server.url, Probe(cast=on_cast))
    wsx.cast(c, "stop yourself")
    assert c.join(TIMEOUT)
    assert results == [False]  # only started, not waited for
    assert p.of("terminate") == ["self-stop"]
    assert closing_server.wait_close() == (1000, "")


def test_stop_while_connecting(wsx_server: Server) -> None:
    wsx_server.handshake(delay=TIMEOUT * 2)  # the request is read, the answer held
    c, p = start(wsx_server.url, async_connect=True)
    wsx_server.wait_for(lambda: wsx_server.requests, what="the upgrade request")
    assert wsx.stop(c, "normal", timeout=TIMEOUT)
    assert p.of("terminate") == ["normal"]
    assert "connect" not in p.names()


def test_close_timeout_forces_the_close(wsx_server: Server, capfd: pytest.CaptureFixture[str]) -> None:
    wsx_server.stall()  # never answers, never closes
    c, p = start(wsx_server.url, debug=["trace"], close_timeout=0.5)
    t0 = time.monotonic()
    assert wsx.stop(c, timeout=TIMEOUT)
    elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 2.0
    assert wsx_server.wait_for_close() == (1000, "")
    assert wsx_server.closes == [(1000, "")]
    assert p.of("terminate") == ["normal"]
    err = capfd.readouterr().err
    assert "forcefully closed" in err
    assert "*DBG*" in err


def test_close_timeout_after_local_close_from_callback(wsx_server: Server,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    wsx_server.stall()  # never answers, never closes
    c, p = start(wsx_server.url, Probe(cast=lambda m, st: ("close", (4000, "bye"), st)),
                 debug=["trace"], close_timeout=0.3)
    wsx.cast(c, "close")
    assert c.join(TIMEOUT)
    assert p.of("disconnect")[0].reason == ("local", 4000, "bye")
    assert "forcefully closed" in capfd.readouterr().err
    assert wsx_server.wait_for_close() == (4000, "bye")


def test_server_close_frame_but_no_tcp_close(raw_server: Any) -> None:
    release = threading.Event()
    got: list[Any] = []

    def handler(sock: socket.socket) -> None:
        handshake(sock)
        sock.sendall(server_frame(OP_CLOSE, close_payload(4005, "later")))
        got.append(read_frame(sock))
        release.wait(TIMEOUT)

    server = raw_server(handler)
    c, p = start(server.url, close_timeout=0.3)
    t0 = time.monotonic()
    assert c.join(TIMEOUT)
    assert time.monotonic() - t0 < 2.0
    release.set()
    assert p.of("disconnect")[0].reason == ("remote", 4005, "later")
    assert got == [(OP_CLOSE, close_payload(4005))]


def test_protocol_error_and_server_never_closes(wsx_server: Server) -> None:
    wsx_server.stall()  # the client's close is read, never answered, TCP stays open
    c, p = start(wsx_server.url, close_timeout=0.3)
    wsx_server.wait_for_connections(1)
    wsx_server.send_protocol_violation("reserved_opcode")
    assert c.join(TIMEOUT)
    reason = p.of("disconnect")[0].reason
    assert reason[0] == "error" and reason[1].code == 1002
    assert wsx_server.wait_for_close()[0] == 1002


# ========================================================== max_message_size
def test_max_message_size_exceeded_closes_with_1009(wsx_server: Server) -> None:
    c, p = start(wsx_server.url, max_message_size=100)
    wsx_server.wait_for_connections(1)
    wsx_server.send(b"a" * 100)  # at the limit: fine
    wsx_server.send(b"b" * 101)
    assert c.join(TIMEOUT)
    assert p.of("frame") == [("binary", b"a" * 100)]
    assert wsx_server.wait_for_close()[0] == 1009
    reason = p.of("disconnect")[0].reason
    assert reason[0] == "error" and isinstance(reason[1], wsx.FrameError) and reason[1].code == 1009


def test_max_message_size_applies_to_fragmented_messages(wsx_server: Server) -> None:
    c, p = start(wsx_server.url, max_message_size=100)
    wsx_server.wait_for_connections(1)
    wsx_server.fragment(2)
    wsx_server.send("a" * 60 + "b" * 60)  # two frames of 60 bytes
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close()[0] == 1009
    assert p.of("frame") == []


def test_max_message_size_with_websockets_server(closing_server: ClosingServer) -> None:
    c, p = start(closing_server.url, max_message_size=1000)
    wsx.send_frame(c, ("text", "x" * 1000))
    assert p.wait("frame") == [("text", "x" * 1000)]
    wsx.send_frame(c, ("text", "y" * 1001))  # echoed back: too big for the client
    assert c.join(TIMEOUT)
    assert closing_server.wait_close()[0] == 1009


# ================================================================== threading
def test_send_frame_from_many_threads(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    n_threads, per_thread = 8, 200
    barrier = threading.Barrier(n_threads)
    failures: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                wsx.send_frame(c, ("text", f"{t}:{i}"))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not failures
    frames = p.wait("frame", n_threads * per_thread, timeout=20)
    assert len(frames) == n_threads * per_thread
    by_thread: dict[int, list[int]] = {t: [] for t in range(n_threads)}
    for _kind, text in frames:
        t, i = text.split(":")
        by_thread[int(t)].append(int(i))
    for t in range(n_threads):
        assert by_thread[t] == list(range(per_thread)), f"thread {t}: lost or reordered"
    assert len(p.threads) == 1  # every callback on the loop thread
    assert wsx.stop(c)


def test_cast_and_send_from_many_threads_keep_per_sender_order(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    n_threads, per_thread = 8, 300
    barrier = threading.Barrier(n_threads)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            if i % 2:
                wsx.cast(c, (t, i))
            else:
                wsx.send(c, (t, i))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert wait_until(lambda: len(p.log) >= 1 + n_threads * per_thread, timeout=20)
    by_thread: dict[int, list[int]] = {t: [] for t in range(n_threads)}
    for name, arg in p.log[1:]:
        assert name in ("cast", "info")
        t, i = arg
        assert name == ("cast" if i % 2 else "info")
        by_thread[t].append(i)
    for t in range(n_threads):
        assert by_thread[t] == list(range(per_thread))
    assert wsx.stop(c)


def test_many_threads_sending_while_the_server_closes(ws_server: Callable[..., Any], witness: Witness) -> None:
    # max_queue=None: while its handler waits in close(), a websockets server
    # with a full message queue stops reading and would never see our close
    # answer (the client then drops the connection after close_timeout).
    closing_server = ClosingServer(ws_server, max_queue=None)
    c, p = start(closing_server.url, close_timeout=2.0)
    stop_flag = threading.Event()
    unexpected: list[BaseException] = []

    def worker() -> None:
        while not stop_flag.is_set():
            try:
                wsx.send_frame(c, ("text", "spam"))
            except (wsx.NotConnectedError, wsx.ConnError):
                if not c.alive:
                    return
            except BaseException as exc:  # noqa: BLE001
                unexpected.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    time.sleep(0.1)
    wsx.send_frame(c, ("text", "close-me:4003:enough"))
    ok = c.join(TIMEOUT)
    stop_flag.set()
    assert ok, c.connection_state
    for th in threads:
        th.join(TIMEOUT)
    assert not unexpected, unexpected
    assert p.of("disconnect")[0].reason[0] in ("remote", "error")
    witness.assert_echo()


# ============================================================ loops and scale
@pytest.fixture
def user_loop() -> Iterator[tuple[wsx.Loop, threading.Thread]]:
    lp = wsx.Loop("user-loop")
    thread = threading.Thread(target=lp.run, name="user-loop-thread", daemon=True)
    thread.start()
    assert wait_until(lambda: lp.running)
    yield lp, thread
    lp.stop()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    lp.close()


def test_custom_loop_in_user_thread(echo_server: Any, user_loop: Any) -> None:
    lp, thread = user_loop
    c, p = start(echo_server.url, loop=lp)
    assert c.loop is lp
    echo(c, p, "on my loop")
    assert p.threads == {thread.ident}
    assert wsx.stop(c)


def test_start_on_a_loop_that_is_not_running(wsx_server: Server) -> None:
    lp = wsx.Loop("never-run")
    p = Probe()
    t0 = time.monotonic()
    with pytest.raises(wsx.ConnError, match="not running"):
        wsx.start(wsx_server.url, Rec, p, loop=lp, name="not-running-loop")
    assert time.monotonic() - t0 < 3
    # No client is left behind: the name is free, and running the loop later
    # does not bring the abandoned client to life.
    assert wsx.whereis("not-running-loop") is None
    thread = threading.Thread(target=lp.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)
        assert p.log == []
        assert wsx_server.attempts == 0  # not even a TCP connection
    finally:
        lp.stop()
        thread.join(TIMEOUT)
        lp.close()


def test_start_without_async_connect_from_a_callback_is_calling_self_error(
    closing_server: ClosingServer,
) -> None:
    out: list[Any] = []

    def on_cast(msg: Any, st: Probe) -> Any:
        try:
            wsx.start(closing_server.url, Rec, Probe())
        except wsx.CallingSelfError as exc:
            out.append(exc)
        child = wsx.start(closing_server.url, Rec, Probe(), async_connect=True)
        out.append(child)
        return ("ok", st)

    c, _ = start(closing_server.url, Probe(cast=on_cast))
    wsx.cast(c, "spawn")
    assert wait_until(lambda: len(out) == 2)
    assert isinstance(out[0], wsx.CallingSelfError)
    child = out[1]
    assert wait_until(lambda: child.connection_state == "open")
    wsx.stop(child)
    wsx.stop(c)


def test_start_link_from_callback_links_the_child(closing_server: ClosingServer) -> None:
    kids: list[Any] = []

    def on_cast(msg: Any, st: Probe) -> Any:
        kids.append(wsx.start_link(closing_server.url, Rec, Probe(cast=_raise), async_connect=True))
        return ("ok", st)

    parent, _ = start(closing_server.url, Probe(cast=on_cast))
    wsx.cast(parent, "spawn")
    assert wait_until(lambda: kids and kids[0].connection_state == "open")
    wsx.cast(kids[0], "crash")
    assert kids[0].join(TIMEOUT)
    assert parent.join(TIMEOUT)
    reason = parent.exit_reason
    assert reason[0] == "linked_exit" and reason[1] is kids[0]


def test_one_loop_many_clients(ws_server: Callable[..., Any], user_loop: Any) -> None:
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * n + 256
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        except (ValueError, OSError):
            pass
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * n + 128:
            pytest.skip("not enough file descriptors")
    lp, _thread = user_loop
    server = ws_server(backlog=2048)
    connected = threading.Semaphore(0)
    echoed: dict[int, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    class Many(wsx.WebSocket):
        def handle_connect(self, conn: Any, state: Any) -> Any:
            connected.release()
            return ("ok", state)

        def handle_cast(self, msg: Any, state: Any) -> Any:
            if msg == "go":
                return ("reply", ("text", f"m{state}"), state)
            return ("close", state)

        def handle_frame(self, frame: Any, state: Any) -> Any:
            with lock:
                echoed[state] = frame
                if len(echoed) == n:
                    done.set()
            return ("ok", state)

    t0 = time.monotonic()
    clients = [wsx.start(server.url, Many, i, loop=lp, async_connect=True) for i in range(n)]
    for _ in range(n):
        assert connected.acquire(timeout=30), "not every client connected"
    for c in clients:
        wsx.cast(c, "go")
    assert done.wait(30)
    assert all(echoed[i] == ("text", f"m{i}") for i in range(n))
    for c in clients:
        wsx.cast(c, "close")
    for c in clients:
        assert c.join(15)
    assert all(c.exit_reason == ("local", "normal") for c in clients)
    assert time.monotonic() - t0 < 30
    assert server.connections == n


def test_bad_client_does_not_affect_others_on_shared_loop(closing_server: ClosingServer,
                                                          wsx_server: Server) -> None:
    good = [start(closing_server.url) for _ in range(5)]
    bad = [start(wsx_server.url) for _ in range(3)]
    wsx_server.wait_for_connections(3)
    assert wsx_server.send_protocol_violation() == 3
    crasher, _ = start(closing_server.url, Probe(cast=_raise))
    wsx.cast(crasher, "die")
    for c, _ in bad:
        assert c.join(TIMEOUT)
    assert crasher.join(TIMEOUT)
    assert wsx_server.wait_for(lambda: len(wsx_server.closes) == 3, what="3 closes")
    assert [code for code, _ in wsx_server.closes] == [1002] * 3
    for i, (c, p) in enumerate(good):
        echo(c, p, f"good {i}")
        assert wsx.stop(c)


# ================================================================ debug/sys bits
def test_debug_trace_prints_events(echo_server: Any, capfd: pytest.CaptureFixture[str]) -> None:
    c, p = start(echo_server.url, debug=["trace"])
    echo(c, p, "traced")
    wsx.stop(c)
    err = capfd.readouterr().err
    assert "successfully connected" in err
    assert "sending frame: ('text', 'traced')" in err
    assert "received frame: ('text', 'traced')" in err
    assert "terminating: 'normal'" in err


def test_statistics_count_frames(echo_server: Any) -> None:
    c, p = start(echo_server.url, debug=["statistics"])
    echo(c, p, "count me")
    stats = wsx.sys.statistics(c)
    assert stats["frames_in"] >= 1 and stats["frames_out"] >= 1
    wsx.stop(c)


def test_bad_debug_flag_is_rejected(echo_server: Any) -> None:
    with pytest.raises(ValueError):
        wsx.start(echo_server.url, Rec, Probe(), debug=["nope"])


# ===================================================== unencodable text payloads
@pytest.mark.parametrize("answer, is_reply", [
    (lambda st: ("reply", ("text", "\ud800"), st), True),
    (lambda st: ("reply", ("ping", "\udfff"), st), True),
    (lambda st: ("close", (4000, "\ud800"), st), False),
])
def test_unencodable_reply_or_close_reason_ends_cleanly(closing_server: ClosingServer, witness: Witness,
                                                        answer: Any, is_reply: bool) -> None:
    p = Probe(cast=lambda msg, st: answer(st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT), "the client neither crashed nor went on"
    assert closing_server.wait_close() == (1011, "")
    [reason] = p.of("terminate")
    assert reason[0] == "error"
    assert isinstance(reason[1], wsx.FrameEncodeError if is_reply else UnicodeEncodeError)
    # A reply that cannot be sent goes to handle_disconnect (as in WebSockex);
    # a bad close reason from a callback is a crash.
    assert [s.reason for s in p.of("disconnect")] == ([reason] if is_reply else [])


def test_send_frame_with_unencodable_text_raises_a_frame_error(echo_server: Any) -> None:
    c, p = start(echo_server.url)
    for bad in [("text", "\ud800"), ("fragment", "text", "\ud800"), ("ping", "\ud800")]:
        with pytest.raises((wsx.FrameEncodeError, wsx.InvalidFrameError)):
            wsx.send_frame(c, bad)
    echo(c, p, "fine")
    wsx.stop(c)


# ================================================================ more edges
def test_handle_connect_crash_on_reconnect(closing_server: ClosingServer) -> None:
    def on_connect(conn: Any, st: Probe) -> Any:
        if len(st.of("connect")) == 2:
            raise Boom("second connect")
        return ("ok", st)

    p = Probe(connect=on_connect, disconnect=lambda status, st: ("reconnect", st))
    c, _ = start(closing_server.url, p)
    wsx.send_frame(c, ("text", "close-me"))
    assert c.join(TIMEOUT)
    assert isinstance(c.exit_reason[1], Boom)
    assert closing_server.wait_close(2) == (1011, "")
    assert len(p.of("disconnect")) == 1


def test_invalid_extra_header_fails_start(echo_server: Any) -> None:
    # Checked when the Conn is made, before any socket is opened.
    with pytest.raises(ValueError, match="header"):
        wsx.start(echo_server.url, Rec, Probe(), extra_headers={"Bad Name": "x"})
    with pytest.raises(ValueError, match="Sec-WebSocket-Key"):
        wsx.start(echo_server.url, Rec, Probe(), extra_headers={"Sec-WebSocket-Key": "x"})
    assert echo_server.connections == 0


def test_close_with_1000_and_reason_is_a_normal_exit(closing_server: ClosingServer) -> None:
    p = Probe(cast=lambda msg, st: ("close", (1000, "done"), st))
    c, _ = start(closing_server.url, p)
    wsx.cast(c, "x")
    assert c.join(TIMEOUT)
    assert c.exit_reason == ("local", 1000, "done")
    assert p.of("disconnect")[0].clean
    assert closing_server.wait_close() == (1000, "done")


def test_start_link_from_a_plain_thread_links_nothing(closing_server: ClosingServer) -> None:
    p = Probe(cast=_raise)
    c = wsx.start_link(closing_server.url, Rec, p)
    wsx.cast(c, "crash")
    assert c.join(TIMEOUT)
    assert isinstance(c.exit_reason[1], Boom)
    assert wsx.process.current_process() is None


def test_trap_exit_parent_gets_exit_message(closing_server: ClosingServer) -> None:
    kids: list[Any] = []

    class Trapper(Rec):
        trap_exit = True

    def on_cast(msg: Any, st: Probe) -> Any:
        kids.append(wsx.start_link(closing_server.url, Rec, Probe(cast=_raise), async_connect=True))
        return ("ok", st)

    parent, pp = start(closing_server.url, Probe(cast=on_cast), module=Trapper)
    wsx.cast(parent, "spawn")
    assert wait_until(lambda: kids and kids[0].connection_state == "open")
    wsx.cast(kids[0], "crash")
    [info] = pp.wait("info")
    assert info[0] == "EXIT" and info[1] is kids[0]
    assert isinstance(info[2][1], Boom)
    assert parent.alive
    echo(parent, pp, "parent lives")
    wsx.stop(parent)


def test_normal_exit_of_a_linked_child_does_not_stop_the_parent(closing_server: ClosingServer) -> None:
    kids: list[Any] = []

    def on_cast(msg: Any, st: Probe) -> Any:
        kids.append(wsx.start_link(closing_server.url, Rec, Probe(), async_connect=True))
        return ("ok", st)

    parent, _ = start(closing_server.url, Probe(cast=on_cast))
    wsx.cast(parent, "spawn")
    assert wait_until(lambda: kids and kids[0].connection_state == "open")
    assert wsx.stop(kids[0])
    time.sleep(0.05)
    assert parent.alive
    wsx.stop(parent)


def test_handle_attributes(echo_server: Any) -> None:
    c, _ = start(echo_server.url)
    assert c.module is Rec
    assert c.state_name == c.connection_state == "open"
    assert isinstance(c, wsx.Client)
    assert c.exit_reason is None
    assert c.join(0.01) is False
    wsx.stop(c)
    assert c.state_name == "terminated"


# ============================== replies to events before a close go out first
def test_pong_for_a_ping_before_the_close_is_sent_before_the_close_answer(wsx_server: Server) -> None:
    c, p = start(wsx_server.url)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(server_frame(OP_PING, b"p1") + server_frame(OP_CLOSE, close_payload(1000)))
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close() == (1000, "")
    assert [(f.kind, f.payload) for f in wsx_server.frames] == [
        ("pong", b"p1"), ("close", close_payload(1000))]
    assert p.of("disconnect")[0].reason == ("remote", 1000, "")


def test_reply_to_a_frame_before_a_protocol_error_is_sent_first(wsx_server: Server) -> None:
    p = Probe(frame=lambda f, st: ("reply", ("text", "answer"), st))
    c, _ = start(wsx_server.url, p)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(server_frame(OP_TEXT, b"question") + server_frame(0x3))
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close()[0] == 1002
    frames = wsx_server.frames
    assert frames[0] == ReceivedFrame("text", b"answer", True, 1)
    assert frames[1].kind == "close" and close_code(frames[1].payload)[0] == 1002


def test_close_from_a_callback_before_the_peer_close_keeps_its_code(wsx_server: Server) -> None:
    p = Probe(frame=lambda f, st: ("close", (4000, "mine"), st))
    c, _ = start(wsx_server.url, p)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(server_frame(OP_TEXT, b"bye") + server_frame(OP_CLOSE, close_payload(1000)))
    assert c.join(TIMEOUT)
    wsx_server.wait_for_disconnects(1)  # everything the client sent is recorded
    # one close frame only
    assert [(f.kind, f.payload) for f in wsx_server.frames] == [("close", close_payload(4000, "mine"))]
    assert p.of("disconnect")[0].reason == ("local", 4000, "mine")


def test_reconnect_with_a_url_string_keeps_the_options(ws_server: Any) -> None:
    first, second = ws_server(), ws_server()
    urls: list[str] = []

    class Hop(wsx.WebSocket):
        def handle_connect(self, conn: Any, state: Any) -> Any:
            urls.append((str(conn.url), conn.close_timeout))
            return ("ok", state)

        def handle_disconnect(self, status: Any, state: Any) -> Any:
            if state == "first":
                return ("reconnect", second.url, "second")
            return ("ok", state)

        def handle_frame(self, frame: Any, state: Any) -> Any:
            return ("close", state)

    c = wsx.start(first.url, Hop, "first", close_timeout=1.5)
    wsx.send_frame(c, ("text", "bye"))
    assert wait_until(lambda: len(urls) == 2)
    wsx.send_frame(c, ("text", "bye"))
    assert c.join(TIMEOUT)
    assert urls == [(first.url, 1.5), (second.url, 1.5)]
