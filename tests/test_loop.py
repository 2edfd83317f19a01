"""wsx.Loop: timers, thread-safe callbacks, I/O readiness and DNS, on real sockets."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import wsx
import wsx.io.loop
import wsx.io.readiness
import wsx.io.schedule
from conftest import wait_until
from wsx.io.loop import Loop, get_default_loop

# epoll: the loop's schedule compiled (wsx/io/schedule.py as wsx.io._schedule)
# when it is built; epoll-python: the same source, not compiled; selectors: the
# portable backend.
BACKENDS = ["selectors"]
if wsx.io.loop._HAVE_EPOLL:
    compiled_schedule = wsx.io.loop._Schedule is not wsx.io.schedule.Schedule
    BACKENDS += ["epoll", "epoll-python"] if compiled_schedule else ["epoll"]


@pytest.fixture(params=BACKENDS)
def loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    """A Loop running in its own thread, stopped and closed afterwards (each backend)."""
    epoll = request.param.startswith("epoll")
    monkeypatch.setattr(wsx.io.loop, "_HAVE_EPOLL", epoll)
    if request.param == "epoll-python":
        monkeypatch.setattr(wsx.io.loop, "_Schedule", wsx.io.schedule.Schedule)
        monkeypatch.setattr(wsx.io.readiness, "_epoll_twin", None)
    lp = Loop("test-loop")
    assert (lp._io.epoll is not None) == epoll
    thread = threading.Thread(target=lp.run, name="test-loop", daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not lp.running and time.monotonic() < deadline:
        time.sleep(0.001)
    assert lp.running
    yield lp
    lp.stop()
    thread.join(5)
    assert not thread.is_alive(), "the loop did not stop"
    lp.close()


def on_loop(lp: Loop, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Run ``fn()`` on the loop thread and return its result."""
    box: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001
            box.append((False, exc))
        done.set()

    lp.call_soon_threadsafe(run)
    assert done.wait(timeout), "the loop did not run the callback"
    ok, value = box[0]
    if not ok:
        raise value
    return value



# ---------------------------------------------------------------------- timers
def test_timers_fire_in_deadline_order(loop: Loop) -> None:
    fired: list[str] = []
    done = threading.Event()

    def schedule() -> None:
        loop.call_later(0.06, fired.append, "c")
        loop.call_later(0.02, fired.append, "a")
        loop.call_later(0.04, fired.append, "b")
        loop.call_later(0.08, done.set)

    on_loop(loop, schedule)
    assert done.wait(5)
    assert fired == ["a", "b", "c"]


def test_timers_with_same_deadline_run_in_scheduling_order(loop: Loop) -> None:
    fired: list[int] = []
    done = threading.Event()

    def schedule() -> None:
        when = loop.time() + 0.02
        for i in range(20):
            loop.call_at(when, fired.append, i)
        loop.call_at(when, done.set)

    on_loop(loop, schedule)
    assert done.wait(5)
    assert fired == list(range(20))


def test_timer_waits_at_least_its_delay(loop: Loop) -> None:
    fired: list[float] = []
    done = threading.Event()
    start: list[float] = []

    def schedule() -> None:
        start.append(time.monotonic())
        loop.call_later(0.15, lambda: (fired.append(time.monotonic()), done.set()))

    on_loop(loop, schedule)
    assert done.wait(5)
    assert fired[0] - start[0] >= 0.149


def test_cancelled_timer_does_not_fire(loop: Loop) -> None:
    fired: list[str] = []
    done = threading.Event()

    def schedule() -> None:
        t1 = loop.call_later(0.02, fired.append, "cancelled")
        loop.call_later(0.01, fired.append, "kept")
        t1.cancel()
        t1.cancel()  # idempotent
        loop.call_later(0.05, done.set)

    on_loop(loop, schedule)
    assert done.wait(5)
    assert fired == ["kept"]


def test_timer_cancelled_by_an_earlier_timer_of_the_same_iteration(loop: Loop) -> None:
    fired: list[str] = []
    done = threading.Event()

    def schedule() -> None:
        # Same deadline: both are due in the same iteration, the first runs first.
        when = loop.time() + 0.02
        later: list[Any] = []
        loop.call_at(when, lambda: later[0].cancel())
        later.append(loop.call_at(when, fired.append, "second"))
        loop.call_at(when + 0.03, done.set)

    on_loop(loop, schedule)
    assert done.wait(5)
    assert fired == []


def test_timer_cancelled_by_a_posted_callback_once_due(loop: Loop) -> None:
    """A due timer cancelled by a callback that runs before it must not fire."""
    fired: list[str] = []
    done = threading.Event()

    def schedule() -> None:
        timer = loop.call_later(0.0, fired.append, "timer")
        loop.call_soon(timer.cancel)  # ready before the timer is moved to ready
        loop.call_later(0.03, done.set)

    for _ in range(20):
        done.clear()
        on_loop(loop, schedule)
        assert done.wait(5)
    assert fired == []


def test_timer_cancel_after_it_ran_is_a_noop(loop: Loop) -> None:
    ran = threading.Event()
    timers: list[Any] = []
    on_loop(loop, lambda: timers.append(loop.call_later(0.0, ran.set)))
    assert ran.wait(5)
    timers[0].cancel()
    assert on_loop(loop, lambda: "still running") == "still running"


# ------------------------------------------------------------------ callbacks
def test_call_soon_threadsafe_from_many_threads_keeps_per_thread_order(loop: Loop) -> None:
    n_threads, per_thread = 8, 2000
    seen: dict[int, list[int]] = {t: [] for t in range(n_threads)}
    loop_threads: set[int] = set()
    barrier = threading.Barrier(n_threads)

    def record(t: int, i: int) -> None:
        loop_threads.add(threading.get_ident())
        seen[t].append(i)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, t, i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert wait_until(lambda: sum(len(v) for v in seen.values()) == n_threads * per_thread)
    for t in range(n_threads):
        assert seen[t] == list(range(per_thread)), f"thread {t} out of order"
    assert len(loop_threads) == 1


def test_call_soon_threadsafe_never_loses_a_wakeup(loop: Loop) -> None:
    """An idle loop (no timers, no I/O) must always wake for a posted callback.

    Posts race with the loop draining its wake-up pipe: a post must never be
    left waiting for an unrelated event.
    """
    barrier = threading.Barrier(2)
    for round_ in range(300):
        events = [threading.Event(), threading.Event()]

        def poster(ev: threading.Event) -> None:
            barrier.wait()
            loop.call_soon_threadsafe(ev.set)

        threads = [threading.Thread(target=poster, args=(ev,)) for ev in events]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for ev in events:
            assert ev.wait(2), f"round {round_}: a posted callback never ran (lost wake-up)"
        # A single post on a now idle loop must wake it too.
        single = threading.Event()
        loop.call_soon_threadsafe(single.set)
        assert single.wait(2), f"round {round_}: lost wake-up on an idle loop"


def test_call_soon_from_loop_thread_runs_after_current_callback(loop: Loop) -> None:
    order: list[str] = []
    done = threading.Event()

    def first() -> None:
        loop.call_soon(order.append, "soon")
        loop.call_soon_threadsafe(order.append, "threadsafe")
        order.append("first")
        loop.call_soon(done.set)

    loop.call_soon_threadsafe(first)
    assert done.wait(5)
    assert order == ["first", "soon", "threadsafe"]


def test_raising_callbacks_do_not_stop_the_loop(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("boom from a callback")

    with caplog.at_level(logging.ERROR, logger="wsx.io.loop"):
        loop.call_soon_threadsafe(boom)
        assert on_loop(loop, lambda: 1) == 1
        on_loop(loop, lambda: loop.call_later(0.0, boom))
        time.sleep(0.05)
        assert on_loop(loop, lambda: 2) == 2
    assert loop.running
    assert "boom from a callback" in caplog.text


def test_system_exit_in_a_callback_does_not_stop_the_loop(loop: Loop) -> None:
    def bye() -> None:
        raise SystemExit(1)

    loop.call_soon_threadsafe(bye)
    on_loop(loop, lambda: loop.call_later(0.0, bye))
    time.sleep(0.05)
    assert loop.running
    assert on_loop(loop, lambda: "alive") == "alive"


def test_raising_reader_does_not_stop_the_loop(loop: Loop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    calls: list[int] = []

    def reader() -> None:
        calls.append(1)
        a.recv(100)
        raise ValueError("reader fails")

    try:
        on_loop(loop, lambda: loop.add_reader(a, reader))
        b.send(b"x")
        assert wait_until(lambda: len(calls) == 1)
        b.send(b"y")
        assert wait_until(lambda: len(calls) == 2)
        assert on_loop(loop, lambda: "alive") == "alive"
        on_loop(loop, lambda: loop.remove_reader(a))
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------ I/O
def test_add_reader_and_remove_reader_with_socketpair(loop: Loop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    got: list[bytes] = []
    threads: set[int] = set()

    def reader() -> None:
        threads.add(threading.get_ident())
        got.append(a.recv(100))

    try:
        on_loop(loop, lambda: loop.add_reader(a, reader))
        b.send(b"one")
        assert wait_until(lambda: got == [b"one"])
        b.send(b"two")
        assert wait_until(lambda: got == [b"one", b"two"])
        on_loop(loop, lambda: loop.remove_reader(a))
        b.send(b"three")
        time.sleep(0.1)
        assert got == [b"one", b"two"]
        assert a.recv(100) == b"three"
        loop_ident = on_loop(loop, threading.get_ident)
        assert threads == {loop_ident}
        # Removing twice, or removing what was never added, is harmless.
        on_loop(loop, lambda: loop.remove_reader(a))
        on_loop(loop, lambda: loop.remove_writer(a))
        on_loop(loop, lambda: loop.remove_all(a))
    finally:
        a.close()
        b.close()


def test_add_writer_reader_and_writer_on_one_socket(loop: Loop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    writable = threading.Event()
    got: list[bytes] = []

    def writer() -> None:
        a.send(b"from-writer")
        loop.remove_writer(a)  # keeps the reader
        writable.set()

    def reader() -> None:
        got.append(a.recv(100))

    try:
        def setup() -> None:
            loop.add_reader(a, reader)
            loop.add_writer(a, writer)

        on_loop(loop, setup)
        assert writable.wait(5)
        assert wait_until(lambda: _recv_ready(b) == b"from-writer")
        b.send(b"to-reader")
        assert wait_until(lambda: got == [b"to-reader"])
        # Replace the reader: the new callback is used.
        got2: list[bytes] = []
        on_loop(loop, lambda: loop.add_reader(a, lambda: got2.append(a.recv(100))))
        b.send(b"again")
        assert wait_until(lambda: got2 == [b"again"])
        assert got == [b"to-reader"]
        on_loop(loop, lambda: loop.remove_all(a))
    finally:
        a.close()
        b.close()


_pending: dict[socket.socket, bytes] = {}


def _recv_ready(sock: socket.socket) -> bytes:
    # Keyed by the socket, not its fd: a later test's socket may reuse the fd.
    try:
        _pending[sock] = _pending.get(sock, b"") + sock.recv(100)
    except BlockingIOError:
        pass
    return _pending.get(sock, b"")


def test_writer_removed_by_reader_in_same_iteration_is_not_called(loop: Loop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    calls: list[str] = []

    def reader() -> None:
        calls.append("reader")
        a.recv(100)
        loop.remove_all(a)

    def writer() -> None:
        calls.append("writer")

    try:
        b.send(b"x")
        time.sleep(0.02)

        def setup() -> None:
            loop.add_reader(a, reader)
            loop.add_writer(a, writer)

        # Both ready in the same select() call; the reader unregisters first.
        on_loop(loop, setup)
        assert wait_until(lambda: "reader" in calls)
        time.sleep(0.05)
        assert calls == ["reader"]
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------ DNS
def test_resolve_runs_off_thread_and_calls_back_on_loop_thread(loop: Loop) -> None:
    result: list[Any] = []
    done = threading.Event()

    def callback(infos: Any, error: Any) -> None:
        result.append((infos, error, threading.get_ident()))
        done.set()

    on_loop(loop, lambda: loop.resolve("localhost", 8080, callback))
    assert done.wait(10)
    infos, error, ident = result[0]
    assert error is None
    assert any(info[4][1] == 8080 for info in infos)
    assert ident == on_loop(loop, threading.get_ident)


def test_resolve_error_is_handed_to_the_callback(loop: Loop) -> None:
    result: list[Any] = []
    done = threading.Event()

    def callback(infos: Any, error: Any) -> None:
        result.append((infos, error))
        done.set()

    on_loop(loop, lambda: loop.resolve("no-such-host.invalid", 80, callback))
    assert done.wait(30)
    infos, error = result[0]
    assert infos is None
    assert isinstance(error, OSError)


def test_resolve_does_not_block_the_loop(loop: Loop) -> None:
    # While a resolution runs, the loop keeps serving other callbacks.
    done = threading.Event()
    on_loop(loop, lambda: loop.resolve("localhost", 1, lambda infos, err: done.set()))
    assert on_loop(loop, lambda: "responsive") == "responsive"
    assert done.wait(10)


# ------------------------------------------------------------------ lifecycle
def test_run_stop_close_and_properties() -> None:
    lp = Loop("lifecycle")
    assert not lp.running
    assert not lp.in_loop_thread()
    thread = threading.Thread(target=lp.run, daemon=True)
    thread.start()
    assert wait_until(lambda: lp.running)
    assert on_loop(lp, lp.in_loop_thread) is True
    assert not lp.in_loop_thread()
    with pytest.raises(RuntimeError):
        on_loop(lp, lp.run)  # already running
    with pytest.raises(RuntimeError):
        lp.close()  # running
    lp.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert not lp.running
    lp.close()
    # Posting to a closed loop does not raise.
    lp.call_soon_threadsafe(lambda: None)


def test_loop_can_run_again_after_stop() -> None:
    lp = Loop("rerun")
    try:
        for _ in range(2):
            thread = threading.Thread(target=lp.run, daemon=True)
            thread.start()
            assert wait_until(lambda: lp.running)
            assert on_loop(lp, lambda: 42) == 42
            lp.stop()
            thread.join(5)
            assert not thread.is_alive()
    finally:
        lp.close()


def test_start_thread_and_default_loop() -> None:
    lp = Loop("started")
    thread = lp.start_thread()
    try:
        assert thread.daemon
        assert lp.start_thread() is thread  # idempotent while running
        assert wait_until(lambda: lp.running)
        assert on_loop(lp, lambda: threading.current_thread().name) == "started"
    finally:
        lp.stop()
        thread.join(5)
        lp.close()
    default = get_default_loop()
    assert default is get_default_loop() is wsx.get_default_loop()
    assert default.running


def test_timer_scheduled_from_another_thread_via_call_soon_threadsafe(loop: Loop) -> None:
    # call_later is loop-thread only; from another thread, post it.
    done = threading.Event()
    loop.call_soon_threadsafe(loop.call_later, 0.01, done.set)
    assert done.wait(5)


# ------------------------------------------------------------------ timer heap
def test_cancelled_timers_leave_the_heap(loop: Loop) -> None:
    # Each connection leaves cancelled connect/handshake timers behind: they
    # must not pile up until their (possibly far) deadlines.
    def schedule_and_cancel() -> tuple[int, int]:
        timers = [loop.call_later(100.0 + i, _never) for i in range(10_000)]
        for timer in timers:
            timer.cancel()
        return len(loop._schedule.timers), loop.timer_count

    heap_size, live = on_loop(loop, schedule_and_cancel)
    assert live == 0
    assert heap_size <= 32, heap_size
    assert on_loop(loop, lambda: "still running") == "still running"


def test_heap_compacts_once_cancelled_timers_are_the_majority(loop: Loop) -> None:
    fired: list[int] = []
    done = threading.Event()
    sizes: list[int] = []
    expected: list[int] = []

    def schedule() -> None:
        base = loop.time() + 0.2
        timers = []
        for i in range(1000):
            when = base + (i % 7) * 0.01 + i * 1e-5  # heap order differs from i
            timers.append((when, i, loop.call_at(when, fired.append, i)))
        for _when, i, timer in timers[:500]:
            if i % 2:
                timer.cancel()
        sizes.append(len(loop._schedule.timers))
        for _when, i, timer in timers:
            if (i % 2 and i >= 500) or i % 4 == 0:
                timer.cancel()
        sizes.append(len(loop._schedule.timers))
        sizes.append(loop.timer_count)
        kept = sorted((when, i) for when, i, timer in timers if not timer.cancelled)
        expected.extend(i for _, i in kept)
        loop.call_at(base + 0.2, done.set)

    on_loop(loop, schedule)
    assert done.wait(5)
    assert sizes[0] == 1000  # a quarter cancelled: left in place (lazy deletion)
    assert sizes[1] < 1000, "the heap was not compacted"
    assert sizes[2] == len(expected) == 250
    assert fired == expected  # the live timers fire, in deadline order


def test_idle_loop_sleeps_until_the_next_live_timer() -> None:
    # A cancelled timer wakes nobody: the select timeout is the next *live*
    # deadline, so an idle loop does no work when nothing is due.
    lp = Loop("idle-loop")
    calls: list[tuple[float | None, int]] = []
    poll = lp._io.poll

    def recording_poll(timeout: float | None = None) -> Any:
        events = poll(timeout)
        calls.append((timeout, len(events)))
        return events

    lp._io.poll = recording_poll
    thread = threading.Thread(target=lp.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: lp.running)

        def schedule() -> None:
            for i in range(100):
                lp.call_later(0.01 + i * 0.001, _never).cancel()
            lp.call_later(60.0, _never)

        on_loop(lp, schedule)
        mark = len(calls)
        time.sleep(0.3)  # the cancelled deadlines pass
        idle = calls[mark:]
        woke_for_nothing = [c for c in idle if c[1] == 0 and c[0] is not None and 0 <= c[0] < 30]
        assert woke_for_nothing == [], idle
        assert on_loop(lp, lambda: (len(lp._schedule.timers), lp.timer_count)) == (1, 1)
    finally:
        lp.stop()
        thread.join(5)
        lp.close()


def _never() -> None:
    raise AssertionError("a cancelled timer ran")


def test_fd_reused_after_close_without_remove(loop: Loop) -> None:
    # A socket closed while still registered, and a new one that gets its fd:
    # the new one is watched, the stale entry does not get in the way.
    a, b = socket.socketpair()
    on_loop(loop, lambda: loop.add_reader(a, lambda: None))
    fd = a.fileno()
    a.close()
    b.close()
    got = threading.Event()
    for _ in range(20):  # the next socketpair usually reuses the fd
        c, d = socket.socketpair()
        if fd in (c.fileno(), d.fileno()):
            break
        c.close()
        d.close()
    reused = c if c.fileno() == fd else d
    other = d if reused is c else c
    on_loop(loop, lambda: loop.add_reader(reused, got.set))
    other.send(b"x")
    assert got.wait(5)
    on_loop(loop, lambda: loop.remove_all(reused))
    c.close()
    d.close()


def test_a_timer_weeks_away_does_not_break_the_loop(loop: Loop) -> None:
    """epoll and select take int milliseconds: 30 days is more; the loop waits a day at most."""
    ran: list[str] = []
    timer = on_loop(loop, lambda: loop.call_later(30 * 86400, ran.append, "late"))
    time.sleep(0.1)  # the loop is now waiting for that timer
    on_loop(loop, lambda: ran.append("posted"))
    assert ran == ["posted"]
    assert on_loop(loop, loop._schedule.wait_time) == wsx.io.schedule.MAX_WAIT
    on_loop(loop, lambda: loop.call_later(0.05, ran.append, "soon"))
    wait_until(lambda: "soon" in ran, what="a timer after the far one")
    on_loop(loop, timer.cancel)
    assert loop.running


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_from_a_signal_handler_ends_the_wait(backend: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler runs on the loop thread (here the main thread) inside its wait: stop() ends it."""
    monkeypatch.setattr(wsx.io.loop, "_HAVE_EPOLL", backend.startswith("epoll"))
    if backend == "epoll-python":
        monkeypatch.setattr(wsx.io.loop, "_Schedule", wsx.io.schedule.Schedule)
        monkeypatch.setattr(wsx.io.readiness, "_epoll_twin", None)
    lp = Loop("signalled")
    # If stop() did not end the wait, this thread ends the test after 5 s (and it fails).
    rescue = threading.Timer(5.0, lp.stop)
    previous = signal.signal(signal.SIGALRM, lambda *_: lp.stop())
    try:
        rescue.start()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        lp.run()  # waits with no timer: only the wake-up ends the wait
        elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        rescue.cancel()
        lp.close()
    assert elapsed < 2.0, f"the loop ran {elapsed:.1f} s after stop() in a signal handler"


# ------------------------------------------------------------------ Signal
def test_signal_set_before_wait_and_after() -> None:
    sig = wsx.io.handoff.Signal()
    assert not sig.is_set()
    assert sig.wait(0) is False
    started = time.monotonic()
    assert sig.wait(0.05) is False
    assert 0.04 <= time.monotonic() - started < 2.0
    sig.set()
    sig.set()  # a second set does nothing
    assert sig.is_set()
    assert sig.wait(0) is True
    assert sig.wait(5) is True  # still set: no second acquisition blocks


def test_signal_wakes_a_waiting_thread() -> None:
    sig = wsx.io.handoff.Signal()
    got: list[tuple[bool, float]] = []

    def waiter() -> None:
        t0 = time.monotonic()
        got.append((sig.wait(5.0), time.monotonic() - t0))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    sig.set()
    t.join(5)
    assert got and got[0][0] is True and 0.03 < got[0][1] < 4.0


def test_signal_wait_wakes_the_loop_for_posted_callbacks(loop: Loop) -> None:
    # Loop.post queues without waking the loop; the waiter's first wait wakes it.
    time.sleep(0.05)  # the loop is asleep in its wait
    sig = wsx.io.handoff.Signal()
    ran: list[int] = []

    def on_loop() -> None:
        ran.append(threading.get_ident())
        sig.set()

    loop.post(on_loop)
    t0 = time.monotonic()
    assert sig.wait(5.0, loop) is True
    assert time.monotonic() - t0 < 2.0
    assert ran == [loop.thread_id]


def test_a_closed_loop_is_never_woken_through_a_reused_descriptor() -> None:
    # The loop's wake-up socket is closed with it: a waiter's Signal must not
    # write its wake-up byte to whatever the descriptor number is reused for.
    loop = Loop("closed-wake")
    old_fd = loop.wake_fd
    loop.close()
    assert loop.wake_fd == -1
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:
        while not any(old_fd in (a.fileno(), b.fileno()) for a, b in pairs):
            assert len(pairs) < 16, "the descriptor number was never reused"
            pairs.append(socket.socketpair())
        a, b = pairs[-1]
        a.setblocking(False)
        b.setblocking(False)
        assert wsx.io.handoff.Signal().wait(0, loop) is False
        peer = b if a.fileno() == old_fd else a  # where a byte written to old_fd arrives
        with pytest.raises(BlockingIOError):
            peer.recv(1)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.parametrize("when", ["soon", None, True, float("nan")])
def test_a_timer_deadline_that_is_no_number_is_refused_and_the_loop_goes_on(
        loop: Loop, when: Any) -> None:
    error = ValueError if isinstance(when, float) else TypeError

    def schedule() -> Any:
        try:
            loop.call_at(when, _never)
        except error as exc:
            return str(exc)
        return None

    message = on_loop(loop, schedule)
    assert message is not None and repr(when) in message
    if isinstance(when, float):
        with pytest.raises(ValueError):
            on_loop(loop, lambda: loop.call_later(when, _never))
    assert on_loop(loop, lambda: loop.timer_count) == 0
    assert on_loop(loop, lambda: "alive") == "alive"


@pytest.mark.skipif(wsx.io.readiness._epoll_twin is None, reason="the compiled epoll wait is not built")
def test_the_compiled_epoll_wait_answers_as_select_epoll_poll() -> None:
    import select

    ep = select.epoll()
    a, b = socket.socketpair()
    try:
        wait = wsx.io.readiness._epoll_twin.EpollWait(ep.fileno()).wait
        ep.register(a.fileno(), select.EPOLLIN | select.EPOLLOUT)
        assert wait(0.0) == ep.poll(0) == [(a.fileno(), select.EPOLLOUT)]
        b.send(b"x")
        both = [(a.fileno(), select.EPOLLIN | select.EPOLLOUT)]
        assert wait(-1.0) == ep.poll(-1) == both  # no limit: returns once ready
        ep.modify(a.fileno(), select.EPOLLIN)
        a.recv(1)
        start = time.monotonic()
        assert wait(0.05) == ep.poll(0) == []
        assert time.monotonic() - start >= 0.05  # rounded up: never early
        ep.close()
        with pytest.raises(OSError):
            wait(0.0)  # a closed epoll: EBADF (select.epoll.poll raises ValueError)
    finally:
        a.close()
        b.close()


def test_a_closed_loop_cannot_run_again() -> None:
    lp = Loop("closed-loop")
    lp.close()
    with pytest.raises(RuntimeError, match="closed"):
        lp.run()
    assert not lp.running
