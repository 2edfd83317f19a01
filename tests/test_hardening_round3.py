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
from conftest import accept_response, read_frame, read_request, wait_until

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
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        return ("reconnect", state) if state["reconnect"] else ("ok", state)


def _reset(sock: Any) -> None:
    import socket
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_no_frame_of_another_thread_follows_our_close_frame(raw_server: Any) -> None:
    # Threads send frames large enough to be masked without the GIL while the
    # loop sends our close: the close is buffered and written under the write
    # lock, so each thread's frame goes out whole before it, or not at all.
    orders: list[list[int]] = []

    def handler(sock: Any) -> None:
        sock.settimeout(5)
        sock.sendall(accept_response(read_request(sock)))
        seen: list[int] = []
        try:
            while (frame := read_frame(sock)) is not None:
                seen.append(frame[0])
                if frame[0] == 0x8:
                    sock.settimeout(0.2)  # anything the client writes after its close
        except OSError:
            pass
        orders.append(seen)

    server = raw_server(handler)
    documented = (wsx.NotConnectedError, wsx.ConnError, wsx.TimeoutExpired)
    undocumented: list[BaseException] = []
    for _ in range(12):
        client = wsx.start(server.url, Reconnecting, {"reconnect": False})
        done = threading.Event()

        def sender(target: Any = client, stop: threading.Event = done) -> None:
            payload = bytes(300 * 1024)
            while not stop.is_set():
                try:
                    wsx.send_frame(target, ("binary", payload))
                except documented:
                    time.sleep(0.0005)
                except BaseException as exc:  # noqa: BLE001 - what the test looks for
                    undocumented.append(exc)
                    return

        threads = [threading.Thread(target=sender, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.03)
        try:
            wsx.send_frame(client, "close")
        except documented:
            pass
        time.sleep(0.05)
        done.set()
        for t in threads:
            t.join(10)
        wsx.stop(client, timeout=TIMEOUT)
    wait_until(lambda: len(orders) == 12, timeout=10, what="12 connections read to the end")
    after_close = [order[order.index(0x8) + 1:] for order in orders if 0x8 in order]
    assert after_close and all(rest == [] for rest in after_close), after_close
    assert undocumented == [], undocumented[:3]


@pytest.mark.parametrize("size", [256 * 1024, 1024 * 1024])
def test_frames_sent_by_threads_never_reach_the_next_connection(raw_server: Any,
                                                                size: int) -> None:
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


# ------------------------------------------- the byte stream is one ordered stream
def test_bytes_after_the_101_come_before_later_reads_with_an_async_handle_connect(
        raw_server: Any, run: Any) -> None:
    import struct

    payload = b"0123456789" * 20  # 200 bytes: a 2-byte header, then a 16-bit length
    frame = bytes([0x82, 126]) + struct.pack("!H", len(payload)) + payload

    def handler(sock: Any) -> None:
        sock.settimeout(5)
        request = read_request(sock)
        sock.sendall(accept_response(request) + frame[:50])  # the 101 and half a frame
        time.sleep(0.05)
        sock.sendall(frame[50:])
        try:
            sock.recv(4096)  # until the client closes
        except OSError:
            pass

    server = raw_server(handler)

    class SlowConnect(wsx.WebSocket):
        async def handle_connect(self, conn: Any, state: Any) -> Any:
            await asyncio.sleep(0.15)  # the rest of the frame arrives meanwhile
            return ("ok", state)

        def handle_frame(self, frame: Any, state: Any) -> Any:
            state.append(frame)
            return ("ok", state)

    async def main() -> Any:
        frames: list[Any] = []
        client = await wsx.aio.start(server.url, SlowConnect, frames)
        for _ in range(300):
            if frames or not client.alive:
                break
            await asyncio.sleep(0.01)
        alive = client.alive
        await wsx.aio.stop(client, timeout=TIMEOUT)
        return frames, alive, client.exit_reason

    frames, alive, reason = run(main)
    assert alive, reason
    assert frames == [("binary", payload)]
    assert reason == "normal"


# ------------------------------------------ the hold limit holds while CLOSING
FLOOD_FRAME = bytes([0x82, 100]) + bytes(100)


def _flood_after_close(sock: Any, flooded: list[int]) -> None:
    """Answer the upgrade, send one frame, then flood frames; never answer the close."""
    sock.settimeout(5)
    sock.sendall(accept_response(read_request(sock)) + FLOOD_FRAME)
    sock.recv(4096)  # the client's close frame (sent by the application)
    chunk = FLOOD_FRAME * 600
    sock.settimeout(0.2)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            flooded[0] += sock.send(chunk)
        except TimeoutError:
            continue  # the client stopped reading
        except OSError:
            return


def _held_bound(client: Any) -> int:
    from wsx.process.holds import HELD_FRAMES

    # Reading stops once HELD_FRAMES frames wait: at most one read's frames more.
    return HELD_FRAMES + len(client.loop.read_buffer) // len(FLOOD_FRAME) + 1


def test_frames_held_while_closing_are_bounded_while_an_async_callback_waits(
        raw_server: Any, run: Any) -> None:
    flooded = [0]
    server = raw_server(lambda sock: _flood_after_close(sock, flooded))

    class Waits(wsx.WebSocket):
        async def handle_frame(self, frame: Any, state: Any) -> Any:
            state["waiting"] = True
            await asyncio.sleep(30)
            return ("ok", state)

    async def main() -> Any:
        state: dict[str, Any] = {}
        client = await wsx.aio.start(server.url, Waits, state, close_timeout=2)
        for _ in range(300):
            if state.get("waiting"):
                break
            await asyncio.sleep(0.01)
        await wsx.aio.send_frame(client, "close")  # CLOSING, the callback still waits
        most = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            most = max(most, len(client.dispatcher.inbox))
            await asyncio.sleep(0.005)
        bound = _held_bound(client)
        await wsx.aio.stop(client, timeout=TIMEOUT)
        return most, bound, client.alive

    most, bound, alive = run(main)
    assert flooded[0] > 0
    assert most <= bound, f"{most} frames held (bound {bound})"
    assert not alive


def test_frames_held_while_closing_are_bounded_while_suspended(raw_server: Any) -> None:
    flooded = [0]
    server = raw_server(lambda sock: _flood_after_close(sock, flooded))
    client = wsx.start(server.url, Reconnecting, {"reconnect": False}, close_timeout=2)
    try:
        wsx.send_frame(client, "close")
        wsx.sys.suspend(client)  # CLOSING and suspended: every frame is held
        most = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            most = max(most, len(client.dispatcher.inbox))
            time.sleep(0.005)
        assert flooded[0] > 0
        assert most <= _held_bound(client), f"{most} frames held"
    finally:
        wsx.stop(client, timeout=TIMEOUT)
    assert not client.alive


# ------------------------------------------------ terminate runs once, and ends
class CrashesThenWaits(wsx.WebSocket):
    """handle_frame raises on "crash"; terminate awaits a while; every step is logged."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        if frame == ("text", "crash"):
            raise RuntimeError("crash")
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state["log"].append("disconnect")
        return ("ok", state)

    async def terminate(self, reason: Any, state: Any) -> None:
        state["log"].append(("terminate", wsx.self().connection_state))
        await asyncio.sleep(1.0)
        state["log"].append("terminated")


class Bystander(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)


async def _until(pred: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what}")
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("ending", ["crash", "disconnect"])
def test_an_exit_signal_during_an_async_terminate_leaves_no_zombie(
        wsx_server: Any, run: Any, ending: str) -> None:
    async def main() -> Any:
        state: dict[str, Any] = {"log": []}
        a = await wsx.aio.start(wsx_server.url, CrashesThenWaits, state)
        b = await wsx.aio.start(wsx_server.url, Bystander, None)
        a.link(b)
        wsx_server.wait_for_connections(2)
        if ending == "crash":
            await asyncio.to_thread(wsx_server.send, "crash")  # to both: a crashes
        else:
            await wsx.aio.send_frame(a, "close")  # a's handle_disconnect returns ok
        await _until(lambda: any(type(e) is tuple for e in state["log"]), "terminate started")
        assert await wsx.aio.stop(b, "boom", timeout=TIMEOUT) is True  # b exits abnormally
        await _until(lambda: not a.alive, "a ended")
        return a, state["log"]

    a, log = run(main)
    terminates = [e for e in log if type(e) is tuple]
    assert terminates == [("terminate", "disconnected")], log  # once; the socket is closed
    assert log[-1] == "terminated"
    assert a.connection_state == "terminated"
    if ending == "crash":
        assert a.exit_reason[0] == "error" and "crash" in str(a.exit_reason[1])
        assert "disconnect" not in log
    else:
        assert log[0] == "disconnect"
        assert a.exit_reason == ("local", "normal")


# ---------------------------------------- wsx.stop and the callbacks it releases
class Logs(wsx.WebSocket):
    async def handle_frame(self, frame: Any, state: Any) -> Any:
        state.append(f"start {frame[1]}")
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            state.append(f"cancelled {frame[1]}")
            raise
        state.append(f"end {frame[1]}")
        return ("ok", state)

    def terminate(self, reason: Any, state: Any) -> None:
        state.append(f"terminate {reason}")


def test_stopping_a_suspended_client_waits_for_the_callback_it_releases(
        wsx_server: Any, run: Any) -> None:
    async def main() -> Any:
        log: list[str] = []
        client = await wsx.aio.start(wsx_server.url, Logs, log)
        await asyncio.to_thread(wsx.sys.suspend, client)
        await asyncio.to_thread(wsx_server.send, "m1")
        await asyncio.sleep(0.1)  # m1 waits in the socket, unread while suspended
        stopped = await wsx.aio.stop(client, timeout=TIMEOUT)
        return stopped, log

    stopped, log = run(main)
    assert log == ["start m1", "end m1", "terminate normal"]
    assert stopped is True


class Forever(wsx.WebSocket):
    async def handle_frame(self, frame: Any, state: Any) -> Any:
        state.append("waiting")
        await asyncio.sleep(3600)
        return ("ok", state)

    async def handle_disconnect(self, status: Any, state: Any) -> Any:
        state.append("backoff")
        await asyncio.sleep(3600)  # sleeps out a reconnect backoff
        return ("reconnect", state)

    def terminate(self, reason: Any, state: Any) -> None:
        state.append(f"terminate {reason}")


def test_a_stops_timeout_bounds_an_async_callback_that_never_returns(
        wsx_server: Any, run: Any) -> None:
    async def main() -> Any:
        log: list[str] = []
        client = await wsx.aio.start(wsx_server.url, Forever, log)
        await asyncio.to_thread(wsx_server.send, "x")
        await _until(lambda: log == ["waiting"], "the callback waits")
        started = time.monotonic()
        await wsx.aio.stop(client, timeout=0.5)
        await _until(lambda: not client.alive, "the client ended", timeout=3)
        return time.monotonic() - started, log, client.exit_reason

    took, log, reason = run(main)
    assert took < 3
    assert log == ["waiting", "terminate normal"]
    assert reason == "normal"


def test_a_stop_does_not_wait_for_an_async_handle_disconnect(wsx_server: Any, run: Any) -> None:
    async def main() -> Any:
        log: list[str] = []
        client = await wsx.aio.start(wsx_server.url, Forever, log)
        await asyncio.to_thread(wsx_server.close, 1001, "bye")
        await _until(lambda: log == ["backoff"], "handle_disconnect waits")
        started = time.monotonic()
        stopped = await wsx.aio.stop(client, timeout=TIMEOUT)
        return stopped, time.monotonic() - started, log

    stopped, took, log = run(main)
    assert stopped is True
    assert took < 1.0
    assert log == ["backoff", "terminate normal"]


# ----------------------------------------------- a host loop closed under clients
def test_a_client_whose_asyncio_loop_was_closed_ends_with_a_clear_reason(
        wsx_server: Any) -> None:
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(
            asyncio.wait_for(wsx.aio.start(wsx_server.url, Bystander, None), 10))
    finally:
        loop.close()  # with the client still open
    wsx_server.wait_for_connections(1)
    started = time.monotonic()
    assert wsx.stop(client, timeout=TIMEOUT) is False  # not with its reason: the loop is gone
    assert time.monotonic() - started < 1.0
    assert not client.alive and client.connection_state == "terminated"
    kind, error = client.exit_reason
    assert kind == "error" and isinstance(error, wsx.ConnError) and "closed" in str(error)
    wsx_server.wait_for_disconnects(1)  # its socket was closed
    with pytest.raises(wsx.NoProcessError):
        wsx.call(client, "x", timeout=1)


def test_clients_left_on_closed_asyncio_loops_do_not_pile_up(wsx_server: Any) -> None:
    import os

    def fds() -> int:
        return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0

    async def one() -> Any:
        return await wsx.aio.start(wsx_server.url, Bystander, None)

    async def another() -> None:
        wsx.io.aioloop.for_loop()  # what each wsx.aio start does first

    import wsx.io.aioloop

    clients = [asyncio.run(one())]  # warm-up: the first run's loop-wide objects
    wsx_server.wait_for_connections(1)
    before = fds()
    for _ in range(30):  # each run's loop closes with its client open
        clients.append(asyncio.run(one()))
    asyncio.run(another())  # the closed loops' clients are found and ended
    # (or, for a loop already collected, by a thread its collection started)
    wait_until(lambda: not [c for c in clients if c.alive], what="every client ended")
    wsx_server.wait_for(lambda: wsx_server.open_connections == 0, what="all closed")
    wait_until(lambda: fds() - before <= 3, timeout=5,
               what=f"at most 3 file descriptors more after 30 runs ({fds() - before})")


# ------------------------------------------- suspension while connecting or closing
class Records(wsx.WebSocket):
    def handle_connect(self, conn: Any, state: Any) -> Any:
        state.append("connect")
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        state.append(frame[1])
        return ("ok", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        state.append(("cast", msg))
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state.append("disconnect")
        return ("ok", state)


def test_a_connection_that_opens_while_suspended_waits_for_resume(wsx_server: Any) -> None:
    wsx_server.handshake(delay=0.4)
    log: list[Any] = []
    started: list[Any] = []
    starter = threading.Thread(target=lambda: started.append(
        wsx.start(wsx_server.url, Records, log, name="suspended-while-connecting")), daemon=True)
    starter.start()
    client = wait_until(lambda: wsx.whereis("suspended-while-connecting"), what="registered")
    try:
        wsx.sys.suspend(client)  # while the server delays its 101
        wait_until(lambda: client.upgrade is None and client.connection_state == "open",
                   what="the upgrade done")
        wsx_server.send("hello")
        wsx.cast(client, "c1")
        time.sleep(0.3)
        assert log == [], "a callback ran while suspended"
        assert not client.transport.reading  # nothing read while suspended
        wsx.sys.resume(client)
        wait_until(lambda: len(log) == 3, what="connect, the frame and the cast")
        assert log == ["connect", "hello", ("cast", "c1")]
        starter.join(TIMEOUT)
        assert started == [client]
    finally:
        wsx.stop(client, timeout=TIMEOUT)


def test_a_disconnect_while_suspended_waits_for_resume(wsx_server: Any) -> None:
    log: list[Any] = []
    client = wsx.start(wsx_server.url, Records, log, close_timeout=0.2)
    try:
        wsx_server.stall()  # the server will not answer our close
        wsx.sys.suspend(client)
        wsx.send_frame(client, "close")  # then close_timeout drops the connection
        wait_until(lambda: client.connection_state == "disconnected", what="the drop")
        time.sleep(0.3)
        assert log == ["connect"], "handle_disconnect ran while suspended"
        wsx.sys.resume(client)
        wait_until(lambda: not client.alive, what="the client ended")
        assert log == ["connect", "disconnect"]
    finally:
        wsx.stop(client, timeout=TIMEOUT)



def test_a_thread_sending_to_a_client_whose_loop_was_closed_never_hangs(raw_server: Any) -> None:
    def handler(sock: Any) -> None:  # takes the upgrade, then reads nothing
        sock.sendall(accept_response(read_request(sock)))
        time.sleep(10)

    server = raw_server(handler)
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(
            asyncio.wait_for(wsx.aio.start(server.url, Bystander, None), 10))
    finally:
        loop.close()
    outcome: list[Any] = []

    def sender() -> None:
        try:
            for _ in range(50):  # the socket's buffer fills: partial writes, posts to the loop
                wsx.send_frame(client, ("binary", bytes(1 << 20)))
            outcome.append("sent")
        except wsx.WSXError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "send_frame hung"
    wait_until(lambda: not client.alive, what="the client ended")
    assert outcome and isinstance(outcome[0], wsx.NotConnectedError | wsx.ConnError), outcome


def test_past_a_stops_deadline_no_held_callback_holds_it(wsx_server: Any, run: Any) -> None:
    async def main() -> Any:
        log: list[str] = []
        client = await wsx.aio.start(wsx_server.url, Forever, log)
        await asyncio.to_thread(wsx_server.send, "x")
        await asyncio.to_thread(wsx_server.send, "y")  # held behind x
        await _until(lambda: log == ["waiting"] and len(client.dispatcher.inbox) == 1,
                     "x waits, y is held")
        await wsx.aio.stop(client, timeout=0.3)
        await _until(lambda: not client.alive, "the client ended", timeout=3)
        return log, client.exit_reason

    log, reason = run(main)
    assert log[-1] == "terminate normal" and reason == "normal", log


class StubbornTerminate(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        raise RuntimeError("crash")

    async def terminate(self, reason: Any, state: Any) -> None:
        while True:  # ignores cancellation
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                state.append("cancelled")


def test_a_stops_deadline_ends_an_async_terminate_that_ignores_cancellation(
        wsx_server: Any, run: Any) -> None:
    async def main() -> Any:
        log: list[str] = []
        client = await wsx.aio.start(wsx_server.url, StubbornTerminate, log)
        await asyncio.to_thread(wsx_server.send, "x")  # crash: terminate waits for ever
        await _until(lambda: client.connection_state == "disconnected", "terminating")
        await wsx.aio.stop(client, timeout=0.3)
        await _until(lambda: not client.alive, "the client ended", timeout=3)
        return client.exit_reason

    reason = run(main)
    assert reason[0] == "error" and "crash" in str(reason[1])  # terminate's reason


def test_frames_held_for_a_connection_never_reach_the_next_one(wsx_server: Any, run: Any) -> None:
    class Slow(wsx.WebSocket):
        async def handle_frame(self, frame: Any, state: Any) -> Any:
            state["log"].append(frame[1])
            if frame[1] == "a":
                await asyncio.sleep(3600)  # cancelled when the connection ends
            return ("ok", state)

        def handle_connect(self, conn: Any, state: Any) -> Any:
            state["log"].append("connect")
            return ("ok", state)

        def handle_disconnect(self, status: Any, state: Any) -> Any:
            state["log"].append("disconnect")
            return ("reconnect", state) if state["log"].count("connect") < 2 else ("ok", state)

    async def main() -> Any:
        state: dict[str, Any] = {"log": []}
        client = await wsx.aio.start(wsx_server.url, Slow, state)
        for text in ("a", "b", "c"):
            await asyncio.to_thread(wsx_server.send, text)
        await _until(lambda: len(client.dispatcher.inbox) == 2, "b and c held")
        await asyncio.to_thread(wsx_server.reset)
        await _until(lambda: state["log"].count("connect") == 2, "reconnected")
        await asyncio.sleep(0.2)
        open_after = client.connection_state
        await wsx.aio.stop(client, timeout=TIMEOUT)
        return state["log"], open_after

    log, open_after = run(main)
    assert log == ["connect", "a", "disconnect", "connect"], log
    assert open_after == "open"


def test_past_a_stops_deadline_an_unaccepted_connection_handles_nothing(
        wsx_server: Any, run: Any) -> None:
    class NeverAccepts(wsx.WebSocket):
        async def handle_connect(self, conn: Any, state: Any) -> Any:
            await asyncio.sleep(3600)
            return ("ok", state)

        def handle_frame(self, frame: Any, state: Any) -> Any:
            state.append(frame[1])
            return ("ok", state)

        def terminate(self, reason: Any, state: Any) -> None:
            state.append(f"terminate {reason}")

    async def main() -> Any:
        log: list[str] = []
        task = asyncio.ensure_future(wsx.aio.start_link(wsx_server.url, NeverAccepts, log,
                                                        name="never-accepts"))
        await _until(lambda: wsx.whereis("never-accepts") is not None, "registered")
        client = wsx.whereis("never-accepts")
        wsx_server.wait_for_connections(1)
        await asyncio.to_thread(wsx_server.send, "early")
        await asyncio.sleep(0.1)
        await wsx.aio.stop(client, timeout=0.3)
        await _until(lambda: not client.alive, "the client ended", timeout=3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return log

    log = run(main)
    assert log == ["terminate normal"]
