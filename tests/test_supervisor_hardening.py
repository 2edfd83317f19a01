"""Supervisors under hostile conditions, over real sockets on 127.0.0.1.

* blocking supervisor calls from a callback on the loop its children need
  (``CallingSelfError``, or a stop that only starts);
* children that outlast their ``shutdown`` (killed, never duplicated);
* children that die before the supervisor links them (no links or
  references kept: a soak of thousands of crash/restart cycles);
* a cancelled ``wsx.aio.Supervisor.start_link`` (nothing left running).

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wsx
import wsx.aio
import wsx.io.loop
from conftest import wait_until
from wsx.testing import Server


# ---------------------------------------------------------------- helpers
class Worker(wsx.WebSocket):
    """A supervised client; ``terminate`` appends ``(name, reason)`` to ``events``."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("ok", state)

    def terminate(self, reason: Any, state: Any) -> None:
        name, events = state
        events.append((name, reason))


def worker(url: str, name: str, events: list[Any], **spec: Any) -> dict[str, Any]:
    return {"id": name, "start": (wsx.start_link, (url, Worker, (name, events))), **spec}


def kids(sup: wsx.Supervisor) -> dict[Any, Any]:
    return {cid: proc for cid, proc, _type, _restart in sup.which_children()}


class Caller(wsx.WebSocket):
    """Runs the function it is cast in ``handle_cast``: ``("ok", value)`` or
    ``("raised", exc, seconds)`` goes to its state (a list)."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)

    def handle_cast(self, fn: Any, results: list[Any]) -> Any:
        t0 = time.monotonic()
        try:
            results.append(("ok", fn(), time.monotonic() - t0))
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            results.append(("raised", exc, time.monotonic() - t0))
        return ("ok", results)


@pytest.fixture
def default_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[wsx.Loop]:
    """A default loop of the test's own: a regression that wedges it (a callback
    waiting for the loop it blocks) wedges this one, not the one of later tests."""
    loop = wsx.Loop("test-default-loop")
    loop.start_thread()
    monkeypatch.setattr(wsx.io.loop, "_default_loop", loop)
    assert wsx.get_default_loop() is loop
    yield loop
    loop.stop()


# ------------------------------------------ blocking calls from a callback
CALLS: dict[str, Callable[[wsx.Supervisor, str, list[Any]], Any]] = {
    "start_child": lambda sup, url, ev: sup.start_child(worker(url, "b", ev)),
    "terminate_child": lambda sup, url, ev: sup.terminate_child("a"),
    "start_link": lambda sup, url, ev: wsx.Supervisor.start_link(
        [worker(url, "x", ev)], name="from-a-callback"),
    "join": lambda sup, url, ev: sup.join(0.5),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_blocking_supervisor_calls_from_a_callback_raise(
        wsx_server: Server, default_loop: wsx.Loop, call: str) -> None:
    # The supervisor's children run on the default loop (no loop= anywhere);
    # a client's callback on that loop must not wait for them: it would block
    # the loop they need (every client on it frozen, for ever).
    events: list[Any] = []
    url = wsx_server.url
    sup = wsx.Supervisor.start_link([worker(url, "a", events)])
    child = kids(sup)["a"]
    assert child.loop is default_loop
    results: list[Any] = []
    caller = wsx.start(url, Caller, results)
    try:
        wsx.cast(caller, lambda: CALLS[call](sup, url, events))
        [(outcome, value, _seconds)] = wait_until(lambda: results, timeout=3,
                                                  what=f"Supervisor {call} from a callback")
        assert outcome == "raised" and isinstance(value, wsx.CallingSelfError), value
        assert value.function == f"Supervisor.{call}"
        # The loop serves on; the supervisor and its child are untouched.
        wsx.cast(caller, lambda: "next")
        wait_until(lambda: len(results) == 2)
        assert results[1][:2] == ("ok", "next")
        assert kids(sup) == {"a": child} and child.alive and sup.alive
        assert wsx.whereis("from-a-callback") is None
        assert wsx_server.connections == 2
    finally:
        wsx.stop(caller, timeout=2)
        sup.stop(timeout=3)


def test_supervisor_stop_from_a_child_callback_only_starts_the_stop(
        wsx_server: Server, default_loop: wsx.Loop) -> None:
    # A child asks its own supervisor to stop: the call returns at once
    # (False: not stopped yet), then every child stops gracefully (close
    # handshake, terminate("shutdown")) and the supervisor exits.
    events: list[Any] = []
    results: list[Any] = []
    url = wsx_server.url
    stopper = {"id": "s", "shutdown": 2,
               "start": lambda: wsx.start_link(url, Caller, results)}
    sup = wsx.Supervisor.start_link([stopper, worker(url, "b", events, shutdown=2)],
                                    name="stopped-by-a-child")
    procs = kids(sup)
    wsx.cast(procs["s"], lambda: wsx.whereis("stopped-by-a-child").stop())  # type: ignore[union-attr]
    [(outcome, value, seconds)] = wait_until(lambda: results, timeout=3, what="stop returned")
    assert (outcome, value) == ("ok", False)
    assert seconds < 1.0  # it did not wait for the children (2 s shutdown each)
    assert sup.join(5), "the supervisor did not stop"
    assert sup.exit_reason == "normal"
    assert all(p.exit_reason == "shutdown" for p in procs.values())
    assert events == [("b", "shutdown")]
    wsx_server.wait_for_disconnects(2)
    assert sorted(wsx_server.closes) == [(1000, ""), (1000, "")]


# ------------------------------------- children that outlast their shutdown
def run_async(main: Callable[[], Any], timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def test_an_asyncio_child_that_outlasts_shutdown_is_killed(wsx_server: Server) -> None:
    url = wsx_server.url
    events: list[Any] = []
    seen: list[Any] = []

    class Stuck(wsx.WebSocket):
        async def handle_frame(self, frame: Any, state: Any) -> Any:
            events.append(("awaiting", frame))
            await asyncio.Event().wait()  # for ever: only a kill cancels it
            return ("ok", state)

        def terminate(self, reason: Any, state: Any) -> None:
            events.append(("terminate", reason))

    class Watcher(wsx.WebSocket):
        trap_exit = True

        def handle_frame(self, frame: Any, infos: list[Any]) -> Any:
            return ("ok", infos)

        def handle_info(self, msg: Any, infos: list[Any]) -> Any:
            infos.append(msg)
            return ("ok", infos)

    def on_terminate(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
        seen.append((metadata["client"], metadata["reason"]))

    async def stuck_child() -> Any:
        child = kids(sup)["stuck"]
        await asyncio.to_thread(wsx_server.wait_for_connections, wsx_server.connections)
        wsx_server.send("hold on")
        for _ in range(300):
            if ("awaiting", ("text", "hold on")) in events:
                break
            await asyncio.sleep(0.01)
        events.clear()
        return child

    async def main() -> None:
        nonlocal sup
        spec = {"id": "stuck", "start": (wsx.start_link, (url, Stuck, None)), "shutdown": 1}
        sup = await wsx.aio.Supervisor.start_link([spec])
        old = await stuck_child()
        infos: list[Any] = []
        watcher = await wsx.aio.start(url, Watcher, infos)
        ref = wsx.monitor(watcher, old)
        watcher.link(old)

        t0 = time.monotonic()
        await wsx.aio.Supervisor.terminate_child(sup, "stuck")
        assert time.monotonic() - t0 < 4
        # Killed: ended, its connection dropped, terminate not run; links and
        # monitors told, the exit reported.
        assert not old.alive and old.exit_reason == "killed"
        assert old.connection_state == "terminated"
        assert events == []
        assert kids(sup) == {"stuck": None}
        for _ in range(300):
            if len(infos) == 2:
                break
            await asyncio.sleep(0.01)
        assert ("DOWN", ref, old, "killed") in infos and ("EXIT", old, "killed") in infos
        assert (old, "killed") in seen
        await asyncio.to_thread(wsx_server.wait_for, lambda: wsx_server.open_connections == 1)

        # One copy only, restarted or not; the supervisor's stop kills it too.
        new = await wsx.aio.Supervisor.restart_child(sup, "stuck")
        assert kids(sup) == {"stuck": new} and new.alive and not old.alive
        await stuck_child()
        assert await wsx.aio.Supervisor.stop(sup, timeout=10)
        assert new.exit_reason == "killed" and events == []
        await asyncio.to_thread(wsx_server.wait_for, lambda: wsx_server.open_connections == 1)
        assert await wsx.aio.stop(watcher)

    sup: Any = None
    wsx.telemetry.attach("killed-child", ("wsx", "terminate"), on_terminate)
    try:
        run_async(main)
    finally:
        wsx.telemetry.detach("killed-child")
        if sup is not None and sup.alive:
            sup.stop(timeout=3)
    assert wsx_server.open_connections == 0


def test_a_child_blocked_in_a_sync_callback_is_killed_once_it_returns(
        wsx_server: Server, caplog: pytest.LogCaptureFixture) -> None:
    # Nothing can interrupt a synchronous callback: the supervisor waits for
    # it (no second copy starts meanwhile), then the kill runs on the loop.
    loop = wsx.Loop("test-blocked")
    loop.start_thread()
    release = threading.Event()
    events: list[Any] = []

    class Blocking(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            return ("ok", state)

        def handle_cast(self, msg: Any, state: Any) -> Any:
            events.append("blocking")
            release.wait(10)
            events.append("returned")
            return ("ok", state)

        def terminate(self, reason: Any, state: Any) -> None:
            events.append(("terminate", reason))

    spec = {"id": "b", "start": (wsx.start_link, (wsx_server.url, Blocking, None)),
            "shutdown": 0.3}
    sup = wsx.Supervisor.start_link([spec], loop=loop)
    try:
        old = kids(sup)["b"]
        wsx.cast(old, "block")
        wait_until(lambda: events == ["blocking"])
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (sup.terminate_child("b"), done.set()),
                                  daemon=True)
        with caplog.at_level(logging.WARNING, "wsx.process.supervisor"):
            waiter.start()
            assert not done.wait(1.5), "terminate_child returned while the child still ran"
            assert old.alive and kids(sup) == {"b": old}
            assert wsx_server.connections == 1
            release.set()
            assert done.wait(5)
        assert "killed" in caplog.text
        assert not old.alive and old.exit_reason == "killed"
        assert events == ["blocking", "returned"]  # no terminate
        wsx_server.wait_for(lambda: wsx_server.open_connections == 0)
        new = sup.restart_child("b")
        assert kids(sup) == {"b": new} and new.alive and wsx_server.open_connections == 1
    finally:
        release.set()
        sup.stop(timeout=5)
        loop.stop()


# -------------------------- children that die before the supervisor links them
def test_link_to_an_exited_process_keeps_nothing(wsx_server: Server) -> None:
    infos: list[Any] = []

    class Trapper(wsx.WebSocket):
        trap_exit = True

        def handle_info(self, msg: Any, state: list[Any]) -> Any:
            state.append(msg)
            return ("ok", state)

    events: list[Any] = []
    dead = wsx.start(wsx_server.url, Worker, ("dead", events))
    assert wsx.stop(dead, "gone")
    live = wsx.start(wsx_server.url, Trapper, infos)
    try:
        live.link(dead)
        wait_until(lambda: infos == [("EXIT", dead, "gone")])
        dead.link(live)  # either way round
        wait_until(lambda: len(infos) == 2)
        assert infos[1] == ("EXIT", dead, "gone")
        assert live.linked() == [] and dead.linked() == []
        # And a process's links go with its exit, on both sides.
        other = wsx.start(wsx_server.url, Worker, ("other", events))
        live.link(other)
        assert live.linked() == [other] and other.linked() == [live]
        assert wsx.stop(other, "bye")
        assert live.linked() == [] and other.linked() == []
    finally:
        wsx.stop(live)


def test_soak_crash_restart_keeps_no_dead_children(wsx_server: Server,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A child that crashes right after connecting, thousands of times: some
    # die before the supervisor links them. No link to a dead child and no
    # reference to one may stay behind.
    cycles = 2000
    refs: list[weakref.ref[wsx.Client]] = []
    url = wsx_server.url

    class Crasher(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            return ("ok", state)

        def handle_connect(self, conn: Any, state: Any) -> Any:
            if state == "crash":
                wsx.cast(wsx.self(), "crash")
            return ("ok", state)

        def handle_cast(self, msg: Any, state: Any) -> Any:
            return "not a valid result"  # crash: ("error", BadResponseError)

    def start() -> wsx.Client:
        client = wsx.start_link(url, Crasher, "crash" if len(refs) < cycles else "stay")
        refs.append(weakref.ref(client))
        return client

    # Crash reports hold the exit reasons (tracebacks: the clients): not kept here.
    monkeypatch.setattr(logging.getLogger("wsx.crash"), "disabled", True)
    sup = wsx.Supervisor.start_link([{"id": "c", "start": start}],
                                    max_restarts=10 * cycles, max_seconds=60)
    try:
        wait_until(lambda: len(refs) > cycles, timeout=120, what=f"{cycles} restarts")
        last = wait_until(lambda: (p := kids(sup)["c"]) is not None and p.alive and p,
                          what="the last child up")
        assert last is refs[-1]()
        time.sleep(0.2)  # late exit notices of old children handled
        assert sup.alive and kids(sup) == {"c": last}
        # Links: the supervisor and its one live child, nothing else.
        assert sup.linked() == [last]
        assert last.linked() == [sup]
        gc.collect()
        kept = [r() for r in refs[:-1] if r() is not None]
        assert len(kept) <= 3, f"{len(kept)} dead children of {cycles} still referenced"
    finally:
        sup.stop(timeout=10)


# ------------------------------------ a cancelled wsx.aio.Supervisor.start_link
def test_a_cancelled_aio_supervisor_start_leaves_nothing_running(wsx_server: Server) -> None:
    url = wsx_server.url
    events: list[Any] = []
    wsx_server.handshake(101, times=1)  # the first child connects at once
    wsx_server.handshake(101, delay=3.0, times=1)  # the second one's handshake is slow

    def child(name: str) -> dict[str, Any]:
        return {"id": name, "start": lambda: wsx.start_link(url, Worker, (name, events),
                                                              name=f"cancelled-{name}")}

    names = ["cancelled-sup", "cancelled-c1", "cancelled-c2"]

    async def main() -> None:
        start = wsx.aio.Supervisor.start_link([child("c1"), child("c2")], name="cancelled-sup")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(start, 0.5)
        # Nobody holds a handle: the supervisor and both clients end by themselves.
        for _ in range(500):
            if all(wsx.whereis(n) is None for n in names):
                break
            await asyncio.sleep(0.01)
        assert [n for n in names if wsx.whereis(n) is not None] == []

    run_async(main)
    wsx_server.wait_for(lambda: wsx_server.open_connections == 0, timeout=8)
    assert ("c1", "shutdown") in events


@pytest.mark.parametrize("shutdown", [-1, "5", float("nan"), True])
def test_a_shutdown_that_is_not_a_duration_is_refused(shutdown: Any) -> None:
    spec = {"id": "c", "start": lambda: None, "shutdown": shutdown}
    with pytest.raises(wsx.SupervisorError, match="shutdown must be"):
        wsx.Supervisor.start_link([spec])
