"""Hostile servers and hostile user code, over real sockets on 127.0.0.1.

Each test here attacks one way a peer or a callback module can break a
client: a callback raising a ``BaseException``, a flood of empty fragments, a
slow or stalled server during a stop, connection attempts that fail at once,
a memoryview of wide items, a reset after the close handshake, a proxy with a
malformed status line, header values with control characters, ``join`` from
a callback, a compressed message at the size limit, a server that is down.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from typing import Any

import pytest

import wsx
import wsx.core.frames as frames
from conftest import accept_response, read_frame, read_request, server_frame, wait_until
from test_client import ClosingServer, Probe, Rec, close_payload, start
from wsx import ProxyError
from wsx.errors import CallingSelfError, InvalidFrameError, TimeoutExpired

TIMEOUT = 5.0


def answer_close(sock: socket.socket) -> None:
    """Read the client's frames up to its close frame and answer it (then the server closes)."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return
        if frame[0] == 8:
            sock.sendall(server_frame(8, frame[1][:2]))
            return


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (RST), not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ===================================== 1. a callback raising a BaseException
class Raiser(Rec):
    """Raises ``state.data["exc"]`` (built by a factory) on the text frame "boom"."""

    def handle_frame(self, frame: Any, st: Probe) -> Any:
        st.add("frame", frame)
        if frame == ("text", "boom"):
            raise st.data["exc"]()
        return ("ok", st)


def cancelled_by_asyncio_run() -> BaseException:
    """The CancelledError that ``asyncio.run()`` raises when its task is cancelled."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    try:
        asyncio.run(main())
    except BaseException as exc:  # noqa: BLE001 - the exception under test
        return exc
    raise AssertionError("asyncio.run() did not raise")


class Custom(BaseException):
    pass


@pytest.mark.parametrize("factory", [
    cancelled_by_asyncio_run, KeyboardInterrupt, GeneratorExit, Custom, SystemExit,
], ids=["CancelledError", "KeyboardInterrupt", "GeneratorExit", "BaseException", "SystemExit"])
def test_a_callback_raising_any_base_exception_crashes_only_its_client(ws_server: Any,
                                                                       factory: Any) -> None:
    server = ClosingServer(ws_server)
    probe = Probe()
    probe.data["exc"] = lambda: cancelled_by_asyncio_run() if factory is cancelled_by_asyncio_run \
        else factory()
    victim, _ = start(server.url, probe, Raiser)
    other, other_probe = start(server.url)
    wsx.send_frame(victim, ("text", "boom"))
    assert victim.join(TIMEOUT), "the raising client did not end"
    kind, exc = victim.exit_reason
    expected = asyncio.CancelledError if factory is cancelled_by_asyncio_run else factory
    assert kind == "error" and type(exc) is expected
    assert probe.of("terminate") == [victim.exit_reason]
    assert server.wait_close(1)[0] == 1011
    # The loop thread and the other client on it go on.
    wsx.send_frame(other, ("text", "still here"))
    assert other_probe.wait("frame") == [("text", "still here")]
    assert wsx.stop(other, timeout=3)


def test_the_loop_survives_any_base_exception_from_a_loop_callback() -> None:
    loop = wsx.Loop("hardening")
    loop.start_thread()
    try:
        ran = threading.Event()
        for exc in (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit, Custom):
            def boom(exc: type[BaseException] = exc) -> None:
                raise exc()
            loop.call_soon_threadsafe(boom)
        loop.call_soon_threadsafe(ran.set)
        assert ran.wait(TIMEOUT), "the loop stopped running callbacks"
        assert loop.running
    finally:
        loop.stop()


def test_ctrl_c_in_a_callback_of_a_loop_run_in_the_main_thread_stops_it(echo_server: Any) -> None:
    assert threading.current_thread() is threading.main_thread()
    loop = wsx.Loop("main-thread")
    probe = Probe()
    probe.data["exc"] = KeyboardInterrupt
    client = wsx.start(echo_server.url, Raiser, probe, loop=loop, async_connect=True)

    def kick() -> None:
        if client.connection_state == "open":
            wsx.send_frame(client, ("text", "boom"))
        else:
            loop.call_later(0.01, kick)

    loop.call_later(0.01, kick)
    guard = loop.call_later(10, loop.stop)  # a bound wait, should run() not raise
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run()
    finally:
        guard.cancel()
    assert not client.alive
    kind, exc = client.exit_reason
    assert kind == "error" and type(exc) is KeyboardInterrupt
    loop.close()


def test_a_supervisor_whose_start_function_raises_cancelled_error_can_be_stopped(
        ws_server: Any) -> None:
    server = ws_server()
    calls: list[int] = []

    def start_child() -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise asyncio.CancelledError()
        return wsx.start_link(server.url, Rec, Probe())

    sup = wsx.Supervisor.start_link([{"id": "a", "start": (start_child, ())}],
                                    max_restarts=3, max_seconds=60)
    child = sup.which_children()[0][1]
    wsx.stop(child, "crash", timeout=TIMEOUT)  # abnormal: restarted, which raises
    assert sup.join(TIMEOUT), "the supervisor is stuck"
    assert sup.exit_reason == ("shutdown", "reached_max_restart_intensity")
    assert len(calls) >= 2


# ======================================== 2. memory of fragmented messages
def fragment_flood(count: int, limit: int | None) -> tuple[Any, Any, int, int]:
    """A 1-byte text frame, ``count`` empty continuations, a ping, the final frame.

    Returns the client's exit reason (if it ended), frames and the traced
    memory (current, peak) in bytes while the flood was held.
    """
    done = threading.Event()

    def handle(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        sock.sendall(server_frame(1, b"x", fin=False))
        sock.sendall(server_frame(0, b"", fin=False) * count)
        sock.sendall(server_frame(9, b"flood sent"))
        done.wait(60)
        try:
            sock.sendall(server_frame(0, b"y", fin=True))
            time.sleep(0.5)
        except OSError:
            pass

    from conftest import RawServer

    raw = RawServer(handle)
    try:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        client, probe = start(raw.url, max_message_size=limit)
        wait_until(lambda: probe.of("ping") or not client.alive, timeout=120,
                   what="the flood was read")
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        done.set()
        if client.alive:
            probe.wait("frame", timeout=TIMEOUT)
            wsx.stop(client)
        return client.exit_reason, probe.of("frame"), current - base, peak - base
    finally:
        tracemalloc.stop()
        done.set()
        raw.close()


def test_empty_fragments_do_not_grow_the_client() -> None:
    count = 300_000  # 600 kB on the wire; before, 8 bytes of list per fragment
    reason, got, current, peak = fragment_flood(count, None)
    assert got == [("text", "xy")], reason
    assert current < 1 << 20, f"{current / 2**20:.1f} MiB held for a 2-byte message"


def test_a_flood_of_fragments_fails_with_1009_under_the_limit() -> None:
    # Each frame of a fragmented message counts against max_message_size.
    reason, got, _, _ = fragment_flood(100_000, 64 * 1024)
    assert got == []
    kind, error = reason
    assert kind == "error" and error.code == 1009, reason
    assert "frames" in str(error)


def test_a_message_in_tiny_fragments_takes_about_its_size(raw_server: Any) -> None:
    size = 1 << 20
    body = os.urandom(size // 2).hex().encode()  # text

    wire = b"".join(server_frame(1 if i == 0 else 0, body[i:i + 2], fin=i + 2 >= size)
                    for i in range(0, size, 2))  # made before memory is traced

    def handle(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        sock.sendall(wire)
        time.sleep(2)

    server = raw_server(handle)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        client, probe = start(server.url)
        (frame,) = probe.wait("frame", timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frame == ("text", body.decode())
    # The frames of one read come and go; the message itself is one buffer.
    # Before, one object per 2-byte fragment: 26x the message.
    assert peak - base < 14 * size, f"peak {(peak - base) / size:.1f}x the message"
    wsx.stop(client)


# ===================================================== 3. stop() and the backlog
def slow_reader(go: threading.Event, pause: float, got: list[tuple[int, bytes]],
                closed: threading.Event) -> Any:
    """A server that reads nothing for ``pause`` s (or until ``go``), then everything."""
    def handle(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(accept_response(read_request(sock)))
        go.wait(pause)
        while True:
            frame = read_frame(sock)
            if frame is None:
                break
            got.append(frame)
            if frame[0] == 8:
                sock.sendall(server_frame(8, frame[1][:2]))
                break
        closed.set()
    return handle


def test_stop_writes_every_accepted_frame_before_the_close(raw_server: Any) -> None:
    got: list[tuple[int, bytes]] = []
    closed = threading.Event()
    server = raw_server(slow_reader(threading.Event(), 2.5, got, closed))
    client, probe = start(server.url, close_timeout=1.0, write_limit=16 << 20)
    probe.wait("connect")
    messages = [bytes([i]) * 65536 for i in range(75)]
    for m in messages:
        wsx.send_frame(client, ("binary", m))
    assert wsx.stop(client, timeout=20) is True
    assert closed.wait(TIMEOUT)
    assert [p for op, p in got if op == 2] == messages
    assert got[-1][0] == 8
    assert client.exit_reason == "normal"


def test_a_stop_that_drops_accepted_frames_says_so(raw_server: Any) -> None:
    got: list[tuple[int, bytes]] = []
    closed = threading.Event()
    go = threading.Event()
    server = raw_server(slow_reader(go, 30, got, closed))  # reads nothing in time
    client, probe = start(server.url, close_timeout=0.5, send_timeout=1.0,
                          write_limit=16 << 20)
    probe.wait("connect")
    for i in range(75):
        wsx.send_frame(client, ("binary", bytes([i]) * 65536))
    started = time.monotonic()
    stopped = wsx.stop(client, timeout=10)
    go.set()
    assert stopped is False
    assert time.monotonic() - started < 5
    assert not client.alive
    kind, error = client.exit_reason
    assert kind == "error" and isinstance(error, TimeoutExpired), client.exit_reason
    assert error.option == "send_timeout" and "were not sent" in str(error)
    assert probe.of("terminate") == [client.exit_reason]


# ===================================== 4. attempts that fail at once, reconnects
class Retry(Rec):
    """Reconnects at once until ``data["attempts"]`` failures, then gives up."""

    def handle_disconnect(self, status: Any, st: Probe) -> Any:
        st.add("disconnect", status.reason)
        if status.attempt_number >= st.data["attempts"]:
            return ("ok", st)
        return ("reconnect", st)


def test_reconnecting_after_attempts_that_fail_at_once_does_not_recurse(
        echo_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    conn = wsx.Conn(echo_server.url, proxy=True, min_reconnect_interval=0)
    monkeypatch.setenv("http_proxy", "http://[::1")  # malformed: each attempt fails in start()
    probe = Probe()
    probe.data["attempts"] = 3000  # far deeper than the recursion limit
    client = wsx.start(conn, Retry, probe, handle_initial_conn_failure=True, async_connect=True)
    assert client.join(60), f"{len(probe.of('disconnect'))} attempts so far"
    assert len(probe.of("disconnect")) == 3000
    assert client.exit_reason[0] == "error"
    assert "RecursionError" not in repr(client.exit_reason)


def test_a_client_reconnecting_in_a_loop_can_be_stopped(free_port: int) -> None:
    probe = Probe()
    probe.data["attempts"] = 10**9
    client, _ = start(f"ws://127.0.0.1:{free_port}/", probe, Retry,
                      handle_initial_conn_failure=True, async_connect=True,
                      min_reconnect_interval=0)
    wait_until(lambda: len(probe.of("disconnect")) > 100)
    assert wsx.stop(client, timeout=3)
    assert not client.alive


def test_immediate_reconnects_to_a_server_that_is_down_are_paced(
        free_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wsx")
    probe = Probe()
    probe.data["attempts"] = 10**9
    client, _ = start(f"ws://127.0.0.1:{free_port}/", probe, Retry,
                      handle_initial_conn_failure=True, async_connect=True)  # floor 0.1 s
    time.sleep(1.5)
    attempts = len(probe.of("disconnect"))
    assert wsx.stop(client, timeout=3)
    assert 5 <= attempts <= 17, attempts  # about 1.5 / 0.1, not thousands
    warnings = [r for r in caplog.records if "attempts in a row failed" in r.getMessage()]
    assert len(warnings) == 1
    assert "reconnect_after" in warnings[0].getMessage()


def test_min_reconnect_interval_is_checked() -> None:
    for bad in (-1, "1", None, True):
        with pytest.raises(ValueError, match="min_reconnect_interval"):
            wsx.Conn("ws://127.0.0.1:1/", min_reconnect_interval=bad)


# ============================================== 5. memoryviews of wide items
def test_a_memoryview_of_wide_items_is_sent_as_its_bytes(echo_server: Any) -> None:
    data = array.array("i", range(1000))
    client, probe = start(echo_server.url)
    probe.wait("connect")
    wsx.send_frame(client, ("binary", memoryview(data)))
    wsx.send_frame(client, ("binary", memoryview(array.array("d", [1.5] * 300))))
    got = probe.wait("frame", 2)
    assert got == [("binary", data.tobytes()), ("binary", array.array("d", [1.5] * 300).tobytes())]
    assert wsx.stop(client)


def test_a_strided_memoryview_is_an_invalid_frame(echo_server: Any) -> None:
    client, probe = start(echo_server.url)
    probe.wait("connect")
    strided = memoryview(b"abcdefgh")[::2]
    with pytest.raises(InvalidFrameError, match="contiguous"):
        wsx.send_frame(client, ("binary", strided))
    wsx.send_frame(client, ("text", "after"))  # the connection is intact
    assert probe.wait("frame") == [("text", "after")]
    assert wsx.stop(client)


def test_both_encoders_agree_on_any_buffer() -> None:
    key = b"\x01\x02\x03\x04"
    wide = memoryview(array.array("i", range(100)))
    two_d = memoryview(bytearray(range(64))).cast("B", (8, 8))
    for payload in (wide, two_d, memoryview(b"x" * 70000).cast("H")):
        expected = frames.py_encode_frame(2, bytes(payload), mask_key=key)
        assert frames.py_encode_frame(2, payload, mask_key=key) == expected
        assert frames.encode_frame(2, payload, mask_key=key) == expected
    for encode in (frames.py_encode_frame, frames.encode_frame):
        with pytest.raises(InvalidFrameError, match="contiguous"):
            encode(2, memoryview(b"abcdef")[::2], mask_key=key)


# ============================== 6. the close handshake, then a TCP reset
@pytest.mark.parametrize("code, text", [(4001, "go away"), (1000, "")])
def test_a_reset_after_the_close_handshake_reports_the_peers_close(
        raw_server: Any, code: int, text: str) -> None:
    def handle(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        sock.sendall(server_frame(8, close_payload(code, text)))
        while True:  # the client's answering close
            frame = read_frame(sock)
            if frame is None or frame[0] == 8:
                break
        reset(sock)

    server = raw_server(handle)
    client, probe = start(server.url)
    (status,) = probe.wait("disconnect")
    assert status.reason == ("remote", code, text)
    assert client.join(TIMEOUT)
    assert client.exit_reason == ("remote", code, text)


# =================================== 7. proxies with malformed status lines
@pytest.mark.parametrize("status", [
    "HTTP/1.1 2\u00b2\u00b2 OK", "HTTP/1.9 200 OK", "HTTP/2 200", "HTTP/1.1 20 OK",
    "HTTP/1.1 +20 OK", "ICY 200 OK", "HTTP/1.1 2\u0662\u0660 OK",
])
def test_a_malformed_proxy_status_line_fails_at_once(raw_server: Any, status: str) -> None:
    def handle(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(status.encode() + b"\r\n\r\n")
        time.sleep(2)

    proxy = raw_server(handle)
    started = time.monotonic()
    with pytest.raises(ProxyError, match="malformed"):
        wsx.start_link("ws://example.test/", Rec, Probe(),
                       proxy=f"http://127.0.0.1:{proxy.port}", socket_connect_timeout=4)
    assert time.monotonic() - started < 2.0  # not the 4 s deadline


# ========================================================== weak points
@pytest.mark.parametrize("value", ["a\x0bb", "a\x7fb", "a\x85b", "a\x01b", "a\x1fb"])
def test_header_values_with_control_characters_fail_before_any_socket(
        raw_server: Any, value: str) -> None:
    server = raw_server(lambda sock: None)
    with pytest.raises(ValueError, match="control character"):
        wsx.start_link(server.url, Rec, Probe(), extra_headers={"X-Test": value})
    with pytest.raises(ValueError, match="control character"):
        wsx.Conn(server.url, origin=value)
    time.sleep(0.2)
    assert server.connections == 0


def test_bad_subprotocols_fail_when_the_conn_is_made() -> None:
    with pytest.raises(ValueError, match="not a token"):
        wsx.Conn("ws://127.0.0.1:1/", subprotocols=["a b"])


def test_join_from_a_callback_raises_calling_self_error(echo_server: Any) -> None:
    def join_self(msg: Any, st: Probe) -> Any:
        started = time.monotonic()
        try:
            st.client.join(3)
        except CallingSelfError as exc:
            st.data["error"] = exc
        st.data["waited"] = time.monotonic() - started
        return ("ok", st)

    client, probe = start(echo_server.url, Probe(cast=join_self))
    probe.wait("connect")
    wsx.cast(client, "join")
    probe.wait("cast")
    wait_until(lambda: "waited" in probe.data)
    assert isinstance(probe.data.get("error"), CallingSelfError)
    assert probe.data["waited"] < 1.0  # not the 3 s timeout
    assert wsx.stop(client)


def test_a_compressed_message_at_the_limit_is_accepted(ws_server: Any) -> None:
    size = (1 << 20) - 1
    body = os.urandom(size)  # does not compress: the frame is larger than the message

    async def handler(ws: Any) -> None:
        await ws.send(body)
        await ws.wait_closed()

    server = ws_server(handler)
    client, probe = start(server.url, max_message_size=1 << 20)
    (frame,) = probe.wait("frame", timeout=20)
    assert frame == ("binary", body)
    assert client.conn.extensions and client.conn.extensions[0][0] == "permessage-deflate"
    assert wsx.stop(client)


def deflate_server_sends(raw_server: Any, frame: bytes) -> Any:
    """A server that accepts permessage-deflate, sends ``frame`` and answers the close."""

    def handle(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock),
                                     "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        sock.sendall(frame)
        answer_close(sock)

    return raw_server(handle)


def assert_fails_with_1009(server: Any) -> None:
    client, probe = start(server.url, max_message_size=1000)
    assert client.join(TIMEOUT)
    kind, error = client.exit_reason
    assert kind == "error" and error.code == 1009
    assert probe.of("frame") == []


def test_an_uncompressed_message_over_the_limit_fails_with_1009_when_deflate_is_on(
        raw_server: Any) -> None:
    # RSV1 clear: not compressed.
    assert_fails_with_1009(deflate_server_sends(raw_server, server_frame(2, b"z" * 1001)))


def test_a_compressed_message_over_the_limit_fails_with_1009(raw_server: Any) -> None:
    deflater = zlib.compressobj(wbits=-15)
    wire = deflater.compress(b"\x00" * 5000) + deflater.flush(zlib.Z_SYNC_FLUSH)
    assert wire.endswith(b"\x00\x00\xff\xff") and len(wire) < 1000
    assert_fails_with_1009(deflate_server_sends(raw_server, server_frame(2, wire[:-4], rsv=0x40)))


def test_wss_to_a_plain_server_fails_at_once_in_one_sentence(raw_server: Any) -> None:
    from wsx.tools.echo_server import EchoServer

    def http_400(sock: socket.socket) -> None:
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        time.sleep(1)

    plain = raw_server(http_400)
    echo = EchoServer(port=0).start()
    try:
        for url in (f"wss://127.0.0.1:{plain.port}/", echo.url.replace("ws://", "wss://")):
            started = time.monotonic()
            with pytest.raises(wsx.ConnError, match="does not speak TLS") as info:
                wsx.start_link(url, Rec, Probe())
            assert time.monotonic() - started < 2.0, url  # not socket_connect_timeout
            assert "use ws://" in str(info.value) and "SSL" not in str(info.value)
            assert isinstance(info.value.original, OSError)
    finally:
        echo.stop()
