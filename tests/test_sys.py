"""wsx.sys and debug options over real sockets: trace, state, status, suspend, statistics, log, code change."""

from __future__ import annotations

import re
import threading
import time
import types
from typing import Any

import pytest

import wsx
from conftest import accept_response, read_frame, read_request, server_frame, wait_until
from wsx.errors import BadResponseError


def dbg_lines(err: str, client: wsx.Client) -> list[str]:
    """The texts of the ``*DBG*`` lines of ``client`` in ``err`` (prefix checked)."""
    prefix = f"*DBG* {client!r} "
    lines = [line for line in err.splitlines() if line.startswith("*DBG*")]
    for line in lines:
        assert line.startswith(prefix), line
    return [line[len(prefix):] for line in lines]


class EchoClient(wsx.WebSocket):
    """The seed's EchoClient: closes when the server echoes "Close the things!"."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        if frame == ("text", "Close the things!"):
            return ("close", state)
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        if status.reason[0] == "local":
            return ("ok", state)
        return super().handle_disconnect(status, state)


def echo(client: wsx.Client, message: str) -> None:
    wsx.send_frame(client, ("text", message))


class Recorder(wsx.WebSocket):
    """State is a list; frames and casts are appended in the order handled."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state + [("frame", frame)])

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("ok", state + [("cast", msg)])


def frames_of(state: list[Any]) -> list[Any]:
    return [item[1] for item in state if item[0] == "frame"]


@pytest.fixture
def clients() -> Any:
    """Clients to stop at the end of the test: append them."""
    started: list[wsx.Client] = []
    yield started
    for c in started:
        if c.alive:
            wsx.stop(c, timeout=5)


# ------------------------------------------------------------------- trace
SEED_SESSION = [
    "attempting to connect",
    "successfully connected",
    "sending frame: ('text', 'Hello')",
    "received frame: ('text', 'Hello')",
    "received frame: 'ping'",
    "replying from handle_ping with 'pong'",
    "sending frame: ('text', 'Close the things!')",
    "received frame: ('text', 'Close the things!')",
    "closing with local reason: ('local', 'normal')",
    "sending close frame: ('local', 'normal')",
]


def test_trace_prints_the_seed_session_to_stderr(ws_server, capfd):
    pong_seen = threading.Event()

    async def handler(ws: Any) -> None:
        pinged = False
        async for msg in ws:
            await ws.send(msg)
            if not pinged:
                pinged = True
                pong = await ws.ping(b"")
                await pong
                pong_seen.set()

    server = ws_server(handler)
    client = wsx.start_link(server.url, EchoClient, "fake_state", debug=["trace"])
    echo(client, "Hello")
    assert pong_seen.wait(5)
    echo(client, "Close the things!")
    assert client.join(5)
    assert client.exit_reason == ("local", "normal")

    out, err = capfd.readouterr()
    assert "*DBG*" not in out
    texts = dbg_lines(err, client)
    assert texts[: len(SEED_SESSION)] == SEED_SESSION
    # The server answered the close: no forced close; then the client ends.
    assert texts[len(SEED_SESSION):] == [
        "received close frame: (1000, '')",
        "disconnected: ('local', 'normal')",
        "terminating: ('local', 'normal')",
    ]


@pytest.mark.parametrize(
    "close_result, reason",
    [(lambda s: ("close", s), ("local", "normal")),
     (lambda s: ("close", (4000, "bye"), s), ("local", 4000, "bye"))],
)
def test_trace_forced_close_when_the_server_does_not_answer(raw_server, capsys, close_result,
                                                            reason):
    got_close = threading.Event()

    def handler(sock: Any) -> None:  # echoes text, never answers the close
        sock.sendall(accept_response(read_request(sock)))
        while (frame := read_frame(sock)) is not None:
            if frame[0] == 1:
                sock.sendall(server_frame(1, frame[1]))
            elif frame[0] == 8:
                got_close.set()

    class Closer(wsx.WebSocket):
        def handle_frame(self, frame, state):
            return close_result(state)

        def handle_disconnect(self, status, state):
            return ("ok", state)

    server = raw_server(handler)
    client = wsx.start_link(server.url, Closer, None, debug=["trace"], close_timeout=0.2)
    echo(client, "Close the things!")
    assert client.join(5)
    assert got_close.is_set()
    assert client.exit_reason == reason
    texts = dbg_lines(capsys.readouterr().err, client)
    i = texts.index("received frame: ('text', 'Close the things!')")
    assert texts[i + 1:] == [
        f"closing with local reason: {reason!r}",
        f"sending close frame: {reason!r}",
        "forcefully closed the connection because the server was taking too long to close",
        f"disconnected: {reason!r}",
        f"terminating: {reason!r}",
    ]


def test_trace_switched_on_and_off_on_a_live_client(echo_server, capsys, clients):
    client = wsx.start_link(echo_server.url, Recorder, [])
    clients.append(client)

    def roundtrip(msg: str) -> None:
        echo(client, msg)
        wait_until(lambda: ("text", msg) in frames_of(wsx.sys.get_state(client)))

    roundtrip("before")
    assert wsx.sys.get_status(client)["debug"]["trace"] is False
    wsx.sys.trace(client, True)
    assert wsx.sys.get_status(client)["debug"]["trace"] is True
    roundtrip("Hi")
    wsx.sys.trace(client, False)
    roundtrip("after")
    assert wsx.sys.get_status(client)["debug"]["trace"] is False
    assert dbg_lines(capsys.readouterr().err, client) == [
        "sending frame: ('text', 'Hi')",
        "received frame: ('text', 'Hi')",
    ]


def test_trace_shows_casts_and_replies(echo_server, capsys, clients):
    class Replier(Recorder):
        def handle_cast(self, msg, state):
            return ("reply", ("text", msg), state)

    client = wsx.start_link(echo_server.url, Replier, [], debug=["trace"])
    clients.append(client)
    wsx.cast(client, "yo")
    wait_until(lambda: frames_of(wsx.sys.get_state(client)) == [("text", "yo")])
    texts = dbg_lines(capsys.readouterr().err, client)
    assert texts[2:] == [
        "received cast: 'yo'",
        "replying from handle_cast with ('text', 'yo')",
        "received frame: ('text', 'yo')",
    ]


# ------------------------------------------------------------------ state
def test_get_state_and_replace_state(echo_server, clients):
    class Counter(wsx.WebSocket):
        def handle_cast(self, msg, state):
            return ("reply", ("text", f"n={state}"), state + 1)

        def handle_frame(self, frame, state):
            return ("ok", state)

    client = wsx.start_link(echo_server.url, Counter, 0)
    clients.append(client)
    assert wsx.sys.get_state(client) == 0
    wsx.cast(client, "tick")
    wait_until(lambda: wsx.sys.get_state(client) == 1)
    assert wsx.sys.replace_state(client, lambda n: n + 41) == 42
    assert wsx.sys.get_state(client) == 42
    wsx.cast(client, "tick")  # the callbacks see the replaced state
    wait_until(lambda: "n=42" in echo_server.received)
    assert wsx.sys.get_state(client) == 43
    with pytest.raises(ZeroDivisionError):
        wsx.sys.replace_state(client, lambda n: n / 0)
    assert wsx.sys.get_state(client) == 43
    assert client.alive


def test_get_status_uses_format_status(echo_server, clients):
    opts_seen: list[str] = []

    class Secretive(wsx.WebSocket):
        def handle_frame(self, frame, state):
            return ("ok", state)

        def format_status(self, opt, state):
            opts_seen.append(opt)
            return {**state, "token": "***"}

    state = {"token": "s3cret", "user": "alice"}
    client = wsx.start_link(echo_server.url, Secretive, state, name="status-client",
                            debug=["statistics"])
    clients.append(client)
    status = wsx.sys.get_status("status-client")
    assert status["state"] == {"token": "***", "user": "alice"}
    assert opts_seen == ["normal"]
    assert status["client"] is client
    assert status["name"] == "status-client"
    assert status["module"] is Secretive
    assert status["connection_state"] == "open"
    assert status["url"] == echo_server.url
    assert status["suspended"] is False and status["pending_messages"] == 0
    assert status["debug"] == {"trace": False, "log": False, "statistics": True}
    assert wsx.sys.get_state(client) == state  # the real state is untouched


def test_default_format_status_is_the_state(echo_server, clients):
    client = wsx.start_link(echo_server.url, Recorder, ["x"])
    clients.append(client)
    assert wsx.sys.get_status(client)["state"] == ["x"]


# --------------------------------------------------------- suspend/resume
def test_suspend_holds_frames_and_messages_until_resume(echo_server, clients):
    client = wsx.start_link(echo_server.url, Recorder, [])
    clients.append(client)
    wsx.sys.suspend(client)
    for text in ("a", "b", "c"):
        echo(client, text)  # sending still works while suspended
    wsx.cast(client, 1)
    wsx.cast(client, 2)
    wait_until(lambda: echo_server.received == ["a", "b", "c"])
    time.sleep(0.2)  # the echoes are back in the client's socket by now
    assert wsx.sys.get_state(client) == []  # nothing handled while suspended
    status = wsx.sys.get_status(client)
    assert status["suspended"] is True and status["pending_messages"] == 2

    wsx.sys.resume(client)
    state = wait_until(lambda: s if len(s := wsx.sys.get_state(client)) == 5 else None)
    assert frames_of(state) == [("text", "a"), ("text", "b"), ("text", "c")]
    assert [item for item in state if item[0] == "cast"] == [("cast", 1), ("cast", 2)]
    assert wsx.sys.get_status(client)["suspended"] is False
    wsx.sys.resume(client)  # resuming a running client is harmless
    echo(client, "d")
    wait_until(lambda: len(wsx.sys.get_state(client)) == 6)


def test_resume_keeps_arrival_order_between_frames_and_casts(echo_server, clients):
    client = wsx.start_link(echo_server.url, Recorder, [])
    clients.append(client)
    wsx.sys.suspend(client)
    echo(client, "first")
    wait_until(lambda: echo_server.received == ["first"])
    time.sleep(0.2)  # the echo has arrived
    wsx.cast(client, "second")
    time.sleep(0.05)
    wsx.sys.resume(client)
    state = wait_until(lambda: s if len(s := wsx.sys.get_state(client)) == 2 else None)
    assert state == [("frame", ("text", "first")), ("cast", "second")]


# -------------------------------------------------------------- statistics
def test_statistics_count_frames_bytes_and_messages(ws_server, clients):
    server = ws_server(compression=None)  # no permessage-deflate: exact wire sizes
    client = wsx.start_link(server.url, Recorder, [])
    clients.append(client)
    assert wsx.sys.statistics(client) is None  # off by default
    t0 = time.time()
    wsx.sys.statistics(client, True)
    payloads = ["x" * 10, "y" * 200, "z" * 70_000]  # 7-bit, 16-bit and 64-bit lengths
    for p in payloads:
        echo(client, p)
    wsx.cast(client, "m")
    wait_until(lambda: len(wsx.sys.get_state(client)) == 4)
    stats = wsx.sys.statistics(client)

    def head(n: int) -> int:
        return 2 if n < 126 else 4 if n < 65536 else 10

    assert stats["frames_out"] == 3 and stats["frames_in"] == 3
    assert stats["messages_in"] == 1
    assert stats["bytes_out"] == sum(len(p) + head(len(p)) + 4 for p in payloads)  # masked
    assert stats["bytes_in"] == sum(len(p) + head(len(p)) for p in payloads)
    assert stats["reconnects"] == 0
    assert 0 < stats["connected_time"] <= time.time() - t0 + 0.01
    assert t0 <= stats["start_time"] <= stats["current_time"]
    time.sleep(0.05)
    assert wsx.sys.statistics(client)["connected_time"] > stats["connected_time"]
    wsx.sys.statistics(client, False)
    assert wsx.sys.statistics(client) is None
    with pytest.raises(ValueError):
        wsx.sys.statistics(client, "sometimes")


def test_statistics_from_the_start_option_and_reconnects(wsx_server, clients):
    class Reconnecting(Recorder):
        def handle_disconnect(self, status, state):
            return ("reconnect", state)

    client = wsx.start_link(wsx_server.url, Reconnecting, [], debug=["statistics"])
    clients.append(client)
    wsx_server.wait_for_connections(1)
    wsx_server.half_close()  # the first connection is dropped right away
    wsx_server.wait_for_connections(2)
    wait_until(lambda: client.connection_state == "open")
    echo(client, "again")
    wait_until(lambda: len(wsx.sys.get_state(client)) == 1)
    stats = wsx.sys.statistics(client)
    assert stats["reconnects"] == 1
    assert stats["frames_out"] == 1 and stats["frames_in"] == 1


# --------------------------------------------------------------------- log
def test_log_keeps_the_last_n_events(echo_server, capsys, clients):
    client = wsx.start_link(echo_server.url, Recorder, [], debug=[("log", 3)])
    clients.append(client)
    for i, text in enumerate(("a", "b", "c")):
        echo(client, text)
        wait_until(lambda n=i + 1: len(wsx.sys.get_state(client)) == n)
    entries = wsx.sys.log(client)
    assert [text for _ts, text in entries] == [
        "received frame: ('text', 'b')",
        "sending frame: ('text', 'c')",
        "received frame: ('text', 'c')",
    ]
    stamps = [ts for ts, _text in entries]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time()) < 5
    assert wsx.sys.get_status(client)["debug"]["log"] is True

    assert wsx.sys.log(client, "print") is None
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert re.fullmatch(rf"\*DBG\* {re.escape(repr(client))} \d\d:\d\d:\d\d "
                        r"received frame: \('text', 'c'\)", out[-1])

    wsx.sys.log(client, 2)  # a new log of the last 2 events
    echo(client, "d")
    wait_until(lambda: len(wsx.sys.get_state(client)) == 4)
    assert [text for _ts, text in wsx.sys.log(client)] == [
        "sending frame: ('text', 'd')", "received frame: ('text', 'd')"]

    wsx.sys.log(client, False)
    assert wsx.sys.log(client) == []
    wsx.sys.log(client, True)  # default size, 10
    for i in range(6):
        echo(client, str(i))
    wait_until(lambda: len(wsx.sys.get_state(client)) == 10)
    assert len(wsx.sys.log(client)) == 10
    with pytest.raises(ValueError):
        wsx.sys.log(client, -1)


# ------------------------------------------------------------- change_code
class V1(wsx.WebSocket):
    vsn = 1

    def handle_frame(self, frame, state):
        return ("ok", state + [("v1", frame[1])])


@pytest.mark.parametrize("compress", [True, False], ids=["deflate", "plain"])
def test_change_code_swaps_the_module_of_a_live_client(echo_server, clients, compress):
    # Plain frames take the compiled read path when it is built: it must call
    # the new module's handle_frame too.
    calls: list[Any] = []

    class V2(wsx.WebSocket):
        vsn = 2

        def code_change(self, old_vsn, state, extra):
            calls.append((old_vsn, list(state), extra))
            return ("ok", {"history": state, "extra": extra})

        def handle_frame(self, frame, state):
            state["history"].append(("v2", frame[1]))
            return ("ok", state)

    client = wsx.start_link(echo_server.url, V1, [], compress=compress)
    clients.append(client)
    assert bool(client.conn.extensions) is compress
    echo(client, "one")
    wait_until(lambda: wsx.sys.get_state(client) == [("v1", "one")])
    assert wsx.sys.change_code(client, V2, "upgrade") is None
    assert calls == [(1, [("v1", "one")], "upgrade")]
    assert client.module is V2
    echo(client, "two")
    wait_until(lambda: len(wsx.sys.get_state(client)["history"]) == 2)
    assert wsx.sys.get_state(client) == {"history": [("v1", "one"), ("v2", "two")],
                                         "extra": "upgrade"}
    assert wsx.sys.get_status(client)["module"] is V2


def test_change_code_to_and_from_plain_modules(echo_server, clients):
    calls: list[Any] = []
    plain = types.ModuleType("plain_v2")
    plain.vsn = "2.0"  # type: ignore[attr-defined]
    plain.code_change = lambda old_vsn, state, extra: ("ok", len(state))  # type: ignore[attr-defined]
    plain.handle_frame = lambda frame, state: ("ok", state + 100)  # type: ignore[attr-defined]

    class V3(wsx.WebSocket):
        def code_change(self, old_vsn, state, extra):
            calls.append(old_vsn)
            return ("ok", state)

    client = wsx.start_link(echo_server.url, V1, [])
    clients.append(client)
    echo(client, "one")
    wait_until(lambda: wsx.sys.get_state(client) == [("v1", "one")])
    wsx.sys.change_code(client, plain)
    assert client.module is plain
    assert wsx.sys.get_state(client) == 1
    echo(client, "two")
    wait_until(lambda: wsx.sys.get_state(client) == 101)
    wsx.sys.change_code(client, V3)
    assert calls == ["2.0"]  # the plain module's vsn is the old version


class Refuses(wsx.WebSocket):
    def code_change(self, old_vsn, state, extra):
        return ("error", "too old")

    def handle_frame(self, frame, state):
        return ("ok", "should never run")


class Raises(Refuses):
    def code_change(self, old_vsn, state, extra):
        raise RuntimeError("cannot convert")


class BadReturn(Refuses):
    def code_change(self, old_vsn, state, extra):
        return "whatever"


@pytest.mark.parametrize("module, error, match", [
    (Refuses, wsx.WSXError, "too old"),
    (Raises, wsx.WSXError, "cannot convert"),
    (BadReturn, BadResponseError, "code_change"),
])
def test_change_code_can_be_refused(echo_server, clients, module, error, match):
    client = wsx.start_link(echo_server.url, V1, [])
    clients.append(client)
    with pytest.raises(error, match=match):
        wsx.sys.change_code(client, module, None)
    assert client.module is V1 and client.alive
    echo(client, "still v1")
    wait_until(lambda: wsx.sys.get_state(client) == [("v1", "still v1")])


# ------------------------------------------------------------------- misc
def test_sys_functions_on_a_terminated_client_raise(echo_server):
    client = wsx.start_link(echo_server.url, Recorder, [], name="soon-gone")
    assert wsx.sys.get_state("soon-gone") == []
    assert wsx.stop(client)
    for call in (lambda: wsx.sys.get_state(client), lambda: wsx.sys.trace(client, True),
                 lambda: wsx.sys.suspend(client), lambda: wsx.sys.statistics(client)):
        with pytest.raises(wsx.WSXError):
            call()
    with pytest.raises(wsx.NoProcessError):
        wsx.sys.get_state("soon-gone")


def test_sys_functions_work_from_a_callback(echo_server, clients):
    # Called on the client's own loop thread, they run directly (no deadlock).
    class Introspective(Recorder):
        def handle_cast(self, msg, state):
            status = wsx.sys.get_status(msg)
            return ("ok", state + [("status", status["connection_state"])])

    client = wsx.start_link(echo_server.url, Introspective, [])
    clients.append(client)
    wsx.cast(client, client)
    wait_until(lambda: wsx.sys.get_state(client) == [("status", "open")])


def test_sys_functions_time_out_behind_a_blocking_callback(echo_server: Any) -> None:
    loop = wsx.Loop("sys-timeout")
    loop.start_thread()
    release = threading.Event()

    class Blocker(wsx.WebSocket):
        def handle_cast(self, msg: Any, state: Any) -> Any:
            release.wait(10)  # holds the loop
            return ("ok", state)

    client = wsx.start(echo_server.url, Blocker, "before", loop=loop)
    try:
        wsx.cast(client, "block")
        time.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(wsx.TimeoutExpired) as info:
            wsx.sys.get_state(client, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2
        assert info.value.option == "timeout" and "wsx.sys.get_state" in str(info.value)
        with pytest.raises(wsx.TimeoutExpired):
            wsx.sys.replace_state(client, lambda s: "replaced", timeout=0.2)
        release.set()
        # The request that timed out is dropped, never run later.
        assert wsx.sys.get_state(client) == "before"
        with pytest.raises(ValueError, match="timeout"):
            wsx.sys.get_state(client, timeout=-1)
    finally:
        release.set()
        wsx.stop(client)
        loop.stop()


class Sink(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)


def test_log_to_file_install_remove_and_no_debug(echo_server: Any, tmp_path: Any) -> None:
    path = tmp_path / "client.log"
    seen: list[Any] = []

    def spy(count: int, event: Any, who: Any) -> Any:
        seen.append((event[0], who))
        return "done" if count >= 2 else count + 1

    client = wsx.start(echo_server.url, Sink, None, debug=[("log_to_file", str(path))])
    wsx.send_frame(client, ("text", "one"))
    wait_until(lambda: "received frame" in path.read_text())
    text = path.read_text()
    assert "*DBG*" in text and "sending frame: ('text', 'one')" in text
    wsx.sys.install(client, spy, 0)
    for i in range(3):
        wsx.send_frame(client, ("text", f"m{i}"))
    wait_until(lambda: len(seen) >= 3)
    time.sleep(0.2)
    assert len(seen) == 3 and all(who is client for _, who in seen)  # "done" removed it
    wsx.sys.install(client, spy, 0)
    wsx.sys.remove(client, spy)
    wsx.sys.trace(client, True)
    wsx.sys.statistics(client, True)
    wsx.sys.no_debug(client)
    status = wsx.sys.get_status(client)
    assert status["debug"] == {"trace": False, "log": False, "statistics": False}
    size = len(path.read_text())
    wsx.send_frame(client, ("text", "after"))
    time.sleep(0.2)
    assert len(path.read_text()) == size and len(seen) == 3
    with pytest.raises(ValueError, match="log_to_file"):
        wsx.start(echo_server.url, Sink, None, debug=[("log_to_fil", "x")])
    assert wsx.stop(client)


def test_a_debug_function_that_raises_is_removed(echo_server: Any) -> None:
    calls: list[Any] = []

    def broken(state: Any, event: Any, who: Any) -> Any:
        calls.append(event)
        raise RuntimeError("debug function bug")

    client = wsx.start(echo_server.url, Sink, None)
    wsx.sys.install(client, broken, None)
    wsx.send_frame(client, ("text", "x"))
    wsx.send_frame(client, ("text", "y"))
    time.sleep(0.3)
    assert len(calls) == 1 and client.alive
    assert wsx.stop(client)
