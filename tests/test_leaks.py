"""Soak tests: timers, monitors and messages leave nothing behind, over real connections.

Each test repeats a pattern thousands of times (or hundreds, when each round
is a connection) against the ``wsx_server`` fixture and asserts that what
is left afterwards stays bounded: live loop timers, objects still
referenced, monitors on a process, callbacks queued on a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wsx
from wsx.testing import Server

TIMEOUT = 10.0


class Tick:
    """A message whose instances can be counted while anything references them."""

    alive: weakref.WeakSet[Tick] = weakref.WeakSet()

    def __init__(self) -> None:
        Tick.alive.add(self)


class State:
    """A client's state: the idle timer and the frames seen."""

    alive: weakref.WeakSet[State] = weakref.WeakSet()

    def __init__(self) -> None:
        self.timer: Any = None
        self.frames = 0
        self.downs = 0
        State.alive.add(self)


class Idle(wsx.WebSocket[State]):
    """The idle-timeout idiom: each frame cancels the last send_after and schedules another."""

    def handle_frame(self, frame: wsx.Frame, state: State) -> wsx.FrameResult[State]:
        if state.timer is not None:
            state.timer.cancel()
        state.timer = wsx.send_after(wsx.self(), Tick(), 30.0)
        state.frames += 1
        return ("ok", state)

    def handle_info(self, msg: Any, state: State) -> wsx.FrameResult[State]:
        if type(msg) is tuple and msg and msg[0] == "DOWN":
            state.downs += 1
        return ("ok", state)


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    """Count only what this test makes."""
    Tick.alive.clear()
    State.alive.clear()


def settle() -> None:
    for _ in range(3):
        gc.collect()


# ---------------------------------------------------------------- loops
@pytest.fixture(params=["wsx", "asyncio"])
def host(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A loop of the test's own, running in a thread: a wsx.Loop, or an asyncio loop."""
    if request.param == "wsx":
        loop = wsx.Loop("leak-test")
        thread = loop.start_thread(close=True)
        yield loop
        loop.stop()
        thread.join(TIMEOUT)
        return
    aloop = asyncio.new_event_loop()
    athread = threading.Thread(target=aloop.run_forever, daemon=True)
    athread.start()
    yield aloop
    aloop.call_soon_threadsafe(aloop.stop)
    athread.join(TIMEOUT)
    aloop.close()


def on_loop(host: Any, fn: Callable[[], Any]) -> Any:
    """``fn()`` run on the loop's thread (after everything posted to it before)."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    host.call_soon_threadsafe(lambda: done.set_result(fn()))
    return done.result(TIMEOUT)


def live_timers(host: Any) -> int:
    """Timers scheduled on the loop and not cancelled."""
    if isinstance(host, wsx.Loop):
        return int(on_loop(host, lambda: host.timer_count))
    return int(on_loop(host, lambda: sum(1 for h in host._scheduled if not h.cancelled())))


def heap_size(host: Any) -> int:
    """Entries in the loop's timer heap, cancelled ones included (its memory)."""
    if isinstance(host, wsx.Loop):
        return int(on_loop(host, lambda: len(host._schedule.timers)))
    return int(on_loop(host, lambda: len(host._scheduled)))


def wait_for(pred: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {TIMEOUT} s: {what}")
        time.sleep(0.005)


# ------------------------------------------------------------ 9a: cancel
def test_cancelled_send_after_leaves_no_loop_timer_from_a_callback(
        wsx_server: Server, host: Any) -> None:
    # The idle timeout of handle_frame: 3000 frames, each cancelling the
    # previous 30 s timer and scheduling a new one, leave one live timer.
    state = State()
    client = wsx.start(wsx_server.url, Idle, state, loop=host)
    base = live_timers(host)
    n = 3000
    for i in range(n):
        wsx.send_frame(client, ("text", str(i)))
    wait_for(lambda: state.frames == n, f"{n} frames echoed")
    settle()
    assert live_timers(host) - base <= 2
    assert heap_size(host) < 200  # the cancelled entries are compacted away
    assert len(Tick.alive) <= 2
    assert wsx.stop(client, timeout=TIMEOUT)


def test_cancelled_send_after_leaves_no_loop_timer_from_another_thread(
        wsx_server: Server, host: Any) -> None:
    # The same idiom driven from a thread: cancel() then runs off the loop,
    # each time once the loop has started the timer.
    client = wsx.start(wsx_server.url, Idle, State(), loop=host)
    base = live_timers(host)
    last = None
    for _ in range(3000):
        timer = wsx.send_after(client, Tick(), 30.0)
        on_loop(host, lambda: None)
        if last is not None:
            assert last.cancel() is True
        last = timer
    settle()
    assert live_timers(host) - base <= 2
    assert heap_size(host) < 200
    assert len(Tick.alive) <= 2
    assert last is not None and last.cancel() is True and last.cancel() is False
    assert wsx.stop(client, timeout=TIMEOUT)


# ------------------------------------------------- 9c: the target exits
def test_send_after_to_a_client_that_exits_keeps_nothing_of_it(
        wsx_server: Server, host: Any) -> None:
    # 40 clients, each sent 100 messages for in an hour, then stopped: their
    # 4000 timers are cancelled by the exits, and no client (nor its state)
    # stays referenced.
    base = live_timers(host)
    clients: weakref.WeakSet[wsx.Client] = weakref.WeakSet()
    for _ in range(40):
        client = wsx.start(wsx_server.url, Idle, State(), loop=host)
        clients.add(client)
        timers = [wsx.send_after(client, Tick(), 3600.0) for _ in range(100)]
        assert wsx.stop(client, timeout=TIMEOUT)
        assert wsx.send_after(client, Tick(), 3600.0).cancel() is False  # dead: none
        del client
    assert live_timers(host) == base
    assert heap_size(host) < 200
    assert [t.cancel() for t in timers] == [False] * 100  # cancelled by the exit
    del timers
    settle()
    assert len(Tick.alive) == 0
    assert len(clients) == 0
    assert len(State.alive) == 0


# ------------------------------------------------ 9b: the watcher exits
class Worker(wsx.WebSocket[Any]):
    """Monitors the hub (its state) once connected, as a restarted worker would."""

    def handle_connect(self, conn: wsx.Conn, hub: Any) -> wsx.ConnectResult[Any]:
        wsx.monitor(wsx.self(), hub)
        return ("ok", hub)


def test_a_watcher_that_exits_leaves_no_monitor_on_its_target(wsx_server: Server) -> None:
    # 300 workers in turn monitor a hub and end: the hub holds none of their
    # monitors afterwards, and keeps none of them alive.
    hub = wsx.start(wsx_server.url, Idle, State())
    workers: weakref.WeakSet[wsx.Client] = weakref.WeakSet()
    for _ in range(300):
        worker = wsx.start(wsx_server.url, Worker, hub)
        workers.add(worker)
        assert wsx.stop(worker, timeout=TIMEOUT)
        del worker
    assert len(hub._monitors) == 0
    settle()
    assert len(workers) <= 2  # (the last ones may linger in a loop's locals)
    assert wsx.stop(hub, timeout=TIMEOUT)


def test_a_watcher_of_many_short_lived_targets_keeps_none_of_them(
        wsx_server: Server) -> None:
    # The other way round: the DOWN of each target (or a demonitor) lets it go.
    watcher_state = State()
    watcher = wsx.start(wsx_server.url, Idle, watcher_state)
    targets: weakref.WeakSet[wsx.Client] = weakref.WeakSet()
    for i in range(200):
        target = wsx.start(wsx_server.url, Idle, State())
        targets.add(target)
        ref = wsx.monitor(watcher, target)
        if i % 2:
            assert wsx.demonitor(ref) is True
        assert wsx.stop(target, timeout=TIMEOUT)
        del target, ref
    wait_for(lambda: watcher_state.downs == 100, "100 DOWN messages")
    settle()
    assert len(targets) <= 2
    assert wsx.stop(watcher, timeout=TIMEOUT)


# ------------------------------------------- 10: messages to the dead
def test_messages_to_a_dead_own_loop_client_are_dropped(wsx_server: Server) -> None:
    # A client on a loop of its own ends, and its loop with it: 100k casts
    # and 100k sends to it afterwards leave nothing queued on that loop.
    client = wsx.start(wsx_server.url, Idle, State(), loop="own")
    loop = client.loop
    thread = loop._thread
    assert isinstance(loop, wsx.Loop) and thread is not None
    assert wsx.stop(client, timeout=TIMEOUT)
    thread.join(TIMEOUT)
    assert not thread.is_alive() and loop._closed
    for i in range(100_000):
        wsx.cast(client, i)
        wsx.send(client, i)
    wsx.send_after(client, "late", 0.0)
    assert len(loop._ready) == 0
    # The loop itself: a callback it could never run is not kept.
    loop.call_soon_threadsafe(print, "never")
    loop.post(print, "never")
    assert len(loop._ready) == 0


def test_messages_to_a_dead_client_are_not_posted_to_its_loop(wsx_server: Server) -> None:
    # On a loop that outlives the client (stopped here, so that nothing
    # posted to it runs and the queue shows what was posted).
    loop = wsx.Loop("leak-test-dead")
    thread = loop.start_thread()
    client = wsx.start(wsx_server.url, Idle, State(), loop=loop)
    assert wsx.stop(client, timeout=TIMEOUT)
    loop.stop()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    for i in range(100_000):
        wsx.cast(client, i)
        wsx.send(client, i)
    wsx.send_after(client, "late", 0.0)
    assert len(loop._ready) == 0
    loop.close()
