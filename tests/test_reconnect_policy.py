"""Reconnect policies from ``handle_disconnect``: classify the reason
(:class:`wsx.DisconnectStatus` properties), back off with :class:`wsx.Backoff`
and ``("reconnect_after", seconds, state)``, against real servers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

import wsx
from conftest import wait_until
from wsx.errors import TimeoutExpired
from wsx.testing import Server

TIMEOUT = 5.0

#: Codes after which reconnecting would fail the same way.
PERMANENT = (1002, 1003, 1007, 1008, 1009, 1010)


class Policy(wsx.WebSocket):
    """A typical policy: stop on a clean close or a permanent code, else back off."""

    def handle_connect(self, conn: Any, st: dict[str, Any]) -> Any:
        st["events"].append(("connect", time.monotonic()))
        return ("ok", st)

    def handle_disconnect(self, status: wsx.DisconnectStatus, st: dict[str, Any]) -> Any:
        st["statuses"].append(status)
        if status.clean or status.code in PERMANENT:
            return ("ok", st)
        delay = st["backoff"].delay(status.attempt_number)
        st["events"].append(("delay", delay, time.monotonic()))
        return ("reconnect_after", delay, st)

    def terminate(self, reason: Any, st: dict[str, Any]) -> None:
        st["terminate"] = reason


def policy_state() -> dict[str, Any]:
    return {"events": [], "statuses": [],
            "backoff": wsx.Backoff(base=0.05, cap=0.2, rng=random.Random(7))}


def closing_with(ws_server: Callable[..., Any], codes: list[int]) -> Any:
    """A websockets server closing its n-th connection with ``codes[n]``."""
    count = [0]

    async def handler(ws: Any) -> None:
        code = codes[min(count[0], len(codes) - 1)]
        count[0] += 1
        await ws.close(code, f"closing with {code}")

    return ws_server(handler)


def test_1011_reconnects_with_backoff_then_1008_stops(ws_server: Callable[..., Any]) -> None:
    server = closing_with(ws_server, [1011, 1011, 1011, 1008])
    st = policy_state()
    c = wsx.start(server.url, Policy, st)
    assert c.join(TIMEOUT)
    assert server.connections == 4
    codes = [s.code for s in st["statuses"]]
    assert codes == [1011, 1011, 1011, 1008]
    assert [s.attempt_number for s in st["statuses"]] == [1, 1, 1, 1]  # each connect resets it
    assert all(s.remote and not s.clean and s.error is None for s in st["statuses"])
    assert st["terminate"] == ("remote", 1008, "closing with 1008")
    # Each reconnect waited (at least) the delay the policy returned.
    events = st["events"]
    for i, event in enumerate(events):
        if event[0] == "delay":
            _, delay, at = event
            nxt = events[i + 1]
            assert nxt[0] == "connect" and nxt[1] - at >= delay * 0.9, events


def test_clean_1000_close_stops(ws_server: Callable[..., Any]) -> None:
    server = closing_with(ws_server, [1000])
    st = policy_state()
    c = wsx.start(server.url, Policy, st)
    assert c.join(TIMEOUT)
    time.sleep(0.3)  # a reconnect (there must be none) would have happened by now
    assert server.connections == 1
    [status] = st["statuses"]
    assert status.clean and status.code == 1000 and status.remote
    assert st["terminate"] == ("remote", 1000, "closing with 1000")
    assert c.exit_reason == ("remote", 1000, "closing with 1000")


def test_backoff_grows_while_the_server_is_down(free_port: int) -> None:
    # Nothing listens: every attempt fails; attempt_number counts up and
    # the ceiling of the delays doubles up to the cap.
    seen: list[tuple[int, float]] = []
    backoff = wsx.Backoff(base=0.01, cap=0.04, jitter=False)

    class Retry(wsx.WebSocket):
        def handle_disconnect(self, status: Any, state: Any) -> Any:
            assert isinstance(status.error, wsx.ConnError) and status.code is None
            if status.attempt_number == 5:
                return ("ok", state)
            delay = backoff.delay(status.attempt_number)
            seen.append((status.attempt_number, delay))
            return ("reconnect_after", delay, state)

    c = wsx.start(f"ws://127.0.0.1:{free_port}/", Retry, None,
                  handle_initial_conn_failure=True, async_connect=True)
    assert c.join(TIMEOUT)
    assert seen == [(1, 0.01), (2, 0.02), (3, 0.04), (4, 0.04)]


def test_a_protocol_error_carries_its_close_code(wsx_server: Server) -> None:
    st = policy_state()
    c = wsx.start(wsx_server.url, Policy, st)
    wsx_server.wait_for_connections(1)
    wsx_server.send_protocol_violation("reserved_opcode")  # reserved opcode: 1002
    assert c.join(TIMEOUT)
    [status] = st["statuses"]  # 1002 is permanent: no reconnect
    assert isinstance(status.error, wsx.FrameError)
    assert status.code == 1002 and not status.clean and not status.remote
    assert wsx_server.wait_for_close()[0] == 1002
    assert wsx_server.attempts == 1


def test_tcp_close_without_close_frame_reconnects(wsx_server: Server) -> None:
    st = policy_state()
    got: list[Any] = []

    class Keep(Policy):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            got.append(frame)
            return ("ok", state)

    c = wsx.start(wsx_server.url, Keep, st)
    wsx_server.wait_for_connections(1)
    wsx_server.half_close()  # the first connection: drop without a close frame
    wsx_server.wait_for_connections(2)
    wsx_server.send(b"second")
    wait_until(lambda: got == [("binary", b"second")])
    [status] = st["statuses"]
    assert status.reason == ("remote", "closed")
    assert status.remote and not status.clean and status.code is None and status.error is None
    assert wsx_server.closes == []  # no close frame either way
    wsx.stop(c)


@pytest.mark.parametrize("reason, clean, code, remote, is_error", [
    (("local", "normal"), True, 1000, False, False),
    (("remote", "normal"), True, None, True, False),
    (("local", 1000, ""), True, 1000, False, False),
    (("remote", 1001, "going away"), True, 1001, True, False),
    (("remote", 1008, "policy"), False, 1008, True, False),
    (("local", 4000, "app"), False, 4000, False, False),
    (("remote", "closed"), False, None, True, False),
    (("error", wsx.FrameError(1009, "too big")), False, 1009, False, True),
    (("error", wsx.ConnError("connection broken")), False, None, False, True),
    (("error", TimeoutExpired("ping_timeout", 1.0, "no pong")), False, None, False, True),
])
def test_disconnect_status_classifies_every_reason(reason: Any, clean: bool, code: int | None,
                                                   remote: bool, is_error: bool) -> None:
    status = wsx.DisconnectStatus(reason, 1, wsx.Conn("ws://127.0.0.1:1/"))
    assert status.clean is clean
    assert status.code == code
    assert status.remote is remote
    assert (status.error is reason[1]) if is_error else status.error is None
    assert status["reason"] == reason
