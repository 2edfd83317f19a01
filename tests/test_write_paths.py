"""How frames reach the socket: replies gathered per read, send_frame written by its caller.

* The replies to several messages that arrived in one read go out together,
  in order, and a crash in the middle still sends the replies before it and
  then the close 1011.
* ``send_frame`` from another thread writes the frame itself on a plain TCP
  connection (no round trip through the loop): frames from many threads never
  interleave, what the socket does not take at once is finished by the loop,
  and nothing follows our close frame.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import pytest

import wsx
from conftest import server_frame, wait_until
from wsx.process import current_process
from wsx.testing import Server


class Replier(wsx.WebSocket):
    """Echo each text message; raise on "boom"."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        if frame == ("text", "boom"):
            raise RuntimeError("boom")
        return ("reply", ("text", "re:" + frame[1]), state)


def test_replies_to_one_read_go_out_in_order_and_before_a_crash_close(
        wsx_server_factory: Any) -> None:
    server = wsx_server_factory(echo=False)  # an echo would be replied to again
    client = wsx.start(server.url, Replier, None)
    server.wait_for_connections(1)
    # Four messages in one segment: one read on the client side.
    server.send_raw(b"".join(server_frame(0x1, t) for t in (b"a", b"b", b"c", b"boom")))
    assert server.wait_for_close()[0] == 1011
    got = [(f.kind, f.payload) for f in server.frames]
    assert got[:3] == [("text", b"re:a"), ("text", b"re:b"), ("text", b"re:c")]
    assert got[3][0] == "close" and struct.unpack("!H", got[3][1][:2])[0] == 1011
    assert client.join(5)
    assert client.exit_reason[0] == "error"


class Quiet(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)


def test_send_frame_from_threads_never_interleaves(echo_server: Any) -> None:
    received: list[Any] = []

    class Collect(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            received.append(frame)
            return ("ok", state)

    client = wsx.start_link(echo_server.url, Collect, None, compress=False)
    sizes = [1, 125, 126, 70_000]  # every header length, and partial writes

    def sender(t: int) -> None:
        for i in range(100):
            wsx.send_frame(client, ("binary", bytes([t]) * sizes[i % 4] + i.to_bytes(2, "big")))

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    wait_until(lambda: len(received) == 600, timeout=30)
    per_thread: dict[int, list[int]] = {}
    for kind, payload in received:
        assert kind == "binary"
        t = payload[0]
        body = payload[:-2]
        assert body == bytes([t]) * len(body)  # not interleaved with another frame
        per_thread.setdefault(t, []).append(int.from_bytes(payload[-2:], "big"))
    assert all(seq == list(range(100)) for seq in per_thread.values())  # order kept
    wsx.stop(client)


def test_send_frame_from_a_thread_while_the_server_stops_reading(
        wsx_server_factory: Any) -> None:
    # The first frames go out directly; once the socket is full the rest
    # wait in the buffer and the loop finishes them when the server reads.
    server = wsx_server_factory(echo=False)
    server.stop_reading()
    client = wsx.start_link(server.url, Quiet, None, write_limit=8 << 20, send_timeout=20)
    payloads = [bytes([i]) * 100_000 for i in range(40)]
    sent = threading.Event()

    def sender() -> None:
        for p in payloads:
            wsx.send_frame(client, ("binary", p))
        sent.set()

    threading.Thread(target=sender, daemon=True).start()
    assert sent.wait(20)  # 4 MB fit under write_limit: send_frame did not wait
    server.stop_reading(False)
    got = server.wait_for_messages(40, timeout=20)
    assert got == [("binary", p) for p in payloads]
    wsx.stop(client)


def test_send_frame_after_our_close_is_refused(wsx_server: Server) -> None:
    wsx_server.stall()  # do not answer the close at once
    client = wsx.start_link(wsx_server.url, Quiet, None)
    wsx.send_frame(client, ("text", "before"))
    wsx.stop(client, timeout=0)  # asks for the close; does not wait
    assert wsx_server.wait_for_close() == (1000, "")
    with pytest.raises(wsx.NotConnectedError):
        wsx.send_frame(client, ("text", "after"))
    assert wsx_server.close(1000) == 1  # the answer, late
    assert client.join(5)
    wsx_server.wait_for_disconnects(1)  # everything the client sent is recorded
    assert [f.kind for f in wsx_server.frames] == ["text", "close"]


def test_compressed_frames_from_threads_and_replies_keep_their_order(echo_server: Any) -> None:
    # With permessage-deflate (context takeover) every frame must reach the
    # server in the order it was compressed, whoever sends it: frames from
    # threads and replies from callbacks, at the same time.
    received: list[str] = []

    class Bouncer(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            received.append(frame[1])
            if frame[1].startswith("r") and int(frame[1][1:].split(":")[0]) < 200:
                n = int(frame[1][1:].split(":")[0])
                return ("reply", ("text", f"r{n + 1}:" + "abc" * 50), state)
            return ("ok", state)

    client = wsx.start_link(echo_server.url, Bouncer, None)
    assert client.conn.extensions and client.conn.extensions[0][0] == "permessage-deflate"
    wsx.send_frame(client, ("text", "r0:" + "abc" * 50))

    def sender(t: int) -> None:
        for i in range(100):
            wsx.send_frame(client, ("text", f"t{t}-{i}:" + "xyz" * 40))

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    wait_until(lambda: len(received) == 201 + 300, timeout=30)
    assert client.alive and client.connection_state == "open"  # the server decoded every frame
    assert sorted(m.split(":")[0] for m in received if m.startswith("t")) == sorted(
        f"t{t}-{i}" for t in range(3) for i in range(100))
    wsx.stop(client)


def test_a_fragmented_message_from_a_thread_never_splits_around_a_gathered_reply(
        wsx_server_factory: Any) -> None:
    # Two messages in one read: the reply to the first is gathered, to go out
    # with the replies to the rest of the read in one write. While it waits,
    # another thread starts a fragmented message. The reply was encoded
    # first, so it must reach the wire first: written after the first
    # fragment it would be a new message inside the fragmented one (RFC 6455
    # section 5.4), and the server would fail the connection.
    tried = threading.Event()

    def fragmented(client: Any) -> None:
        threading.Timer(0.2, tried.set).start()  # send_frame may wait for the loop
        wsx.send_frame(client, ("fragment", "text", "x"))
        tried.set()
        wsx.send_frame(client, ("finish", "y"))

    class Meanwhile(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            if frame == ("text", "a"):
                me = current_process()
                threading.Thread(target=fragmented, args=(me,), daemon=True).start()
                return ("reply", ("text", "re:a"), state)
            tried.wait(5)  # the other thread sends while the reply is gathered
            return ("ok", state)

    server = wsx_server_factory(echo=False)  # an echo would reach handle_frame
    client = wsx.start_link(server.url, Meanwhile, None)
    server.wait_for_connections(1)
    server.send_raw(server_frame(0x1, b"a") + server_frame(0x1, b"b"))
    assert server.wait_for_messages(2) == [("text", "re:a"), ("text", "xy")]
    got = [(f.kind, f.payload) for f in server.frames]
    assert got[:3] == [("text", b"re:a"), ("text", b"x"), ("continuation", b"y")]
    assert server.closes == []  # the server did not fail the connection
    wsx.stop(client)


def test_the_compiled_raw_socket_reads_as_socket_recv_into_does() -> None:
    from wsx._twins import compiled

    syscalls = compiled("wsx.io._syscalls")
    if syscalls is None:
        pytest.skip("the compiled syscalls are not built or disabled")
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        raw = syscalls.RawSocket(a)
        with pytest.raises(BlockingIOError):
            raw.recv_into(bytearray(16))  # nothing there
        b.sendall(b"hello")
        buf = bytearray(16)
        assert raw.recv_into(buf) == 5 and buf[:5] == b"hello"
        view = memoryview(bytearray(3))
        b.sendall(b"xyz!")
        assert raw.recv_into(view) == 3 and bytes(view) == b"xyz"  # any writable buffer
        b.close()
        assert raw.recv_into(bytearray(8)) == 1  # the "!" left, then the end
        assert raw.recv_into(bytearray(8)) == 0
        with pytest.raises((TypeError, BufferError)):  # as socket.recv_into: not writable
            raw.recv_into(b"read-only")
    finally:
        a.close()
