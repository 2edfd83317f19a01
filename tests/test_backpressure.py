"""Backpressure and memory bounds over real sockets.

The write buffer of a connection is bounded by ``write_limit``: a
``send_frame`` from another thread waits for it to drain (at most
``send_timeout``), and replies produced by callbacks (``("reply", ...)``,
pongs) stop the client from reading until it drains. The peers are
``wsx.testing.Server`` (told to stop reading) and a raw TCP server that floods
and never reads; the parser's limits are checked over a socket too.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

import wsx
from conftest import accept_response, read_request, server_frame, wait_until
from wsx.core.frames import OP_PING, OP_TEXT
from wsx.errors import TimeoutExpired
from wsx.testing import Server

TIMEOUT = 5.0
LIMIT = 64 * 1024
CHUNK = 64 * 1024
READ_SIZE = 256 * 1024  # the loop's shared receive buffer: the most one read brings in


def handshake(sock: socket.socket) -> None:
    sock.sendall(accept_response(read_request(sock)))


class Recorder(wsx.WebSocket):
    """Echoes text and binary messages (``("reply", frame, state)``); records what it sees.

    The state is a dict; ``state["client"]`` (set by the test) lets the
    callbacks, which run on the loop thread, record the client's pending
    output at its peak, while the read is being handled.
    """

    def _peak(self, state: dict[str, Any]) -> None:
        client = state.get("client")
        if client is not None:
            state["peak"] = max(state.get("peak", 0), len(client.transport.wbuf))

    def handle_frame(self, frame: Any, state: dict[str, Any]) -> Any:
        self._peak(state)
        state["frames"] = state.get("frames", 0) + 1
        return ("reply", frame, state)

    def handle_ping(self, frame: Any, state: dict[str, Any]) -> Any:
        self._peak(state)
        state["pings"] = state.get("pings", 0) + 1
        return super().handle_ping(frame, state)

    def handle_disconnect(self, status: Any, state: dict[str, Any]) -> Any:
        state["disconnect"] = status
        return ("ok", state)


# ============================================================ send_frame waits
def stalled_server(wsx_server_factory: Any) -> Server:
    """A server that completes the handshake, then reads nothing until ``stop_reading(False)``.

    It records what it reads then, and does not echo (the client would answer).
    """
    server: Server = wsx_server_factory(echo=False)
    server.stop_reading()
    return server


def binaries(server: Server) -> list[bytes]:
    return [f.payload for f in server.frames if f.kind == "binary"]


def test_send_frame_waits_then_times_out_and_the_frame_is_not_sent(
        wsx_server_factory: Any) -> None:
    peer = stalled_server(wsx_server_factory)
    state: dict[str, Any] = {}
    c = wsx.start(peer.url, Recorder, state, write_limit=LIMIT, send_timeout=0.3)
    payload = b"x" * CHUNK
    sent = 0
    peak = 0
    error: TimeoutExpired | None = None
    for _ in range(5000):  # the kernel's buffers fill first; then ours
        try:
            wsx.send_frame(c, ("binary", payload))
        except TimeoutExpired as exc:
            error = exc
            break
        sent += 1
        peak = max(peak, len(c.transport.wbuf))
    assert error is not None, "send_frame never waited: the write buffer is unbounded"
    assert error.option == "send_timeout" and error.seconds == 0.3
    assert isinstance(error, wsx.WSXError) and isinstance(error, TimeoutError)
    assert f"write_limit={LIMIT}" in str(error) and "send_timeout=0.3 s" in str(error)
    # At most the limit plus the one frame queued last (frames are never split).
    assert peak <= LIMIT + CHUNK + 14, peak
    assert c.alive and c.connection_state == "open"
    # Once the server reads, sending goes on; the timed-out frame was dropped.
    peer.stop_reading(False)
    wait_until(lambda: not c.transport.wbuf, timeout=TIMEOUT * 4, what="the backlog to drain")
    wsx.send_frame(c, ("text", "end"))
    peer.wait_for_message("end", timeout=TIMEOUT * 2)
    got = binaries(peer)
    assert len(got) == sent and all(f == payload for f in got)
    assert peer.messages[-1] == ("text", "end")
    wsx.stop(c)


def test_a_waiting_send_frame_goes_out_when_the_buffer_drains(wsx_server_factory: Any) -> None:
    peer = stalled_server(wsx_server_factory)
    c = wsx.start(peer.url, Recorder, {}, write_limit=LIMIT, send_timeout=None)
    count = 400  # 25 MiB: more than the kernel buffers hold
    progress = [0]
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            for i in range(count):
                wsx.send_frame(c, ("binary", i.to_bytes(4, "big") * (CHUNK // 4)))
                progress[0] = i + 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    wait_until(lambda: c.transport.waiters, what="the sender waiting for the buffer to drain")
    stuck_at = progress[0]
    time.sleep(0.3)
    assert thread.is_alive() and progress[0] == stuck_at, "send_frame did not wait"
    assert len(c.transport.wbuf) <= LIMIT + CHUNK + 14
    peer.stop_reading(False)
    thread.join(TIMEOUT * 4)
    assert not thread.is_alive() and errors == []
    wsx.send_frame(c, ("text", "end"))
    peer.wait_for_message("end", timeout=TIMEOUT * 2)
    got = [f[:4] for f in binaries(peer)]
    assert got == [i.to_bytes(4, "big") for i in range(count)], "frames lost or reordered"
    wsx.stop(c)


def test_a_waiting_send_frame_fails_when_the_connection_ends(wsx_server: Server) -> None:
    wsx_server.stop_reading()
    state: dict[str, Any] = {}
    c = wsx.start(wsx_server.url, Recorder, state, write_limit=LIMIT, send_timeout=None)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            while True:
                wsx.send_frame(c, ("binary", b"y" * CHUNK))
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    wait_until(lambda: c.transport.waiters, what="the sender waiting")
    assert wsx_server.reset() == 1  # with unread data
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the waiting sender was not released"
    assert len(errors) == 1 and isinstance(errors[0], (wsx.ConnError, wsx.NotConnectedError))
    assert c.join(TIMEOUT)
    assert state["disconnect"].error is not None or state["disconnect"].reason[0] == "remote"


def test_a_frame_larger_than_the_limit_is_sent_whole(wsx_server: Server) -> None:
    received: list[Any] = []

    class Echo(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            received.append(frame)
            return ("ok", state)

    c = wsx.start(wsx_server.url, Echo, None, write_limit=1024)
    big = bytes(range(256)) * 1024
    wsx.send_frame(c, ("binary", big))
    wsx.send_frame(c, ("binary", big))
    wait_until(lambda: len(received) == 2)
    assert received == [("binary", big), ("binary", big)]
    assert [(f.kind, f.fin) for f in wsx_server.frames] == [("binary", True)] * 2  # whole
    assert wsx_server.messages == [("binary", big)] * 2
    wsx.stop(c)


# ======================================================== the reader pauses
def flooding_server(raw_server: Any, frame: bytes, report: dict[str, Any]) -> Any:
    """Sends ``frame`` over and over and never reads; notes when its sends block."""

    def handler(sock: socket.socket) -> None:
        handshake(sock)
        batch = frame * max(1, 65536 // len(frame))
        sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 200 * 1024 * 1024:
                sock.sendall(batch)
                sent += len(batch)
        except TimeoutError:
            report["blocked_after"] = sent  # the client stopped reading
        except OSError:
            report["error_after"] = sent
        report["done"] = True
        report["release"].wait(TIMEOUT * 2)

    report["release"] = threading.Event()
    return raw_server(handler)


@pytest.mark.parametrize("kind", ["messages", "pings"])
def test_replies_to_a_peer_that_does_not_read_stay_bounded(raw_server: Any, kind: str) -> None:
    # The server floods messages (echoed back with ("reply", ...)) or pings
    # (answered with pongs by the default handle_ping) and reads nothing.
    # The client's output fills the kernel buffers, then its write buffer;
    # over the limit it stops reading, so the server's sends block and the
    # buffer stays bounded.
    frame = server_frame(OP_TEXT, b"m" * 100) if kind == "messages" else server_frame(
        OP_PING, b"p" * 125)
    report: dict[str, Any] = {}
    server = flooding_server(raw_server, frame, report)
    state: dict[str, Any] = {}
    c = wsx.start(server.url, Recorder, state, write_limit=LIMIT, close_timeout=0.5)
    state["client"] = c
    wait_until(lambda: report.get("done"), timeout=TIMEOUT * 4, what="the server to block")
    assert "blocked_after" in report, report
    assert c.alive and c.connection_state == "open"
    assert c.transport.read_paused
    handled = state.get("frames", 0) + state.get("pings", 0)
    assert handled > 0
    # Bounded: the limit, plus the replies to one read's worth of input.
    bound = LIMIT + 2 * READ_SIZE
    assert state["peak"] <= bound, (state["peak"], bound)
    assert len(c.transport.wbuf) <= bound
    report["release"].set()
    wsx.stop(c, timeout=TIMEOUT)


# ===================================================== parser limits, on a wire
@pytest.mark.parametrize("length, code", [((1 << 63) - 1, 1009), (1 << 63, 1002)])
def test_a_huge_frame_length_is_refused_before_buffering(wsx_server: Server, length: int,
                                                        code: int) -> None:
    state: dict[str, Any] = {}
    c = wsx.start(wsx_server.url, Recorder, state)
    wsx_server.wait_for_connections(1)
    wsx_server.send_raw(bytes((0x82, 127)) + struct.pack("!Q", length) + b"z" * 1000)
    assert c.join(TIMEOUT)
    assert wsx_server.wait_for_close()[0] == code
    status = state["disconnect"]
    assert isinstance(status.error, wsx.FrameError) and status.error.code == code
    assert status.code == code and not status.clean
    assert state.get("frames", 0) == 0


# =================================================================== options
@pytest.mark.parametrize("option, value", [
    ("write_limit", -1), ("write_limit", 1.5), ("write_limit", True), ("write_limit", "1"),
    ("send_timeout", 0), ("send_timeout", -2), ("send_timeout", "3"),
])
def test_backpressure_options_are_validated(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{option} must be .*{value!r}"):
        wsx.Conn("ws://127.0.0.1:1/", **{option: value})


def test_backpressure_option_defaults_and_start_options(wsx_server: Server) -> None:
    conn = wsx.Conn(wsx_server.url)
    assert (conn.write_limit, conn.send_timeout) == (1 << 20, 30.0)
    c = wsx.start(wsx_server.url, Recorder, {}, write_limit=0, send_timeout=None)
    assert (c.conn.write_limit, c.conn.send_timeout) == (0, None)
    wsx.send_frame(c, ("text", "with a zero limit, any backlog is over it"))
    assert wsx_server.wait_for_message("with a zero limit, any backlog is over it")
    wsx.stop(c)
