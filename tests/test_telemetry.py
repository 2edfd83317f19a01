"""Telemetry events and logging, from real clients on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

import wsx
from conftest import wait_until
from wsx import telemetry

CONNECTED = ("wsx", "connected")
DISCONNECTED = ("wsx", "disconnected")
RECEIVED = ("wsx", "frame", "received")
SENT = ("wsx", "frame", "sent")
TERMINATE = ("wsx", "terminate")



@pytest.fixture(autouse=True)
def no_handlers_left() -> Any:
    yield
    for handler_id, _event in telemetry.list_handlers():
        telemetry.detach(handler_id)


class Recorder:
    """A telemetry handler keeping ``(event, measurements, metadata, config, thread)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, event: Any, measurements: Any, metadata: Any, config: Any) -> None:
        self.calls.append((event, measurements, metadata, config, threading.current_thread()))

    def of(self, event: tuple[str, ...]) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == event]

    def events(self) -> list[tuple[str, ...]]:
        return [c[0] for c in self.calls]


class Echo(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state + [frame])


def test_every_event_fires_with_metadata(ws_server):
    pong_back = threading.Event()

    async def handler(ws: Any) -> None:
        async for msg in ws:
            await ws.send(msg)
            pong = await ws.ping(b"hb")
            await pong
            pong_back.set()

    server = ws_server(handler)
    rec = Recorder()
    telemetry.attach_many("rec", telemetry.EVENTS, rec, {"cfg": 1})
    t0 = time.time()
    client = wsx.start_link(server.url, Echo, [])
    wsx.send_frame(client, ("text", "hello"))
    assert pong_back.wait(5)
    assert wsx.stop(client)

    events = rec.events()
    assert events[0] == CONNECTED and events[-1] == TERMINATE
    assert events.index(DISCONNECTED) == len(events) - 2
    assert all(c[3] == {"cfg": 1} for c in rec.calls)
    assert all(c[2]["client"] is client for c in rec.calls)
    assert all(c[4] is not threading.current_thread() for c in rec.calls)  # the loop thread

    [(_e, m, md, _c, _t)] = rec.of(CONNECTED)
    assert md["conn"] is client.conn and md["conn"].resp_headers is not None
    assert t0 <= m["system_time"] <= time.time()
    # WebSockex's shape: time in the measurements; client, module, conn in the metadata.
    for _e, m, md, _c, _t in rec.calls:
        assert t0 <= m["time"] <= time.time(), _e
        assert md["module"] is Echo and md["conn"] is client.conn, _e

    # The default handle_ping's automatic pong does not count as a frame sent.
    sent = [(c[2]["frame"], c[1]["size"]) for c in rec.of(SENT)]
    assert [frame for frame, _size in sent] == [("text", "hello")]
    assert all(size >= 1 for _frame, size in sent)

    received = [(c[2]["frame"], c[1]["size"]) for c in rec.of(RECEIVED)]
    assert received == [(("text", "hello"), 5), (("ping", b"hb"), 2)]

    [(_e, m, md, _c, _t)] = rec.of(DISCONNECTED)
    assert md["reason"] == ("local", "normal") and m["system_time"] >= t0
    assert md["attempt_number"] == 1
    [(_e, m, md, _c, _t)] = rec.of(TERMINATE)
    assert md["reason"] == "normal" and m["system_time"] >= t0


def test_abnormal_end_reports_the_reason(wsx_server):
    rec = Recorder()
    telemetry.attach_many("rec", [DISCONNECTED, TERMINATE], rec)
    client = wsx.start(wsx_server.url, Echo, [])
    wsx_server.wait_for_connections(1)
    wsx_server.half_close()  # then drop the connection
    assert client.join(5)
    assert [(c[0], c[2]["reason"]) for c in rec.calls] == [
        (DISCONNECTED, ("remote", "closed")), (TERMINATE, ("remote", "closed"))]


def test_a_raising_handler_is_detached_without_hurting_the_client(echo_server, caplog):
    good = Recorder()
    bad_calls: list[Any] = []

    def bad(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
        bad_calls.append(metadata["frame"])
        raise RuntimeError("handler bug")

    telemetry.attach("bad", RECEIVED, bad)
    telemetry.attach_many("bad-too", [SENT], bad)  # another id: stays attached until it raises
    telemetry.attach("good", RECEIVED, good)
    client = wsx.start_link(echo_server.url, Echo, [])
    try:
        with caplog.at_level(logging.ERROR, logger="wsx"):
            for text in ("one", "two"):
                wsx.send_frame(client, ("text", text))
            wait_until(lambda: len(wsx.sys.get_state(client)) == 2)
        assert wsx.sys.get_state(client) == [("text", "one"), ("text", "two")]
        assert client.alive
        assert [c[2]["frame"] for c in good.calls] == [("text", "one"), ("text", "two")]
        assert bad_calls == [("text", "one"), ("text", "one")]  # once per id, then detached
        assert telemetry.list_handlers() == [("good", RECEIVED)]
        records = [r for r in caplog.records if r.name.startswith("wsx") and "bad" in r.getMessage()]
        assert len(records) == 2 and all(r.levelno == logging.ERROR for r in records)
        assert records[0].exc_info is not None
    finally:
        wsx.stop(client)


def test_attach_and_detach_api():
    def handler(*_args: Any) -> None:
        pass

    telemetry.attach("h", CONNECTED, handler)
    with pytest.raises(ValueError):
        telemetry.attach("h", TERMINATE, handler)  # ids are unique
    with pytest.raises(ValueError):
        telemetry.attach("other", ("wsx", "no", "such", "event"), handler)
    with pytest.raises(TypeError):
        telemetry.attach("other", CONNECTED, "not callable")  # type: ignore[arg-type]
    telemetry.attach_many("many", [list(SENT), RECEIVED], handler)  # lists are accepted
    assert sorted(telemetry.list_handlers()) == sorted(
        [("h", CONNECTED), ("many", SENT), ("many", RECEIVED)])
    assert telemetry.detach("many") is True
    assert telemetry.detach("many") is False
    assert telemetry.list_handlers() == [("h", CONNECTED)]
    telemetry.execute(CONNECTED, {}, {})  # direct execution calls the handler
    telemetry.detach("h")
    telemetry.execute(CONNECTED, {}, {})  # no handler: nothing happens
    assert set(telemetry.EVENTS) == {CONNECTED, DISCONNECTED, RECEIVED, SENT, TERMINATE}


def test_handlers_see_reconnects(wsx_server):
    class Again(Echo):
        def handle_disconnect(self, status, state):
            first = status.attempt_number == 1 and wsx_server.connections == 1
            return ("reconnect", state) if first else ("ok", state)

    rec = Recorder()
    telemetry.attach_many("rec", [CONNECTED, DISCONNECTED], rec)
    client = wsx.start(wsx_server.url, Again, [])
    wsx_server.wait_for_connections(1)
    wsx_server.half_close()  # drop the first connection; the second stays
    wsx_server.wait_for_connections(2)
    wait_until(lambda: len(rec.of(CONNECTED)) == 2)
    wsx.stop(client)
    assert rec.events() == [CONNECTED, DISCONNECTED, CONNECTED, DISCONNECTED]


# ----------------------------------------------------------------- logging
def test_errors_are_logged_under_the_wsx_logger(echo_server, caplog):
    class Crashy(Echo):
        def handle_cast(self, msg, state):
            raise RuntimeError("callback bug")

    client = wsx.start_link(echo_server.url, Crashy, [])
    with caplog.at_level(logging.DEBUG, logger="wsx"):
        wsx.cast(client, "boom")
        assert client.join(5)
    assert client.exit_reason[0] == "error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all(r.name == "wsx" or r.name.startswith("wsx.") for r in errors)
    crash = [r for r in errors if "handle_cast" in r.getMessage()]
    assert crash and crash[0].exc_info[1].args == ("callback bug",)


def test_supervisor_logs_under_wsx(echo_server, caplog):
    class Crashy(Echo):
        def handle_cast(self, msg, state):
            return "bad"

    url = echo_server.url
    with caplog.at_level(logging.INFO, logger="wsx"):
        sup = wsx.Supervisor.start_link(
            [{"id": "c", "start": (wsx.start_link, (url, Crashy, []))}], max_restarts=0)
        [(_id, proc, _t, _r)] = sup.which_children()
        wsx.cast(proc, "x")
        assert sup.join(5)
    names = {r.name for r in caplog.records}
    assert "wsx.process.supervisor" in names
    assert any("restart intensity" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records if r.name == "wsx.process.supervisor")


def test_a_reply_from_the_modules_own_handle_ping_is_a_frame_sent(ws_server):
    pong_back = threading.Event()

    async def handler(ws: Any) -> None:
        pong = await ws.ping(b"hb")
        await pong
        pong_back.set()
        await ws.wait_closed()

    class OwnPing(wsx.WebSocket):
        def handle_ping(self, frame: Any, state: Any) -> Any:
            return ("reply", ("pong", frame[1]), state)

    server = ws_server(handler)
    rec = Recorder()
    telemetry.attach("rec", SENT, rec, None)
    client = wsx.start_link(server.url, OwnPing, None)
    assert pong_back.wait(5)
    # The event follows the write: it may come just after the server has the pong.
    wait_until(lambda: rec.of(SENT), what="the sent event")
    assert [c[2]["frame"] for c in rec.of(SENT)] == [("pong", b"hb")]
    assert wsx.stop(client)
