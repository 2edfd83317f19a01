"""wsx.call / wsx.reply, wsx.send_after, wsx.self() and close frames from send_frame.

Over real sockets: a ``websockets`` echo server, and a "quote" server that
answers each request a little later, so that callers wait on real replies.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import wsx
from conftest import wait_until
from test_client import ClosingServer, Probe, Rec, start

TIMEOUT = 5.0


class Quotes(wsx.WebSocket):
    """The issue's example: each call is a request to the server, answered by its echo."""

    def handle_call(self, request: Any, caller: Any, state: Any) -> Any:
        match request:
            case ("quote", symbol):
                rid = state["next"]
                state["next"] += 1
                state["pending"][rid] = caller
                return ("reply", ("text", json.dumps({"id": rid, "symbol": symbol})), state)
            case ("now", value):
                wsx.reply(caller, value)
                return ("ok", state)
            case "self":
                wsx.reply(caller, wsx.self())
                return ("ok", state)
            case "crash":
                raise RuntimeError("asked to crash")
            case "never":
                return ("ok", state)
            case "hold":
                state["held"] = caller
                return ("ok", state)
        return ("close", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        if msg[0] == "answer":
            wsx.reply(state.pop("held"), msg[1])
        return ("ok", state)

    def handle_frame(self, frame: Any, state: Any) -> Any:
        msg = json.loads(frame[1])
        caller = state["pending"].pop(msg["id"], None)
        if caller is not None:
            wsx.reply(caller, msg["symbol"] + "@" + str(msg["id"]))
        return ("ok", state)

    def handle_info(self, msg: Any, state: Any) -> Any:
        state.setdefault("infos", []).append((msg, time.monotonic()))
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state["disconnects"] = state.get("disconnects", 0) + 1
        return ("reconnect", state) if state.get("reconnect") else ("ok", state)


def quotes(url: str, **opts: Any) -> tuple[Any, dict[str, Any]]:
    state: dict[str, Any] = {"next": 0, "pending": {}}
    return wsx.start(url, Quotes, state, **opts), state


def test_call_returns_the_value_given_to_reply(echo_server: Any) -> None:
    client, _ = quotes(echo_server.url)
    assert wsx.call(client, ("quote", "BTC"), timeout=TIMEOUT) == "BTC@0"
    assert wsx.call(client, ("now", [1, 2]), timeout=TIMEOUT) == [1, 2]
    assert wsx.call(client, "self") is client
    assert wsx.stop(client)


def test_calls_from_eight_threads_get_their_own_answers(echo_server: Any) -> None:
    client, _ = quotes(echo_server.url)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        got = []
        try:
            for i in range(100):
                got.append(wsx.call(client, ("quote", f"T{n}-{i}"), timeout=TIMEOUT))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        results[n] = got

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    for n in range(8):
        assert [r.split("@")[0] for r in results[n]] == [f"T{n}-{i}" for i in range(100)]
    ids = sorted(int(r.split("@")[1]) for rs in results.values() for r in rs)
    assert ids == list(range(800))  # none lost, none answered twice
    assert wsx.stop(client)


def test_a_call_times_out_and_a_late_reply_is_dropped(echo_server: Any) -> None:
    client, state = quotes(echo_server.url)
    started = time.monotonic()
    with pytest.raises(wsx.TimeoutExpired) as info:
        wsx.call(client, "never", timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2
    assert info.value.option == "timeout"
    assert wsx.call(client, ("now", "still works"), timeout=TIMEOUT) == "still works"
    assert wsx.stop(client)


def test_reply_twice_raises(echo_server: Any) -> None:
    seen: list[Any] = []

    class Twice(Rec):
        def handle_call(self, request: Any, caller: Any, st: Probe) -> Any:
            wsx.reply(caller, 1)
            try:
                wsx.reply(caller, 2)
            except wsx.WSXError as exc:
                seen.append(exc)
            return ("ok", st)

    client, probe = start(echo_server.url, Probe(), Twice)
    assert wsx.call(client, "x") == 1
    # The call returns at the first reply; the second one raises just after.
    wait_until(lambda: seen, what="the second reply")
    assert len(seen) == 1 and "twice" in str(seen[0])
    with pytest.raises(TypeError, match="caller"):
        wsx.reply("not a caller", 1)  # type: ignore[arg-type]
    assert wsx.stop(client)


def test_call_from_the_clients_loop_raises_calling_self_error(echo_server: Any) -> None:
    def call_self(msg: Any, st: Probe) -> Any:
        try:
            wsx.call(st.client, "x", timeout=1)
        except wsx.CallingSelfError as exc:
            st.data["error"] = exc
        return ("ok", st)

    client, probe = start(echo_server.url, Probe(cast=call_self))
    wsx.cast(client, "go")
    wait_until(lambda: "error" in probe.data)
    assert wsx.stop(client)


def test_a_client_that_ends_before_answering_raises_no_process_error(echo_server: Any) -> None:
    client, _ = quotes(echo_server.url)
    with pytest.raises(wsx.NoProcessError) as info:
        wsx.call(client, "crash", timeout=TIMEOUT)
    kind, exc = info.value.reason
    assert kind == "error" and isinstance(exc, RuntimeError)
    with pytest.raises(wsx.NoProcessError) as again:
        wsx.call(client, ("now", 1))
    assert again.value.reason == client.exit_reason


def test_a_pending_caller_survives_a_reconnect(ws_server: Any) -> None:
    server = ClosingServer(ws_server)
    client, state = quotes(server.url, min_reconnect_interval=0)
    state["reconnect"] = True
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(wsx.call(client, "hold", timeout=10)))
    t.start()
    wait_until(lambda: "held" in state)
    wsx.send_frame(client, ("text", "close-me"))  # the server closes: the client reconnects
    wait_until(lambda: state.get("disconnects") == 1 and client.connection_state == "open")
    assert t.is_alive() and not got
    wsx.cast(client, ("answer", 42))
    t.join(TIMEOUT)
    assert got == [42]
    assert wsx.stop(client)


def test_a_call_waits_in_the_mailbox_across_a_reconnect(ws_server: Any) -> None:
    server = ClosingServer(ws_server)
    client, state = quotes(server.url, min_reconnect_interval=0)
    state["reconnect"] = True
    wsx.sys.suspend(client)  # the call waits in the mailbox
    answer: list[Any] = []
    t = threading.Thread(target=lambda: answer.append(wsx.call(client, ("now", 7), timeout=10)))
    t.start()
    time.sleep(0.2)
    assert client.pending_messages == 1
    wsx.sys.resume(client)
    t.join(TIMEOUT)
    assert answer == [7]
    assert wsx.stop(client)


# --------------------------------------------------------------- send_after
def test_send_after_delivers_in_order_and_cancel_stops_it(echo_server: Any) -> None:
    client, state = quotes(echo_server.url)
    started = time.monotonic()
    first = wsx.send_after(client, "a", 0.2)
    wsx.send_after(client, "b", 0.2)
    wsx.send_after(client, "c", 0.05)
    cancelled = wsx.send_after(client, "never", 0.1)
    assert cancelled.cancel() is True
    assert cancelled.cancel() is False
    wait_until(lambda: len(state.get("infos", [])) >= 3)
    time.sleep(0.2)
    infos = state["infos"]
    assert [m for m, _ in infos] == ["c", "a", "b"]
    assert infos[1][1] - started >= 0.19
    assert first.cancel() is False  # it fired
    assert wsx.stop(client)


def test_send_after_to_self_from_a_callback(echo_server: Any) -> None:
    ticks: list[float] = []

    class Ticker(Rec):
        def handle_info(self, msg: Any, st: Probe) -> Any:
            ticks.append(time.monotonic())
            if len(ticks) < 3:
                wsx.send_after(wsx.self(), "tick", 0.05)
            return ("ok", st)

    client, probe = start(echo_server.url, Probe(), Ticker)
    wsx.send(client, "tick")
    wait_until(lambda: len(ticks) == 3)
    assert ticks[2] - ticks[0] >= 0.09
    with pytest.raises(wsx.WSXError, match="inside a callback"):
        wsx.self()
    with pytest.raises(ValueError, match="seconds"):
        wsx.send_after(client, "x", -1)
    assert wsx.stop(client)


# ------------------------------------------------------ close from send_frame
def test_send_frame_close_starts_the_close_handshake(ws_server: Any) -> None:
    server = ClosingServer(ws_server)
    client, probe = start(server.url)
    probe.wait("connect")
    wsx.send_frame(client, ("close", 4000, "bye"))
    assert server.wait_close() == (4000, "bye")
    assert client.join(TIMEOUT)
    assert probe.of("disconnect")[0].reason == ("local", 4000, "bye")

    client, probe = start(server.url)
    probe.wait("connect")
    wsx.send_frame(client, "close")
    assert server.wait_close(2) == (1000, "")
    assert client.join(TIMEOUT)
    assert client.exit_reason == ("local", "normal")


def test_send_frame_close_with_a_bad_code_raises(echo_server: Any) -> None:
    client, probe = start(echo_server.url)
    probe.wait("connect")
    with pytest.raises(wsx.FrameEncodeError, match="close code"):
        wsx.send_frame(client, ("close", 999, ""))
    with pytest.raises(wsx.InvalidFrameError):
        wsx.send_frame(client, ("close", 1000))
    assert client.connection_state == "open"
    assert wsx.stop(client)
