"""Isolation: the slow-callback watchdog, and clients on a loop of their own.

Over real sockets to a ``websockets`` echo server: a callback that blocks its
loop is reported while it blocks, once, naming the client and the callback,
and counted in ``wsx.sys.statistics``; a client started with ``loop="own"``
may block without delaying the others, and its loop thread ends with it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import wsx
from conftest import wait_until
from test_client import Probe, Rec, start

TIMEOUT = 5.0


class Slow(wsx.WebSocket):
    """``handle_cast(("sleep", s))`` sleeps; ``("block", event)`` waits for the event."""

    def handle_cast(self, msg: Any, state: Any) -> Any:
        if msg[0] == "sleep":
            time.sleep(msg[1])
        elif msg[0] == "block":
            msg[1].wait(TIMEOUT)
        state["done"].append(msg[0])
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        state["frames"].append(frame)
        return ("ok", state)


def slow_state() -> dict[str, Any]:
    return {"done": [], "frames": []}


@pytest.fixture
def loop() -> Iterator[wsx.Loop]:
    """A loop of the test's own, so that no other test's client shares it."""
    lp = wsx.Loop("wsx-watchdog-test")
    lp.start_thread()
    yield lp
    lp.stop()
    assert lp._thread is not None
    lp._thread.join(TIMEOUT)
    lp.close()


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The watchdog's records (its logger only), as they come."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    log = logging.getLogger("wsx.watchdog")
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)


def held_seconds(record: logging.LogRecord) -> float:
    match = re.search(r"for (\d+\.\d+) s", record.getMessage())
    assert match, record.getMessage()
    return float(match.group(1))


def test_a_blocking_callback_is_reported_while_it_blocks(
        echo_server: Any, loop: wsx.Loop, warnings: list[logging.LogRecord]) -> None:
    state = slow_state()
    client = wsx.start(echo_server.url, Slow, state, loop=loop, name="slowpoke",
                       debug=["statistics"])
    release = threading.Event()
    try:
        wsx.cast(client, ("block", release))
        # Reported while the callback still holds the loop, not after.
        wait_until(lambda: warnings, TIMEOUT, "a slow-callback warning")
        assert state["done"] == []
        text = warnings[0].getMessage()
        assert warnings[0].levelno == logging.WARNING
        assert "'slowpoke'" in text or "slowpoke" in text
        assert "Slow.handle_cast" in text
        assert "wsx-watchdog-test" in text
        assert "loop=\"own\"" in text
        assert 0.1 <= held_seconds(warnings[0]) < TIMEOUT
        time.sleep(0.4)  # still blocked: no second warning for the same callback
        assert len(warnings) == 1
    finally:
        release.set()
    wait_until(lambda: state["done"] == ["block"], TIMEOUT, "the callback to end")
    stats = wait_until(lambda: (s := wsx.sys.statistics(client)) and s["slow_callbacks"] and s,
                       TIMEOUT, "the episode counted")
    assert stats["slow_callbacks"] == 1
    assert wsx.stop(client)


def test_each_slow_callback_is_one_episode(
        echo_server: Any, loop: wsx.Loop, warnings: list[logging.LogRecord]) -> None:
    state = slow_state()
    client = wsx.start(echo_server.url, Slow, state, loop=loop, debug=["statistics", "log"])
    for _ in range(2):
        wsx.cast(client, ("sleep", 0.35))
    wait_until(lambda: state["done"] == ["sleep", "sleep"], TIMEOUT, "both casts")
    wait_until(lambda: wsx.sys.statistics(client)["slow_callbacks"] == 2, TIMEOUT,
               "two episodes counted")
    assert len(warnings) == 2
    assert all(0.1 <= held_seconds(r) <= 0.35 for r in warnings)
    # The episode is a debug event too (wsx.sys.log, trace).
    events = [text for _, text in wsx.sys.log(client, "get") if "held the loop" in text]
    assert len(events) == 2
    assert re.fullmatch(r"callback .*Slow\.handle_cast held the loop for more than 0\.\d+ s",
                        events[0])
    assert wsx.stop(client)


def test_fast_callbacks_are_not_reported(
        echo_server: Any, loop: wsx.Loop, warnings: list[logging.LogRecord]) -> None:
    # Thousands of quick callbacks of one client, back to back for longer than
    # slow_callback in total, and one of 30 ms: none is one slow callback.
    # (0.3 s: a loaded machine may deschedule the loop thread for a while.)
    loop.slow_callback = 0.3
    state = slow_state()
    client = wsx.start(echo_server.url, Slow, state, loop=loop, debug=["statistics"])
    deadline = time.monotonic() + 1.0
    sent = 0
    while time.monotonic() < deadline:
        for _ in range(200):
            wsx.cast(client, ("quick", 0))
        sent += 200
    wsx.cast(client, ("sleep", 0.03))
    wait_until(lambda: len(state["done"]) == sent + 1, TIMEOUT * 2, "every cast")
    time.sleep(0.2)
    assert warnings == []
    assert wsx.sys.statistics(client)["slow_callbacks"] == 0
    assert wsx.stop(client)


def test_slow_callback_is_a_loop_option(
        echo_server: Any, loop: wsx.Loop, warnings: list[logging.LogRecord]) -> None:
    assert wsx.Loop().slow_callback == 0.1  # the default
    state = slow_state()
    client = wsx.start(echo_server.url, Slow, state, loop=loop)
    loop.slow_callback = 0.6
    wsx.cast(client, ("sleep", 0.3))
    loop.slow_callback = None
    wsx.cast(client, ("sleep", 0.3))
    wait_until(lambda: len(state["done"]) == 2, TIMEOUT, "both casts")
    time.sleep(0.2)
    assert warnings == []
    loop.slow_callback = 0.05
    wsx.cast(client, ("sleep", 0.2))
    wait_until(lambda: warnings, TIMEOUT, "a warning at the new threshold")
    assert "0.05 s" in warnings[0].getMessage()
    assert wsx.stop(client)


@pytest.mark.parametrize("bad", [0, -1, "0.1", True, math.nan, math.inf])
def test_slow_callback_must_be_positive_seconds(bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        wsx.Loop(slow_callback=bad)
    loop = wsx.Loop()
    with pytest.raises(ValueError, match="slow_callback"):
        loop.slow_callback = bad
    loop.close()


# ------------------------------------------------------------- loop="own"
def own_loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wsx-own-loop")]


def test_own_loop_client_blocks_without_delaying_others(
        echo_server: Any, warnings: list[logging.LogRecord]) -> None:
    blocker_state = slow_state()
    blocker = wsx.start(echo_server.url, Slow, blocker_state, loop="own", name="blocker")
    other, probe = start(echo_server.url)
    try:
        assert blocker.loop is not wsx.get_default_loop()
        assert blocker.loop.name == "wsx-own-loop-blocker"
        assert [t.name for t in own_loop_threads()] == ["wsx-own-loop-blocker"]
        wsx.cast(blocker, ("sleep", 1.0))
        time.sleep(0.05)
        # The other client, on the shared loop, echoes while the blocker sleeps.
        for i in range(5):
            t0 = time.monotonic()
            wsx.send_frame(other, ("text", f"m{i}"))
            probe.wait("frame", i + 1)
            assert time.monotonic() - t0 < 0.5
        assert blocker_state["done"] == []
        wait_until(lambda: blocker_state["done"] == ["sleep"], TIMEOUT, "the blocker's cast")
        # The blocker's own loop is not watched: blocking is what it is for.
        assert warnings == []
        # It is an ordinary client otherwise.
        wsx.send_frame(blocker, ("text", "still here"))
        wait_until(lambda: ("text", "still here") in blocker_state["frames"], TIMEOUT, "echo")
    finally:
        assert wsx.stop(blocker)
        assert wsx.stop(other)
    wait_until(lambda: not own_loop_threads(), TIMEOUT, "the own loop thread to end")
    assert blocker.loop._closed


def test_own_loop_ends_when_the_first_connection_fails(free_port: int) -> None:
    before = own_loop_threads()
    with pytest.raises(wsx.ConnError):
        wsx.start(f"ws://127.0.0.1:{free_port}/", Rec, Probe(), loop="own")
    wait_until(lambda: own_loop_threads() == before, TIMEOUT, "the own loop thread to end")


def test_own_loop_clients_restarted_by_a_supervisor_leave_no_threads(echo_server: Any) -> None:
    spec = {"id": "feed", "restart": "permanent",
            "start": lambda: wsx.start_link(echo_server.url, Slow, slow_state(),
                                            loop="own", name="own-feed")}
    sup = wsx.Supervisor.start_link([spec], max_restarts=10, max_seconds=5)
    try:
        for _ in range(3):
            old = wsx.whereis("own-feed")
            assert old is not None
            wsx.stop(old, "boom")
            wait_until(lambda old=old: (c := wsx.whereis("own-feed")) is not None and c is not old,
                       TIMEOUT, "the restarted child")
        wait_until(lambda: len(own_loop_threads()) == 1, TIMEOUT, "one own loop thread")
    finally:
        sup.stop()
    wait_until(lambda: not own_loop_threads(), TIMEOUT, "no own loop thread")


@pytest.mark.parametrize("bad", ["mine", 1, object()])
def test_loop_option_must_be_a_loop_or_own(echo_server: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match=re.escape(repr(bad))):
        wsx.start(echo_server.url, Rec, Probe(), loop=bad)


def test_a_slow_callback_after_a_long_idle_time_is_reported(
        echo_server: Any, loop: wsx.Loop, warnings: list[logging.LogRecord]) -> None:
    # Idle for a while, the watchdog dozes (it is not woken 20 times a second);
    # the loop wakes it as work comes, in time to see the next slow callback.
    from wsx.process import watchdog

    state = slow_state()
    client = wsx.start(echo_server.url, Slow, state, loop=loop)
    wait_until(lambda: watchdog._dozing is not None, TIMEOUT, "the watchdog to doze")
    assert loop.on_wake is not None
    wsx.cast(client, ("sleep", 0.3))
    wait_until(lambda: warnings, TIMEOUT, "a slow-callback warning")
    assert "Slow.handle_cast" in warnings[0].getMessage()
    wait_until(lambda: state["done"] == ["sleep"], TIMEOUT, "the cast")
    assert wsx.stop(client)
