"""The compiled and the Python read path, fed the same bytes, behave the same.

One process, both paths: for each script of server bytes (whole messages,
pings, pongs, fragments, closes, invalid UTF-8, broken frames, callbacks
that reply, close, raise or return a bad shape), and for every way of
splitting it into two reads, a client on one end of a socket pair reads it
with the compiled reader (``wsx.process._reader.FastReader``) and, on a
fresh pair, with the Python ``Reader``. What the callback module saw, the
frames written back to the peer (unmasked), the connection state and the
exit reason must be equal.

The clients are real ``wsx.Client`` objects on a real socket pair; only the
loop does not run: the test calls the reader the loop would call.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import wsx
from conftest import server_frame
from wsx.core.conn import Conn
from wsx.io.loop import Loop
from wsx.process.connection import FastReader, Protocol
from wsx.process.lifecycle import OPEN

pytestmark = pytest.mark.skipif(FastReader is None, reason="the compiled read path is not built")

LOOP = Loop("differential")  # never run: the test calls the readers itself


class Recorder(wsx.WebSocket):
    """Records every callback; what a text message says decides the result."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        state.append(("frame", frame))
        if frame[0] == "text":
            text = frame[1]
            if text.startswith("echo:"):
                return ("reply", ("text", text[5:]), state)
            if text == "bin":
                return ("reply", ("binary", b"\x00\xff"), state)
            if text == "close-me":
                return ("close", (4000, "asked"), state)
            if text == "boom":
                raise RuntimeError("boom")
            if text == "bad":
                return ("what", state)
            if text == "ping-me":
                return ("reply", ("ping", b"p"), state)
        return ("ok", state)

    def handle_ping(self, frame: Any, state: Any) -> Any:
        state.append(("ping", frame))
        return super().handle_ping(frame, state)

    def handle_pong(self, frame: Any, state: Any) -> Any:
        state.append(("pong", frame))
        return ("ok", state)

    def terminate(self, reason: Any, state: Any) -> None:
        state.append(("terminate", repr(reason)))


def t(text: str) -> bytes:
    return server_frame(0x1, text.encode())


SCRIPTS = {
    "whole messages": t("a") + server_frame(0x2, b"\x01\x02") + t("é€𝄞"),
    "replies": t("echo:one") + t("bin") + t("echo:two") + t("ping-me"),
    "ping and pong": server_frame(0x9, b"hi") + server_frame(0x9) + t("x") + server_frame(0xA, b"p"),
    "fragments": (server_frame(0x1, b"fr", fin=False) + server_frame(0x9, b"in")
                  + server_frame(0x0, b"ag", fin=False) + server_frame(0x0, "mé".encode(), fin=True)
                  + t("after")),
    "binary fragments": server_frame(0x2, b"\x00", fin=False) + server_frame(0x0, b"\x01") + t("z"),
    "close": t("before") + server_frame(0x8, b"\x03\xe8bye") + t("ignored"),
    "close without code": t("q") + server_frame(0x8),
    "invalid utf-8": t("ok") + server_frame(0x1, b"\xc3\x28") + t("never"),
    "invalid utf-8 in a fragment": server_frame(0x1, b"ab\xed\xa0", fin=False) + server_frame(0x0, b"\x80"),
    "reserved opcode": t("first") + server_frame(0x3, b"x") + t("never"),
    "rsv bit": t("r") + server_frame(0x1, b"x", rsv=0x40),
    "masked by the server": t("m") + bytes([0x81, 0x81, 1, 2, 3, 4, ord("x") ^ 1]),
    "long ping": server_frame(0x9, b"x" * 126),
    "continuation without start": server_frame(0x0, b"x"),
    "new message inside a fragmented one": server_frame(0x1, b"a", fin=False) + t("b"),
    "callback closes": t("close-me") + t("after"),
    "callback raises": t("one") + t("boom") + t("after"),
    "bad result": t("bad") + t("after"),
}


def _drain(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data + b"<EOF>"
        data += chunk


def _client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The masked client frames in ``data``: ``(first header byte, unmasked payload)``."""
    frames = []
    eof = data.endswith(b"<EOF>")
    if eof:
        data = data[:-5]
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            n, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif n == 127:
            n, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        assert b1 & 0x80, "a client frame must be masked"
        key, i = data[i:i + 4], i + 4
        frames.append((b0, bytes(c ^ key[k % 4] for k, c in enumerate(data[i:i + n]))))
        i += n
    if eof:
        frames.append((-1, b"EOF"))
    return frames


def run(script: bytes, split: int, compiled: bool) -> dict[str, Any]:
    """Feed ``script`` in two reads (at ``split``) to a fresh open client; what happened."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    seen: list[Any] = []
    client = wsx.Client(Conn("ws://127.0.0.1:9/", compress=False), Recorder, seen, loop=LOOP)
    client.transport.attach(ours)
    client.transport.limit(client.conn.write_limit)
    client.dispatcher.protocol = Protocol(max_message_size=client.conn.max_message_size)
    client.lifecycle.to(OPEN)
    reader = client.read_path if compiled else client.reader
    assert (type(reader).__name__ == "FastReader") is compiled
    written = b""
    try:
        for part in (script[:split], script[split:]):
            if part and client.transport.sock is not None:  # not after a crash closed it
                peer.sendall(part)
                reader()
            if not written.endswith(b"<EOF>"):
                written += _drain(peer)
        return {
            "seen": seen,
            "written": _client_frames(written),
            "state": client.connection_state,
            "exit": repr(client.exit_reason),
        }
    finally:
        if not client.terminated:
            client.abandon_connection()
        client._exit("normal")
        peer.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_both_read_paths_agree_at_every_split(name: str) -> None:
    script = SCRIPTS[name]
    for split in range(len(script) + 1):
        fast = run(script, split, compiled=True)
        slow = run(script, split, compiled=False)
        assert fast == slow, f"{name!r} split at byte {split}"


def test_the_scripts_reach_both_paths() -> None:
    # The scripts are not all handled by the Python path in disguise: whole
    # messages and replies give the same answers in one read as in two.
    whole = run(SCRIPTS["replies"], len(SCRIPTS["replies"]), compiled=True)
    assert [payload for _, payload in whole["written"]] == [b"one", b"\x00\xff", b"two", b"p"]
    assert whole["seen"][0] == ("frame", ("text", "echo:one"))
    closing = run(SCRIPTS["close"], len(SCRIPTS["close"]), compiled=True)
    assert closing["state"] == "closing"
    assert closing["written"] == [(0x88, b"\x03\xe8")]
    crashed = run(SCRIPTS["callback raises"], len(SCRIPTS["callback raises"]), compiled=True)
    assert crashed["written"][0] == (0x88, b"\x03\xf3")  # 1011
    assert crashed["state"] == "terminated" and "boom" in crashed["exit"]
