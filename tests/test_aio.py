"""wsx.aio: clients on the application's asyncio loop (the default loop and uvloop).

Each test runs its coroutine on a fresh loop of each kind, bounded by a
timeout; the servers are independent peers (the websockets server,
``wsx.testing.Server`` for the scripted faults, raw sockets) in threads of
their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import socket
import threading
import time
from typing import Any

import pytest

import wsx
import wsx._twins
import wsx.aio
from conftest import WSServer, accept_response, read_request, server_frame
from wsx.io.aioloop import AsyncioLoop
from wsx.testing import Server


class Queue(wsx.WebSocket):
    """Puts every frame in ``state`` (an asyncio.Queue); answers calls with ("got", req)."""

    def handle_frame(self, frame: Any, q: Any) -> Any:
        q.put_nowait(frame)
        return ("ok", q)

    def handle_call(self, request: Any, caller: Any, q: Any) -> Any:
        wsx.reply(caller, ("got", request))
        return ("ok", q)


class AsyncQueue(Queue):
    async def handle_frame(self, frame: Any, q: Any) -> Any:
        await asyncio.sleep(random.random() * 0.002)
        await q.put(frame)
        return ("ok", q)


async def get(q: asyncio.Queue[Any], n: int, timeout: float = 5.0) -> list[Any]:
    return [await asyncio.wait_for(q.get(), timeout) for _ in range(n)]


def wsx_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("wsx")}


# ---------------------------------------------------------------- basics
def test_echo_on_the_running_loop_without_a_thread(run: Any, echo_server: WSServer) -> None:
    before = wsx_threads()

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, Queue, q)
        assert isinstance(client.loop, AsyncioLoop)
        assert client.loop.aloop is asyncio.get_running_loop()
        if wsx._twins.compiled("wsx.process._reader") is not None:
            assert type(client.read_path).__name__ == "FastReader"  # the compiled read path
        for i in range(200):
            await wsx.aio.send_frame(client, ("text", f"m{i}"))
        await wsx.aio.send_frame(client, ("binary", b"\x00\xff"))
        assert await get(q, 201) == [("text", f"m{i}") for i in range(200)] + [
            ("binary", b"\x00\xff")]
        assert await wsx.aio.call(client, "hi") == ("got", "hi")
        assert await wsx.aio.stop(client)
        assert client.exit_reason == "normal"

    run(main)
    assert wsx_threads() <= before  # no thread of wsx's was started for it


def test_fragments_and_control_frames(run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        await ws.send(["frag", "mented"])  # one message in two fragments
        await ws.ping(b"are you there")
        async for msg in ws:
            await ws.send(msg)

    server = ws_server(handler)

    class Pings(Queue):
        def handle_ping(self, frame: Any, q: Any) -> Any:
            q.put_nowait(frame)
            return ("reply", ("pong", frame[1]), q)

        def handle_pong(self, frame: Any, q: Any) -> Any:
            q.put_nowait(frame)
            return ("ok", q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(server.url, Pings, q)
        assert await get(q, 2) == [("text", "fragmented"), ("ping", b"are you there")]
        await wsx.aio.send_frame(client, ("ping", b"p1"))
        assert await get(q, 1) == [("pong", b"p1")]
        await wsx.aio.stop(client)

    run(main)


def test_close_code_from_the_server_reaches_handle_disconnect(run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        await ws.close(4001, "bye")

    server = ws_server(handler)

    class Closed(Queue):
        def handle_disconnect(self, status: Any, q: Any) -> Any:
            q.put_nowait(status.reason)
            return ("ok", q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(server.url, Closed, q)
        assert await get(q, 1) == [("remote", 4001, "bye")]
        for _ in range(200):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        assert client.exit_reason == ("remote", 4001, "bye")

    run(main)


def test_reconnects_with_backoff_on_the_loop(run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        await ws.send("hello")
        await ws.close(1001, "going away")

    server = ws_server(handler)

    class Again(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            state["q"].put_nowait(frame)
            return ("ok", state)

        def handle_disconnect(self, status: Any, state: Any) -> Any:
            state["downs"] += 1
            state["q"].put_nowait(("down", state["downs"], time.monotonic()))
            if state["downs"] >= 4:
                return ("ok", state)
            return ("reconnect_after", 0.05 * state["downs"], state)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(server.url, Again, {"q": q, "downs": 0})
        events = await get(q, 8)
        assert [e[0] if e[0] == "down" else e for e in events] == [
            ("text", "hello"), "down", ("text", "hello"), "down",
            ("text", "hello"), "down", ("text", "hello"), "down"]
        downs = [e for e in events if e[0] == "down"]
        # Each wait is at least the delay handle_disconnect asked for.
        for i in range(3):
            assert downs[i + 1][2] - downs[i][2] >= 0.05 * (i + 1)
        for _ in range(300):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        assert client.exit_reason == ("remote", 1001, "going away")

    run(main)
    assert server.connections == 4


def test_the_close_answer_waits_for_the_reply_of_an_async_callback_before_it(
        run: Any, wsx_server: Server) -> None:
    # A message and the peer's close in one read: the message's callback
    # awaits, so the close waits in the inbox; its answer goes out after
    # the callback's reply, never before it (the reply would be refused).
    class SlowReply(wsx.WebSocket):
        async def handle_frame(self, frame: Any, state: Any) -> Any:
            await asyncio.sleep(0.1)
            return ("reply", ("text", "answer to " + frame[1]), state)

    async def main() -> Any:
        client = await wsx.aio.start(wsx_server.url, SlowReply, None)
        wsx_server.wait_for_connections(1)
        wsx_server.send_raw(server_frame(0x1, b"q") + server_frame(0x8, b"\x03\xe8"))
        for _ in range(500):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        return client.alive, client.exit_reason

    assert run(main) == (False, ("remote", 1000, ""))
    assert wsx_server.wait_for_close() == (1000, "")
    assert [(f.kind, f.payload) for f in wsx_server.frames] == [
        ("text", b"answer to q"), ("close", b"\x03\xe8")]


def test_keepalive_timeout_on_the_loop(run: Any, wsx_server: Server) -> None:
    wsx_server.stall()  # upgrades, then never answers a ping
    server = wsx_server

    class Dead(Queue):
        def handle_disconnect(self, status: Any, q: Any) -> Any:
            q.put_nowait(status.reason)
            return ("ok", q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        t0 = time.monotonic()
        await wsx.aio.start_link(server.url, Dead, q, ping_interval=0.1, ping_timeout=0.2)
        (reason,) = await get(q, 1)
        assert reason[0] == "error" and "keepalive" in str(reason[1]).lower(), reason
        assert time.monotonic() - t0 < 3

    run(main)
    assert wsx_server.wait_for_frames("ping")[0].payload.startswith(b"wsx-keepalive-")


def test_backpressure_waits_without_blocking_the_loop(run: Any, wsx_server_factory: Any) -> None:
    server = wsx_server_factory(echo=False)
    server.stop_reading()

    async def main() -> None:
        client = await wsx.aio.start_link(server.url, Queue, asyncio.Queue(),
                                          write_limit=64 * 1024, send_timeout=0.3)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        payload = b"x" * 16384
        t0 = time.monotonic()
        with pytest.raises(wsx.TimeoutExpired) as info:
            for _ in range(10000):
                await wsx.aio.send_frame(client, ("binary", payload))
        elapsed = time.monotonic() - t0
        task.cancel()
        assert "write_limit" in str(info.value)
        assert ticks >= 10, f"the loop ran {ticks} ticks in {elapsed:.2f} s of waiting"
        assert client.alive  # the connection stays open
        server.stop_reading(False)
        await wsx.aio.stop(client, timeout=2)

    run(main)


# -------------------------------------------------------- async callbacks
def test_async_callbacks_keep_the_order_under_load(run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        for i in range(300):
            await ws.send(f"m{i}")
        async for msg in ws:
            await ws.send(msg)

    server = ws_server(handler)

    class Slow(AsyncQueue):
        async def handle_cast(self, msg: Any, q: Any) -> Any:
            await asyncio.sleep(0)
            await q.put(("cast", msg))
            return ("ok", q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        others = 0

        async def other_task() -> None:
            nonlocal others
            while True:
                await asyncio.sleep(0.001)
                others += 1

        task = asyncio.ensure_future(other_task())
        client = await wsx.aio.start_link(server.url, Slow, q)
        got = await get(q, 300)
        assert got == [("text", f"m{i}") for i in range(300)]
        wsx.cast(client, "c1")
        await wsx.aio.send_frame(client, ("text", "after"))
        wsx.cast(client, "c2")
        rest = await get(q, 3)
        # Messages keep their order; a frame read after a hold may come before them.
        assert sorted(rest) == [("cast", "c1"), ("cast", "c2"), ("text", "after")]
        assert rest.index(("cast", "c1")) < rest.index(("cast", "c2"))
        task.cancel()
        assert others > 10  # other tasks ran while the callbacks awaited
        await wsx.aio.stop(client)

    run(main)


def test_async_callback_reply_and_state(run: Any, echo_server: WSServer) -> None:
    class Replies(wsx.WebSocket):
        async def handle_connect(self, conn: Any, state: Any) -> Any:
            await asyncio.sleep(0.05)
            return ("ok", {**state, "connected": True})

        async def handle_cast(self, msg: Any, state: Any) -> Any:
            await asyncio.sleep(0.001)
            return ("reply", ("text", msg), state)

        async def handle_frame(self, frame: Any, state: Any) -> Any:
            await state["q"].put(frame)
            return ("ok", {**state, "n": state["n"] + 1})

        async def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
            await asyncio.sleep(0.001)
            wsx.reply(caller, (state["connected"], state["n"]))
            return ("ok", state)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, Replies,
                                          {"q": q, "n": 0, "connected": False})
        # start_link returned after the async handle_connect finished.
        assert wsx.sys.get_state(client)["connected"] is True
        for i in range(5):
            wsx.cast(client, f"c{i}")
        assert await get(q, 5) == [("text", f"c{i}") for i in range(5)]
        assert await wsx.aio.call(client, "count") == (True, 5)
        await wsx.aio.stop(client)

    run(main)


def test_async_callback_that_raises_crashes_only_its_client(run: Any, ws_server: Any) -> None:
    closes: list[Any] = []

    async def handler(ws: Any) -> None:
        try:
            async for msg in ws:
                await ws.send(msg)
        finally:
            closes.append((ws.close_code, ws.close_reason))

    server = ws_server(handler)

    class Boom(Queue):
        async def handle_frame(self, frame: Any, q: Any) -> Any:
            await asyncio.sleep(0.001)
            raise ValueError("boom in " + frame[1])

    async def main() -> None:
        bad = await wsx.aio.start(server.url, Boom, asyncio.Queue())
        q: asyncio.Queue[Any] = asyncio.Queue()
        good = await wsx.aio.start(server.url, Queue, q)
        await wsx.aio.send_frame(bad, ("text", "x"))
        for _ in range(300):
            if not bad.alive:
                break
            await asyncio.sleep(0.01)
        reason = bad.exit_reason
        assert reason[0] == "error" and isinstance(reason[1], ValueError)
        assert str(reason[1]) == "boom in x"
        await wsx.aio.send_frame(good, ("text", "still here"))
        assert await get(q, 1) == [("text", "still here")]
        await wsx.aio.stop(good)

    run(main)
    deadline = time.monotonic() + 5
    while (1011, "") not in closes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (1011, "") in closes


def test_cancelled_callback_crashes_the_client_not_the_loop(run: Any, echo_server: WSServer) -> None:
    tasks: list[Any] = []

    class Cancelled(Queue):
        async def handle_frame(self, frame: Any, q: Any) -> Any:
            await asyncio.sleep(0)  # from here on the callback runs in a task
            task = asyncio.current_task()
            assert task is not None
            if frame == ("text", "self"):
                task.cancel()  # cancelled from inside
            else:
                tasks.append(task)  # cancelled by the test
            await asyncio.sleep(5)
            return ("ok", q)

    async def main() -> None:
        for how in ("self", "other"):
            client = await wsx.aio.start(echo_server.url, Cancelled, asyncio.Queue())
            await wsx.aio.send_frame(client, ("text", how))
            if how == "other":
                while not tasks:
                    await asyncio.sleep(0.01)
                tasks[0].cancel()
            for _ in range(300):
                if not client.alive:
                    break
                await asyncio.sleep(0.01)
            reason = client.exit_reason
            assert reason[0] == "error" and isinstance(reason[1], asyncio.CancelledError), reason
            assert "handle_frame" in str(reason[1])
        await asyncio.sleep(0.05)  # the loop goes on

    run(main)


def test_async_callback_on_a_wsx_loop_client_is_a_clear_crash(echo_server: WSServer) -> None:
    class Async(Queue):
        async def handle_frame(self, frame: Any, q: Any) -> Any:
            return ("ok", q)

    client = wsx.start(echo_server.url, Async, None)
    wsx.send_frame(client, ("text", "x"))
    assert client.join(5)
    reason = client.exit_reason
    assert reason[0] == "error" and isinstance(reason[1], TypeError)
    assert "handle_frame" in str(reason[1]) and "wsx.aio.start_link" in str(reason[1])


def test_stop_waits_for_an_awaiting_callback(run: Any, echo_server: WSServer) -> None:
    class Busy(Queue):
        async def handle_frame(self, frame: Any, q: Any) -> Any:
            q.put_nowait("started")
            await asyncio.sleep(0.2)
            q.put_nowait("finished")
            return ("ok", q)

        def terminate(self, reason: Any, q: Any) -> None:
            q.put_nowait(("terminate", reason))

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, Busy, q)
        await wsx.aio.send_frame(client, ("text", "x"))
        assert await get(q, 1) == ["started"]
        assert await wsx.aio.stop(client, timeout=5)
        assert await get(q, 2) == ["finished", ("terminate", "normal")]

    run(main)


# ------------------------------------------------------------------ calls
def test_calls_from_many_tasks_none_lost_or_misrouted(run: Any, echo_server: WSServer) -> None:
    class Rpc(wsx.WebSocket):
        """Each call goes to the server and back; the echo answers its caller."""

        def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
            state[request] = caller
            return ("reply", ("text", request), state)

        def handle_frame(self, frame: Any, state: Any) -> Any:
            wsx.reply(state.pop(frame[1]), "echo:" + frame[1])
            return ("ok", state)

    async def main() -> None:
        client = await wsx.aio.start_link(echo_server.url, Rpc, {})

        async def one(i: int) -> Any:
            return await wsx.aio.call(client, f"r{i}", timeout=10)

        answers = await asyncio.gather(*(one(i) for i in range(500)))
        assert answers == [f"echo:r{i}" for i in range(500)]
        await wsx.aio.stop(client)

    run(main, timeout=30)


def test_call_timeout_and_a_dead_client(run: Any, echo_server: WSServer) -> None:
    class Silent(Queue):
        def handle_call(self, request: Any, caller: Any, q: Any) -> Any:
            if request == "die":
                raise RuntimeError("dying")
            return ("ok", q)  # never replies

    async def main() -> None:
        client = await wsx.aio.start(echo_server.url, Silent, asyncio.Queue())
        t0 = time.monotonic()
        with pytest.raises(wsx.TimeoutExpired):
            await wsx.aio.call(client, "x", timeout=0.2)
        assert 0.15 < time.monotonic() - t0 < 2
        with pytest.raises(wsx.NoProcessError):
            await wsx.aio.call(client, "die", timeout=5)
        with pytest.raises(wsx.NoProcessError):
            await wsx.aio.call(client, "again")
        with pytest.raises(ValueError, match="timeout"):
            await wsx.aio.call(client, "x", timeout=-1)

    run(main)


def test_calling_self_from_an_async_callback_is_refused(run: Any, echo_server: WSServer) -> None:
    class Selfish(Queue):
        async def handle_frame(self, frame: Any, q: Any) -> Any:
            me = wsx.self()
            for attempt in (lambda: wsx.aio.send_frame(me, ("text", "x")),
                            lambda: wsx.aio.call(me, "x")):
                try:
                    await attempt()
                except wsx.CallingSelfError as exc:
                    q.put_nowait(type(exc).__name__)
            return ("ok", q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, Selfish, q)
        await wsx.aio.send_frame(client, ("text", "go"))
        assert await get(q, 2) == ["CallingSelfError", "CallingSelfError"]
        # A blocking call on the loop's own thread is refused too.
        with pytest.raises(wsx.CallingSelfError):
            wsx.call(client, "x")
        await wsx.aio.stop(client)

    run(main)


# ------------------------------------------------------- threads and loops
def test_sending_from_another_thread(run: Any, echo_server: WSServer) -> None:
    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, Queue, q)
        answers: list[Any] = []

        def worker() -> None:
            for i in range(100):
                wsx.send_frame(client, ("text", f"t{i}"))
            answers.append(wsx.call(client, "from a thread"))

        thread = threading.Thread(target=worker)
        thread.start()
        got = await get(q, 100)
        assert got == [("text", f"t{i}") for i in range(100)]
        while thread.is_alive():
            await asyncio.sleep(0.01)
        assert answers == [("got", "from a thread")]
        await wsx.aio.stop(client)

    run(main)


def test_awaitables_drive_a_client_on_a_wsx_loop(run: Any, echo_server: WSServer) -> None:
    async def main() -> None:
        got: list[Any] = []
        ready = threading.Event()

        class Plain(wsx.WebSocket):
            def handle_frame(self, frame: Any, state: Any) -> Any:
                got.append(frame)
                if len(got) == 50:
                    ready.set()
                return ("ok", state)

            def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
                wsx.reply(caller, request * 2)
                return ("ok", state)

        client = await wsx.aio.start_link(echo_server.url, Plain, None,
                                          loop=wsx.get_default_loop())
        assert client.loop is wsx.get_default_loop()
        for i in range(50):
            await wsx.aio.send_frame(client, ("text", f"w{i}"))
        assert await wsx.aio.call(client, 21) == 42
        while not ready.is_set():
            await asyncio.sleep(0.01)
        assert got == [("text", f"w{i}") for i in range(50)]
        await wsx.aio.send_frame(client, "close")
        for _ in range(300):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        assert not client.alive

    run(main)


def test_failed_and_cancelled_starts(run: Any, free_port: int, wsx_server: Server) -> None:
    wsx_server.handshake(delay=10.0)  # reads the request, holds the answer
    server = wsx_server

    async def main() -> None:
        with pytest.raises(wsx.ConnError):
            await wsx.aio.start_link(f"ws://127.0.0.1:{free_port}/", Queue, None)
        task = asyncio.ensure_future(wsx.aio.start_link(server.url, Queue, None,
                                                        name="aio-cancelled-start"))
        await asyncio.sleep(0.2)
        client = wsx.whereis("aio-cancelled-start")
        assert client is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(300):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        assert not client.alive  # no client left behind

    run(main)


def test_async_handle_disconnect_and_terminate(run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        await ws.send("hi")
        await ws.close(4000, "again")

    server = ws_server(handler)

    class Lifecycle(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            state["q"].put_nowait(frame)
            return ("ok", state)

        async def handle_disconnect(self, status: Any, state: Any) -> Any:
            await asyncio.sleep(0.02)
            state["q"].put_nowait(("down", status.reason))
            state["downs"] += 1
            if state["downs"] == 1:
                return ("reconnect", state)
            if state["downs"] == 2:
                return ("ok", state)
            raise AssertionError("not reached")

        async def terminate(self, reason: Any, state: Any) -> None:
            await asyncio.sleep(0.05)
            state["q"].put_nowait(("terminated", reason))

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(server.url, Lifecycle, {"q": q, "downs": 0})
        assert await get(q, 5) == [
            ("text", "hi"), ("down", ("remote", 4000, "again")),
            ("text", "hi"), ("down", ("remote", 4000, "again")),
            ("terminated", ("remote", 4000, "again"))]
        for _ in range(300):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        assert client.exit_reason == ("remote", 4000, "again")

    run(main)
    assert server.connections == 2


def test_failing_async_handle_disconnect_and_an_exit_from_async_terminate(
        run: Any, ws_server: Any) -> None:
    async def handler(ws: Any) -> None:
        await ws.close(4000, "bye")

    server = ws_server(handler)

    class Raises(wsx.WebSocket):
        async def handle_disconnect(self, status: Any, state: Any) -> Any:
            await asyncio.sleep(0)
            raise ValueError("cannot decide")

    class Exits(wsx.WebSocket):
        async def terminate(self, reason: Any, state: Any) -> None:
            await asyncio.sleep(0)
            raise SystemExit("normal")

    async def main() -> None:
        bad = await wsx.aio.start(server.url, Raises, None)
        exits = await wsx.aio.start(server.url, Exits, None)
        for _ in range(300):
            if not bad.alive and not exits.alive:
                break
            await asyncio.sleep(0.01)
        assert bad.exit_reason[0] == "error" and isinstance(bad.exit_reason[1], ValueError)
        assert exits.exit_reason == "normal"  # exit(:normal) from terminate, as in WebSockex

    run(main)


# ------------------------------------------------------------ supervisors
def test_a_supervisor_restarts_asyncio_hosted_clients(run: Any, echo_server: WSServer) -> None:
    connects: list[Any] = []

    class Child(wsx.WebSocket):
        url = echo_server.url

        async def handle_connect(self, conn: Any, state: Any) -> Any:
            connects.append(asyncio.get_running_loop())
            return ("ok", state)

        async def handle_frame(self, frame: Any, state: Any) -> Any:
            await asyncio.sleep(0)
            if frame == ("text", "crash"):
                raise RuntimeError("crash on purpose")
            return ("ok", state)

    async def main() -> None:
        sup = await wsx.aio.Supervisor.start_link([(Child, None)], max_restarts=5)
        ((_, first, _, _),) = sup.which_children()
        assert isinstance(first, wsx.Client) and isinstance(first.loop, AsyncioLoop)
        assert first.loop.aloop is asyncio.get_running_loop()
        await wsx.aio.send_frame(first, ("text", "crash"))
        for _ in range(500):
            ((_, now, _, _),) = sup.which_children()
            if now is not None and now is not first and now.connection_state == "open":
                break
            await asyncio.sleep(0.01)
        assert now is not first and isinstance(now.loop, AsyncioLoop)
        assert not first.alive and first.exit_reason[0] == "error"
        # Dynamic children start on the loop too.
        extra = await wsx.aio.Supervisor.start_child(
            sup, {"id": "extra", "start": (Child.start_link, (None,))})
        assert isinstance(extra.loop, AsyncioLoop)
        await wsx.aio.Supervisor.terminate_child(sup, "extra")
        assert not extra.alive
        assert await wsx.aio.stop(sup)
        assert not now.alive

    run(main, timeout=30)
    assert len(connects) == 3 and len(set(map(id, connects))) == 1


def test_a_thread_starts_a_client_on_an_asyncio_loop(run: Any, echo_server: WSServer) -> None:
    async def main() -> None:
        aloop = asyncio.get_running_loop()
        box: list[Any] = []

        def worker() -> None:  # the blocking API, from a thread, onto the asyncio loop
            client = wsx.start_link(echo_server.url, Queue, asyncio.Queue(), loop=aloop)
            box.append(client)
            box.append(wsx.call(client, "hi"))
            box.append(wsx.stop(client))

        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.01)
        client, answer, stopped = box
        assert isinstance(client.loop, AsyncioLoop) and client.loop.aloop is aloop
        assert answer == ("got", "hi") and stopped

    run(main)
    with pytest.raises(TypeError, match="asyncio event loop"):
        wsx.start_link("ws://127.0.0.1:1/", Queue, None, loop=object())


def test_async_callbacks_run_in_tasks_of_their_own(run: Any, echo_server: WSServer) -> None:
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("var", default=None)

    class InTask(wsx.WebSocket):
        async def handle_frame(self, frame: Any, state: Any) -> Any:
            task = asyncio.current_task()
            state["tasks"].add(None if task is None else task.get_name())
            seen = var.get()  # what an earlier callback set must not show here
            token = var.set(frame[1])
            await asyncio.wait_for(asyncio.sleep(0), 5)  # timeouts need a current task
            var.reset(token)  # the same context across the await
            await state["q"].put((frame, seen))
            return ("ok", state)

        async def handle_cast(self, msg: Any, state: Any) -> Any:
            return "not a result"

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        state = {"q": q, "tasks": set()}
        client = await wsx.aio.start(echo_server.url, InTask, state)
        for i in range(50):
            await wsx.aio.send_frame(client, ("text", f"i{i}"))
        assert await get(q, 50) == [(("text", f"i{i}"), None) for i in range(50)]
        assert None not in state["tasks"] and len(state["tasks"]) == 50
        wsx.cast(client, "bad")
        for _ in range(300):
            if not client.alive:
                break
            await asyncio.sleep(0.01)
        reason = client.exit_reason
        assert reason[0] == "error" and isinstance(reason[1], wsx.BadResponseError), reason
        assert "handle_cast" in str(reason[1])

    run(main)


def test_wsx_sys_on_an_asyncio_hosted_client(run: Any, echo_server: WSServer) -> None:
    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(echo_server.url, AsyncQueue, q, debug=["statistics"])
        seen: dict[str, Any] = {}

        def inspect() -> None:  # from another thread, as an operator would
            seen["state"] = wsx.sys.get_state(client)
            wsx.sys.suspend(client)
            seen["status"] = wsx.sys.get_status(client)
            wsx.send_frame(client, ("text", "while suspended"))
            time.sleep(0.2)
            seen["held"] = q.qsize()
            wsx.sys.resume(client)

        thread = threading.Thread(target=inspect)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.01)
        assert seen["state"] is q and seen["held"] == 0
        assert await get(q, 1) == [("text", "while suspended")]
        assert wsx.sys.statistics(client)["frames_in"] >= 1  # on the loop thread: at once
        await wsx.aio.stop(client)

    run(main)


def test_reconnect_with_backoff_through_failed_attempts(run: Any, raw_server: Any) -> None:
    accepted: list[float] = []
    release = threading.Event()

    def flaky(sock: socket.socket) -> None:
        accepted.append(time.monotonic())
        request = read_request(sock)
        n = len(accepted)
        if n in (2, 3):
            return  # closes before answering: a failed attempt
        sock.sendall(accept_response(request))
        if n == 1:
            return  # opens, then closes at once: the first disconnect
        release.wait(10)

    server = raw_server(flaky)
    backoff = wsx.Backoff(base=0.1, factor=2.0, jitter=False)

    class Retries(Queue):
        def handle_connect(self, conn: Any, q: Any) -> Any:
            q.put_nowait("connected")
            return ("ok", q)

        def handle_disconnect(self, status: Any, q: Any) -> Any:
            q.put_nowait(("down", status.attempt_number))
            return ("reconnect_after", backoff.delay(status.attempt_number), q)

    async def main() -> None:
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start_link(server.url, Retries, q)
        assert await get(q, 5) == ["connected", ("down", 1), ("down", 2), ("down", 3),
                                   "connected"]
        assert len(accepted) == 4
        gaps = [b - a for a, b in zip(accepted, accepted[1:], strict=False)]
        for gap, attempt in zip(gaps, (1, 2, 3), strict=True):
            assert gap >= backoff.delay(attempt) * 0.95, (gaps, attempt)
        release.set()
        await wsx.aio.stop(client, timeout=2)

    run(main)


def test_review_edges_stop_reasons_guards_and_closed_loops(run: Any, ws_server: Any) -> None:
    async def closes_later(ws: Any) -> None:
        async for msg in ws:
            if msg == "close":
                await ws.close(4000, "asked")
            else:
                await ws.send(msg)

    server = ws_server(closes_later)

    class SlowDown(Queue):
        async def handle_disconnect(self, status: Any, q: Any) -> Any:
            q.put_nowait("deciding")
            await asyncio.sleep(0.2)
            return ("reconnect", q)

    async def main() -> None:
        # A stop with reason None ends the client with that reason.
        plain = await wsx.aio.start(server.url, Queue, asyncio.Queue())
        assert await wsx.aio.stop(plain, None) and plain.exit_reason is None
        # A stop asked while an async handle_disconnect waits wins over its decision.
        q: asyncio.Queue[Any] = asyncio.Queue()
        client = await wsx.aio.start(server.url, SlowDown, q)
        await wsx.aio.send_frame(client, ("text", "close"))
        assert await get(q, 1) == ["deciding"]
        assert await wsx.aio.stop(client, "enough", timeout=5)
        assert client.exit_reason == "enough"
        # A blocking supervisor start onto this very loop would never end.
        with pytest.raises(wsx.CallingSelfError):
            wsx.Supervisor.start_link([(Queue, None)], loop=asyncio.get_running_loop())

    run(main)


def test_after_the_loop_is_closed(echo_server: WSServer) -> None:
    import gc

    import wsx.io.aioloop

    holder: list[Any] = []

    async def main() -> None:
        holder.append(await wsx.aio.start(echo_server.url, Queue, asyncio.Queue()))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
    (client,) = holder
    wsx.cast(client, "dropped")  # no error: the loop is gone, the message is dropped
    # That post found the loop closed: the client ends, its socket closed.
    assert client.join(5)
    assert client.transport.sock is None
    assert client.exit_reason[0] == "error" and "was closed" in str(client.exit_reason[1])
    assert wsx.stop(client, timeout=0.2) is True  # it had ended already
    del loop
    gc.collect()
    assert not any(a.name == client.loop.name for a in wsx.io.aioloop._adapters.values())
