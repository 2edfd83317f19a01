"""How received bytes become callbacks: the compiled read path and the Python one agree.

When wsx is built, the loop calls the compiled reader (``wsx.process._reader``) for
a readable socket; it handles whole text and binary messages itself and
passes everything else to the Python code (``Reader``,
``Protocol.receive_frames``, ``Dispatcher.dispatch``). These tests send reads
that mix both kinds of frames in one TCP segment, and check what the
callback module sees and what the server receives: the same whichever path
runs (the suite also runs with ``WSX_NO_EXTENSIONS=1``, the Python path only).
"""

from __future__ import annotations

import inspect
import socket
import struct
import threading
import time
from typing import Any

import pytest

import wsx
import wsx.core.frames
import wsx.io.loop
from conftest import (
    accept_response,
    read_frame,
    read_request,
    read_until_close,
    server_frame,
    wait_until,
)

COMPILED = wsx.core.frames.CODEC_IMPLEMENTATION == "cython"


class Recorder(wsx.WebSocket):
    """Records every callback; replies to messages as ``state["reply"]`` says."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        state["seen"].append(frame)
        action = state["reply"](frame)
        if action is None:
            return ("ok", state)
        if action == "close":
            return ("close", state)
        if action == "raise":
            raise RuntimeError("handler failed on purpose")
        if action == "bad":
            return ("what", "is", "this", state)
        return ("reply", action, state)

    def handle_ping(self, frame: Any, state: Any) -> Any:
        state["seen"].append(frame)
        return ("reply", ("pong", frame[1] if isinstance(frame, tuple) else b""), state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state["disconnect"].append(status["reason"])
        return ("ok", state)


def echo_reply(frame: Any) -> Any:
    kind, data = frame
    if kind == "text":
        return ("text", "re:" + data)
    return ("binary", b"re:" + data)


def new_state(reply: Any = echo_reply) -> dict[str, Any]:
    return {"seen": [], "disconnect": [], "reply": reply}


def serve_one_read(segment: bytes, got: list[tuple[int, bytes]], done: threading.Event,
                   opened: threading.Event) -> Any:
    """A raw server: the 101, then (once the client is open) ``segment`` in one send."""

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        opened.wait(5)
        time.sleep(0.05)  # the 101 and the frames in different reads
        sock.sendall(segment)
        sock.settimeout(5)
        try:
            read_until_close(sock, got)
        finally:
            done.set()

    return handler


def run_read(raw_server: Any, segment: bytes, state: dict[str, Any]) -> tuple[Any, list[Any]]:
    got: list[tuple[int, bytes]] = []
    done, opened = threading.Event(), threading.Event()
    server = raw_server(serve_one_read(segment, got, done, opened))
    client = wsx.start(server.url, Recorder, state)
    opened.set()
    assert done.wait(5), "the server did not get a close frame"
    return client, got


def close_code(frame: tuple[int, bytes]) -> int:
    assert frame[0] == 0x8, frame
    return int(struct.unpack("!H", frame[1][:2])[0])


def test_the_compiled_reader_and_loop_are_used_when_built(echo_server: Any) -> None:
    client = wsx.start_link(echo_server.url, Recorder, new_state(lambda frame: None))
    try:
        if COMPILED:
            assert type(client.read_path).__name__ == "FastReader"
            assert type(client.loop._schedule).__module__ == "wsx.io._schedule"
        else:
            assert client.read_path is client.reader
            assert type(client.loop._schedule).__module__ == "wsx.io.schedule"
        wsx.send_frame(client, ("text", "hello"))
        wait_until(lambda: wsx.sys.get_state(client)["seen"], what="the echo")
        assert wsx.sys.get_state(client)["seen"] == [("text", "hello")]
    finally:
        wsx.stop(client)


def _c_fields(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items()
            if inspect.isgetsetdescriptor(value) or inspect.ismemberdescriptor(value)}


@pytest.mark.skipif(not COMPILED, reason="the Python build keeps every attribute in __dict__")
def test_the_attributes_the_compiled_reader_reads_are_c_fields(echo_server: Any) -> None:
    # The compiled reader reads these as C fields. The transport, the
    # dispatcher and the protocol are compiled classes without any instance
    # dictionary: no attribute can hide a field.
    client = wsx.start_link(echo_server.url, Recorder, new_state(lambda frame: None),
                            compress=False)
    try:
        protocol = client.dispatcher.protocol
        for obj in (client.transport, client.dispatcher, protocol):
            assert not hasattr(obj, "__dict__"), type(obj)
        assert {"sock", "read_paused", "corked"} <= _c_fields(type(client.transport))
        assert {"hold", "dbg", "inbox", "protocol"} <= _c_fields(type(client.dispatcher))
        assert {"state", "_send_opcode", "_validated"} <= _c_fields(type(protocol))
        assert client.connection_state == "open" and protocol.state == "open"
        wsx.sys.suspend(client)
        assert client.suspended is True and client.dispatcher.hold is True
        wsx.sys.resume(client)
        assert client.suspended is False and client.dispatcher.hold is False
    finally:
        wsx.stop(client)


def test_every_kind_of_frame_in_one_read_keeps_its_order(raw_server: Any) -> None:
    segment = b"".join([
        server_frame(0x1, b"a"),
        server_frame(0x9, b"p"),  # ping: Python path from here...
        server_frame(0x2, b"\x00\x01"),
        server_frame(0x1, b"x", fin=False),  # a fragmented text message
        server_frame(0x0, "é".encode(), fin=True),
        server_frame(0x1, b"z"),
        server_frame(0x8, struct.pack("!H", 1000) + b"bye"),
    ])
    state = new_state()
    client, got = run_read(raw_server, segment, state)
    assert state["seen"] == [
        ("text", "a"), ("ping", b"p"), ("binary", b"\x00\x01"), ("text", "xé"), ("text", "z"),
    ]
    assert got[:5] == [
        (0x1, b"re:a"), (0xA, b"p"), (0x2, b"re:\x00\x01"), (0x1, "re:xé".encode()),
        (0x1, b"re:z"),
    ]
    assert close_code(got[5]) == 1000 and len(got) == 6
    assert client.join(5)
    assert state["disconnect"] == [("remote", 1000, "bye")]


def test_whole_messages_only_in_one_read_are_all_answered_in_one_write(raw_server: Any) -> None:
    n = 50
    segment = b"".join(server_frame(0x2, i.to_bytes(2, "big")) for i in range(n))
    segment += server_frame(0x8, struct.pack("!H", 1000))
    state = new_state()
    client, got = run_read(raw_server, segment, state)
    assert state["seen"] == [("binary", i.to_bytes(2, "big")) for i in range(n)]
    assert got[:n] == [(0x2, b"re:" + i.to_bytes(2, "big")) for i in range(n)]
    assert close_code(got[n]) == 1000
    assert client.join(5)


def test_invalid_utf8_after_a_good_message_in_the_same_read(raw_server: Any) -> None:
    segment = server_frame(0x2, b"ok") + server_frame(0x1, b"bad \xff") + server_frame(0x1, b"x")
    state = new_state()
    client, got = run_read(raw_server, segment, state)
    assert state["seen"] == [("binary", b"ok")]
    assert got[0] == (0x2, b"re:ok")
    assert close_code(got[1]) == 1007
    assert client.join(5)
    reason = state["disconnect"][0]
    assert reason[0] == "error" and "UTF-8" in str(reason[1])


def test_a_broken_frame_after_a_good_message_in_the_same_read(raw_server: Any) -> None:
    segment = server_frame(0x1, b"a") + server_frame(0x3, b"reserved opcode")
    state = new_state()
    client, got = run_read(raw_server, segment, state)
    assert state["seen"] == [("text", "a")]
    assert got[0] == (0x1, b"re:a")
    assert close_code(got[1]) == 1002
    assert client.join(5)
    assert state["disconnect"][0][0] == "error"


def test_invalid_utf8_fails_before_the_rest_of_the_frame_arrives(raw_server: Any) -> None:
    got: list[tuple[int, bytes]] = []
    done = threading.Event()

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        time.sleep(0.05)
        # A 1000-byte text frame: its first 20 bytes only, the bad byte among them.
        sock.sendall(server_frame(0x1, b"x" * 1000)[:4 + 10] + b"\xff" + b"y" * 9)
        sock.settimeout(5)
        frame = read_frame(sock)  # the rest is never sent
        if frame is not None:
            got.append(frame)
        done.set()

    state = new_state()
    server = raw_server(handler)
    client = wsx.start(server.url, Recorder, state)
    assert done.wait(5)
    assert close_code(got[0]) == 1007
    assert state["seen"] == []
    wsx.stop(client)


def test_results_the_compiled_path_passes_on(raw_server: Any) -> None:
    replies = {
        "bytearray": ("binary", bytearray(b"ba")),
        "memoryview": ("binary", memoryview(b"mv")),
        "ping": ("ping", b"q"),
        "fragment": ("fragment", "text", "fr"),
        "finish": ("finish", "ag"),
        "close": "close",
    }
    segment = b"".join(server_frame(0x1, k.encode()) for k in replies)
    segment += server_frame(0x1, b"after close")
    state = new_state(lambda frame: replies.get(frame[1]))
    client, got = run_read(raw_server, segment, state)
    assert got[:5] == [(0x2, b"ba"), (0x2, b"mv"), (0x9, b"q"), (0x1, b"fr"), (0x0, b"ag")]
    assert close_code(got[5]) == 1000
    # Messages in the same read after our close are still delivered (as WebSockex).
    assert state["seen"][-1] == ("text", "after close")


def test_a_reply_that_cannot_be_encoded_crashes_with_1011(raw_server: Any) -> None:
    segment = server_frame(0x1, b"a") + server_frame(0x1, b"b")
    state = new_state(lambda frame: ("text", "ok") if frame[1] == "a" else ("text", "\ud800"))
    client, got = run_read(raw_server, segment, state)
    assert got[0] == (0x1, b"ok")
    assert close_code(got[1]) == 1011
    assert client.join(5)
    assert client.exit_reason[0] == "error"


def test_a_raising_or_bad_handler_in_the_middle_of_a_read(raw_server: Any) -> None:
    for action in ("raise", "bad"):
        segment = b"".join(server_frame(0x1, t) for t in (b"1", b"2", b"3"))
        state = new_state(lambda frame, action=action: action if frame[1] == "2" else None)
        client, got = run_read(raw_server, segment, state)
        assert close_code(got[0]) == 1011, action
        assert client.join(5)
        assert client.exit_reason[0] == "error"
        # The message after the crash reaches no callback.
        assert state["seen"] == [("text", "1"), ("text", "2")], action


def test_a_peer_reset_while_reading_is_a_connection_error(raw_server: Any) -> None:
    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        time.sleep(0.1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST

    state = new_state()
    server = raw_server(handler)
    client = wsx.start(server.url, Recorder, state)
    wait_until(lambda: state["disconnect"], what="handle_disconnect")
    reason = state["disconnect"][0]
    assert reason[0] in ("error", "remote"), reason
    if reason[0] == "error":
        assert isinstance(reason[1], wsx.ConnError)
        assert isinstance(reason[1].original, ConnectionResetError)
    assert client.join(5)


def test_resume_from_a_callback_reads_after_the_current_read(raw_server: Any) -> None:
    """wsx.sys.resume() inside handle_frame: what arrived meanwhile is read once the callback
    returned, after the rest of the current read (no nested callback, fragments intact)."""
    import wsx.sys
    from wsx.process import current_process

    got: list[tuple[int, bytes]] = []
    done, opened = threading.Event(), threading.Event()
    depth = [0, 0]  # current, deepest

    class Resumer(Recorder):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            depth[0] += 1
            depth[1] = max(depth[1], depth[0])
            try:
                if frame == ("text", "go"):
                    time.sleep(0.2)  # the rest of the message arrives meanwhile
                    me = current_process()
                    assert me is not None
                    wsx.sys.suspend(me)
                    wsx.sys.resume(me)
                return super().handle_frame(frame, state)
            finally:
                depth[0] -= 1

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        opened.wait(5)
        time.sleep(0.05)
        # One read: "go", then the first fragment of a text message...
        sock.sendall(server_frame(0x1, b"go") + server_frame(0x1, b"frag", fin=False))
        time.sleep(0.05)
        # ...its end arrives while handle_frame("go") runs.
        sock.sendall(server_frame(0x0, b"ment") + server_frame(0x8, struct.pack("!H", 1000)))
        sock.settimeout(5)
        read_until_close(sock, got)
        done.set()

    state = new_state()
    server = raw_server(handler)
    client = wsx.start(server.url, Resumer, state)
    opened.set()
    assert done.wait(5)
    assert state["seen"] == [("text", "go"), ("text", "fragment")]
    assert depth[1] == 1, "a callback ran inside another one"
    assert got == [(0x1, b"re:go"), (0x1, b"re:fragment"), got[-1]]
    assert close_code(got[-1]) == 1000
    assert client.join(5)
