"""Hardening, round three: the process layer under late replies, resets, async callbacks.

Each test is over real sockets on 127.0.0.1 (the ``wsx_server`` fixture, the
``websockets`` library, or a raw socket for a misbehaving server) and runs on
both builds (compiled, and ``WSX_NO_EXTENSIONS=1``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

import wsx
import wsx.aio
from conftest import wait_until

TIMEOUT = 5.0


# ------------------------------------------------------------------ late replies
class LateReplies(wsx.WebSocket):
    """Each call goes to the server; the echo's arrival answers it with wsx.reply."""

    def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
        if request[0] == "now":
            wsx.reply(caller, request[1])
            return ("ok", state)
        if request[0] == "hold":
            state["held"] = caller
            return ("ok", state)
        rid = state["next"]
        state["next"] += 1
        state["pending"][rid] = caller
        return ("reply", ("text", json.dumps({"id": rid, "q": request[1]})), state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        wsx.reply(state.pop("held"), msg)
        state["late_replies"] += 1
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        msg = json.loads(frame[1])
        caller = state["pending"].pop(msg["id"])
        state["callers"].append(caller)
        wsx.reply(caller, msg["q"])  # late for a call that gave up: dropped
        state["late_replies"] += 1
        return ("ok", state)


def _late_state() -> dict[str, Any]:
    return {"next": 0, "pending": {}, "callers": [], "late_replies": 0}


def test_a_reply_after_the_call_timed_out_is_dropped(wsx_server: Any) -> None:
    state = _late_state()
    client = wsx.start(wsx_server.url, LateReplies, state)
    try:
        wsx_server.delay(0.5)  # the server answers after the caller gave up
        for n in range(3):
            with pytest.raises(wsx.TimeoutExpired):
                wsx.call(client, ("ask", f"q{n}"), timeout=0.2)
        wait_until(lambda: state["late_replies"] == 3, what="the three late replies")
        assert client.alive and client.connection_state == "open", client.exit_reason
        assert all("gave up" in repr(c) and "answered" not in repr(c) for c in state["callers"])
        wsx_server.delay(0)
        assert wsx.call(client, ("ask", "on time"), timeout=TIMEOUT) == "on time"
        assert "answered" in repr(state["callers"][-1])
    finally:
        assert wsx.stop(client, timeout=TIMEOUT)
    assert client.exit_reason == "normal"


def test_a_call_with_timeout_zero_never_crashes_the_client(wsx_server: Any) -> None:
    client = wsx.start(wsx_server.url, LateReplies, _late_state())
    try:
        outcomes = set()
        for n in range(50):  # handle_call replies at once, maybe after the caller gave up
            try:
                outcomes.add(wsx.call(client, ("now", n), timeout=0) == n)
            except wsx.TimeoutExpired:
                outcomes.add("timeout")
        assert outcomes <= {True, "timeout"}
        assert wsx.call(client, ("now", "alive"), timeout=TIMEOUT) == "alive"
        assert client.alive, client.exit_reason
    finally:
        assert wsx.stop(client, timeout=TIMEOUT)
    assert client.exit_reason == "normal"


def test_a_reply_after_a_cancelled_aio_call_is_dropped(wsx_server: Any) -> None:
    state = _late_state()

    async def main() -> Any:
        client = await wsx.aio.start(wsx_server.url, LateReplies, state)
        task = asyncio.ensure_future(wsx.aio.call(client, ("hold",), timeout=None))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        wsx.cast(client, "late")  # handle_cast replies to the cancelled call
        for _ in range(500):
            if state["late_replies"] == 1:
                break
            await asyncio.sleep(0.01)
        assert state["late_replies"] == 1
        assert client.alive, client.exit_reason
        assert await wsx.aio.call(client, ("now", 7), timeout=TIMEOUT) == 7
        assert await wsx.aio.stop(client, timeout=TIMEOUT)
        return client

    client = asyncio.run(asyncio.wait_for(main(), 20))
    assert client.exit_reason == "normal"


# ------------------------------------------- a frame never crosses connections
class Reconnecting(wsx.WebSocket):
    def handle_disconnect(self, status: Any, state: Any) -> Any:
        return ("reconnect", state) if state["reconnect"] else ("ok", state)


def _reset(sock: Any) -> None:
    import socket
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("size", [256 * 1024, 1024 * 1024])
def test_frames_sent_by_threads_never_reach_the_next_connection(raw_server: Any,
                                                                size: int) -> None:
    from conftest import accept_response, read_request

    firsts: list[bytes] = []

    def handler(sock: Any) -> None:
        sock.settimeout(5)
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                return
            head += chunk
        firsts.append(head)
        if head != b"GET ":
            return
        sock.sendall(accept_response(head + read_request(sock)))
        sock.settimeout(0.01)
        try:
            for _ in range(3):
                if not sock.recv(1 << 20):
                    return
        except OSError:
            pass
        _reset(sock)  # in the middle of the threads' frames

    server = raw_server(handler)
    state = {"reconnect": True}
    client = wsx.start(server.url, Reconnecting, state)
    documented = (wsx.NotConnectedError, wsx.ConnError, wsx.TimeoutExpired)
    undocumented: list[BaseException] = []
    sent = [0]
    done = threading.Event()

    def sender() -> None:
        payload = bytes(size)
        while not done.is_set():
            try:
                wsx.send_frame(client, ("binary", payload))
                sent[0] += 1
            except documented:
                time.sleep(0.0005)
            except BaseException as exc:  # noqa: BLE001 - what the test looks for
                undocumented.append(exc)
                time.sleep(0.001)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(firsts) >= 60 or any(f != b"GET " for f in firsts),
                   timeout=30, what="60 connections")
    finally:
        done.set()
        for t in threads:
            t.join(10)
        state["reconnect"] = False
        wsx.stop(client, timeout=TIMEOUT)
    assert [f for f in firsts if f != b"GET "] == [], "a frame reached the next connection"
    assert undocumented == [], undocumented[:3]
    assert sent[0] > 0
