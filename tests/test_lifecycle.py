"""The client lifecycle: the transition table is enforced, and real connections follow it.

Every state change goes through ``Lifecycle.to``; these tests record its calls
while real clients connect to a ``websockets`` server, close, are dropped and
reconnect, and check the sequences against ``TRANSITIONS``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import wsx
from conftest import wait_until
from wsx.core.conn import Conn
from wsx.io.loop import Loop
from wsx.process.lifecycle import (
    CLOSING,
    CONNECTING,
    DISCONNECTED,
    OPEN,
    RECONNECTING,
    SERVER_TRANSITIONS,
    TERMINATED,
    TERMINATING,
    TRANSITIONS,
    IllegalTransition,
    Lifecycle,
    State,
)


def test_every_transition_outside_the_table_raises() -> None:
    loop = Loop("lifecycle-table")  # never run
    for old in State:
        for new in State:
            client = wsx.Client(Conn("ws://127.0.0.1:9/"), wsx.WebSocket, None, loop=loop)
            client.lifecycle.state = old  # the starting point of the check only
            if new in TRANSITIONS[old]:
                client.lifecycle.to(new)
                assert client.lifecycle.state is new
            else:
                with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
                    client.lifecycle.to(new)
                assert client.lifecycle.state is old


def test_each_role_has_its_table_and_a_server_connection_never_reconnects() -> None:
    # A server's connection: the client's table without reconnects.
    assert RECONNECTING not in SERVER_TRANSITIONS
    assert SERVER_TRANSITIONS[DISCONNECTED] == frozenset({TERMINATING, TERMINATED})
    for state, allowed in SERVER_TRANSITIONS.items():
        assert allowed <= TRANSITIONS[state] and CONNECTING not in allowed
    loop = Loop("lifecycle-roles")  # never run
    client = wsx.Client(Conn("ws://127.0.0.1:9/"), wsx.WebSocket, None, loop=loop)
    assert client.lifecycle.transitions is TRANSITIONS
    lifecycle = Lifecycle(client, SERVER_TRANSITIONS)
    lifecycle.state = DISCONNECTED
    with pytest.raises(IllegalTransition, match="disconnected -> connecting"):
        lifecycle.to(CONNECTING)
    with pytest.raises(IllegalTransition, match="disconnected -> reconnecting"):
        lifecycle.to(RECONNECTING)
    lifecycle.to(TERMINATING)
    assert lifecycle.state is TERMINATING


def test_the_dispatcher_mirrors_the_state_and_suspension() -> None:
    client = wsx.Client(Conn("ws://127.0.0.1:9/"), wsx.WebSocket, None, loop=Loop("mirror"))
    assert (client.dispatcher.open, client.dispatcher.hold) == (False, False)
    client.lifecycle.to(OPEN)
    assert (client.dispatcher.open, client.dispatcher.hold) == (True, False)
    client.lifecycle.suspend()
    assert (client.dispatcher.open, client.dispatcher.hold) == (True, True)
    client.lifecycle.resume()
    client.lifecycle.to(TERMINATED)
    assert (client.dispatcher.open, client.dispatcher.hold) == (False, True)
    assert client.connection_state == "terminated"


@pytest.fixture
def transitions(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[Any, list[State]]]:
    """The states each client went through (by client), recorded from Lifecycle.to."""
    seen: dict[Any, list[State]] = {}
    lock = threading.Lock()
    original = Lifecycle.to

    def to(self: Lifecycle, new: State, *args: Any, **kwargs: Any) -> None:
        old = self.state
        original(self, new, *args, **kwargs)
        with lock:
            seen.setdefault(self.client, [old]).append(new)

    monkeypatch.setattr(Lifecycle, "to", to)
    yield seen


class Once(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)


class Twice(wsx.WebSocket):
    """Reconnects once after a delay, then lets the client end."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)

    def handle_disconnect(self, status: wsx.DisconnectStatus, state: Any) -> Any:
        if status.attempt_number == 1 and state["reconnects"] == 0:
            state["reconnects"] += 1
            return ("reconnect_after", 0.05, state)
        return ("ok", state)


def test_open_close_terminate(echo_server: Any, transitions: dict[Any, list[State]]) -> None:
    client = wsx.start_link(echo_server.url, Once, None)
    assert client.connection_state == "open"
    assert wsx.stop(client)
    assert transitions[client] == [CONNECTING, OPEN, CLOSING, DISCONNECTED, TERMINATING,
                                   TERMINATED]


def test_reconnect_after_goes_through_reconnecting(ws_server: Any,
                                                   transitions: dict[Any, list[State]]) -> None:
    async def close_at_once(ws: Any) -> None:
        await ws.close(1012, "restart")

    server = ws_server(close_at_once)
    client = wsx.start_link(server.url, Twice, {"reconnects": 0})
    assert client.join(5), "the client did not end"
    assert transitions[client] == [
        CONNECTING, OPEN, CLOSING, DISCONNECTED, RECONNECTING,
        CONNECTING, OPEN, CLOSING, DISCONNECTED, TERMINATING, TERMINATED,
    ]
    for states in transitions.values():
        for old, new in zip(states, states[1:], strict=False):
            assert new in TRANSITIONS[old], (old, new)
    wait_until(lambda: not client.alive)
