"""Supervision trees over real sockets: strategies, restart values, intensity, nesting.

Children are real wsx clients connected to a ``websockets`` server (or to a
raw TCP server on 127.0.0.1 when the test needs to drop connections). A child
is "killed" by a cast that makes its callback return a bad value (abnormal
exit ``("error", BadResponseError)``), or by the server dropping the TCP
connection (abnormal exit ``("remote", "closed")``); a *normal* exit is a
``("close", state)`` from a callback plus the default ``handle_disconnect``,
which ends the client with ``("local", "normal")``.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from typing import Any

import pytest

import wsx
from conftest import accept_response, read_frame, read_request, server_frame, wait_until
from wsx.errors import BadResponseError


# ---------------------------------------------------------------- helpers
class Worker(wsx.WebSocket):
    """A supervised client; its state is ``(name, events)``.

    ``terminate`` appends ``(name, reason)`` to ``events``.
    """

    def handle_frame(self, frame: Any, state: Any) -> Any:
        return ("ok", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        if msg == "crash":
            return "not a valid return value"
        if msg == "raise":
            raise RuntimeError("asked to raise")
        if msg == "close":
            return ("close", state)
        return ("ok", state)

    def terminate(self, reason: Any, state: Any) -> None:
        name, events = state
        events.append((name, reason))


def worker(url: str, name: str, events: list[Any], restart: str = "permanent") -> dict[str, Any]:
    """A dict child spec starting a linked :class:`Worker` named ``name``."""
    return {"id": name, "start": (wsx.start_link, (url, Worker, (name, events))),
            "restart": restart}


def kids(sup: wsx.Supervisor) -> dict[Any, Any]:
    """``{id: live process or None}``."""
    return {cid: proc for cid, proc, _type, _restart in sup.which_children()}



def kill(proc: Any, how: str = "crash") -> None:
    """Make a Worker exit (abnormally for "crash"/"raise", normally for "close")."""
    wsx.cast(proc, how)
    assert proc.join(5), f"{proc!r} did not exit"


def wait_replaced(sup: wsx.Supervisor, before: dict[Any, Any], ids: set[Any]) -> dict[Any, Any]:
    """Wait until every child in ``ids`` runs as a new live process."""

    def done() -> bool:
        now = kids(sup)
        return all(now.get(i) is not None and now[i] is not before[i] for i in ids)

    wait_until(done, what=f"children {sorted(map(str, ids))} restarted")
    return kids(sup)


@pytest.fixture
def start_sup() -> Any:
    """``start_sup(children, **opts)``: a supervisor stopped at the end of the test."""
    sups: list[wsx.Supervisor] = []

    def make(children: list[Any], **opts: Any) -> wsx.Supervisor:
        sup = wsx.Supervisor.start_link(children, **opts)
        sups.append(sup)
        return sup

    yield make
    for sup in sups:
        sup.stop(timeout=10)


class DroppableServer:
    """A raw WebSocket peer whose connections the test can drop one by one.

    Echoes text frames and answers a close with a close. ``drop(i)`` shuts the
    i-th accepted connection down (the client sees the TCP connection end).
    Connections whose index is in ``reject`` get a 503 instead of a 101.
    """

    def __init__(self, raw_server: Any, reject: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.socks: list[socket.socket] = []
        self.reject = set(reject)
        self.lock = threading.Lock()
        self.server = raw_server(self.handle)

    @property
    def url(self) -> str:
        return str(self.server.url)

    def handle(self, sock: socket.socket) -> None:
        with self.lock:
            index = len(self.socks)
            self.socks.append(sock)
        request = read_request(sock)
        if index in self.reject:
            sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            return
        sock.sendall(accept_response(request))
        while True:
            frame = read_frame(sock)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 8:
                sock.sendall(server_frame(8, payload[:2]))
                return
            if opcode == 1:
                sock.sendall(server_frame(1, payload))

    def drop(self, index: int) -> None:
        self.socks[index].shutdown(socket.SHUT_RDWR)


# ------------------------------------------------------------- strategies
@pytest.mark.parametrize(
    "strategy, restarted",
    [("one_for_one", {"b"}), ("one_for_all", {"a", "b", "c"}), ("rest_for_one", {"b", "c"})],
)
def test_strategy_restarts_exactly_the_right_children(echo_server, start_sup, strategy, restarted):
    events: list[Any] = []
    url = echo_server.url
    sup = start_sup([worker(url, n, events) for n in "abc"], strategy=strategy)
    before = kids(sup)
    assert all(isinstance(p, wsx.Client) and p.alive for p in before.values())
    wait_until(lambda: echo_server.connections == 3)

    kill(before["b"])
    assert before["b"].exit_reason[0] == "error"
    assert isinstance(before["b"].exit_reason[1], BadResponseError)
    wait_replaced(sup, before, restarted)
    time.sleep(0.2)  # nothing else may happen after the restart
    after = kids(sup)
    for cid in "abc":
        assert after[cid] is not None and after[cid].alive, cid
        if cid in restarted:
            assert after[cid] is not before[cid], cid
            assert not before[cid].alive
        else:
            assert after[cid] is before[cid], cid
    # Siblings stopped by the strategy: terminate("shutdown"), in reverse start order.
    stopped = [name for name, reason in events if reason == "shutdown"]
    assert stopped == sorted(restarted - {"b"}, reverse=True)
    # The new children started from their specs, with the same initial state.
    for cid in restarted:
        assert wsx.sys.get_state(after[cid]) == (cid, events)
    wait_until(lambda: echo_server.connections == 3 + len(restarted))
    assert sup.alive


def test_child_killed_by_server_dropping_tcp_is_restarted(raw_server, start_sup):
    server = DroppableServer(raw_server)
    events: list[Any] = []
    sup = start_sup([worker(server.url, "a", events), worker(server.url, "b", events)])
    before = kids(sup)
    server.drop(1)  # b's connection
    assert before["b"].join(5)
    assert before["b"].exit_reason == ("remote", "closed")
    after = wait_replaced(sup, before, {"b"})
    assert after["a"] is before["a"]
    assert server.server.connections == 3
    assert sup.alive


def test_one_for_all_survives_children_dying_together(wsx_server, start_sup):
    # Both exits are queued before the supervisor handles the first; the second
    # one then comes from a child already replaced and must be ignored (it used
    # to shut the supervisor down as if its parent had died).
    events: list[Any] = []
    sup = start_sup([worker(wsx_server.url, "a", events), worker(wsx_server.url, "b", events)],
                    strategy="one_for_all", max_restarts=5)
    before = kids(sup)
    wsx_server.wait_for_connections(2)

    class HoldSupervisor(logging.Handler):
        """Holds the supervisor thread at its "child exited" log line until both died."""

        def emit(self, record: logging.LogRecord) -> None:
            if "exited" in record.getMessage():
                wait_until(lambda: not before["a"].alive and not before["b"].alive)
                time.sleep(0.05)  # the exit notices follow the alive flag closely

    sup_logger = logging.getLogger("wsx.process.supervisor")
    hold, level = HoldSupervisor(), sup_logger.level
    sup_logger.addHandler(hold)
    sup_logger.setLevel(logging.INFO)
    try:
        assert wsx_server.half_close() == 2  # both connections end, without a close frame
        assert before["a"].join(5) and before["b"].join(5)
        after = wait_replaced(sup, before, {"a", "b"})
    finally:
        sup_logger.removeHandler(hold)
        sup_logger.setLevel(level)
    time.sleep(0.3)
    assert sup.alive, sup.exit_reason
    assert kids(sup) == after
    assert all(p.alive for p in after.values())


def test_failed_restart_is_retried_and_the_supervisor_survives(wsx_server, start_sup):
    # The first restart attempt gets a 503 (start_link raises): the supervisor
    # retries at once; the client that failed to start must not be taken for
    # a dead parent later.
    events: list[Any] = []
    sup = start_sup([worker(wsx_server.url, "a", events)], max_restarts=5)
    before = kids(sup)
    wsx_server.wait_for_connections(1)
    wsx_server.handshake(503)  # the next upgrade only
    wsx_server.half_close()
    after = wait_replaced(sup, before, {"a"})
    assert wsx_server.attempts == 3 and wsx_server.connections == 2
    assert len(wsx_server.requests) == 3
    time.sleep(0.3)
    assert sup.alive, sup.exit_reason
    assert kids(sup)["a"] is after["a"] and after["a"].alive


def test_temporary_sibling_is_not_restarted_by_one_for_all(echo_server, start_sup):
    events: list[Any] = []
    url = echo_server.url
    sup = start_sup([worker(url, "a", events), worker(url, "tmp", events, "temporary"),
                     worker(url, "c", events)], strategy="one_for_all")
    before = kids(sup)
    kill(before["c"])
    after = wait_replaced(sup, before, {"a", "c"})
    assert "tmp" not in after
    assert not before["tmp"].alive
    assert ("tmp", "shutdown") in events


# ---------------------------------------------------------- restart values
@pytest.mark.parametrize(
    "restart, how, expected",
    [
        ("permanent", "close", "restarted"),
        ("permanent", "crash", "restarted"),
        ("transient", "close", "not restarted"),
        ("transient", "crash", "restarted"),
        ("transient", "raise", "restarted"),
        ("temporary", "close", "removed"),
        ("temporary", "crash", "removed"),
    ],
)
def test_restart_values(echo_server, start_sup, restart, how, expected):
    events: list[Any] = []
    url = echo_server.url
    sup = start_sup([worker(url, "w", events, restart), worker(url, "other", events)])
    before = kids(sup)
    kill(before["w"], how)
    if how == "close":
        assert before["w"].exit_reason == ("local", "normal")
    else:
        assert before["w"].exit_reason[0] == "error"

    # Barrier: the supervisor handles exits in order, so once "other" has been
    # restarted, the exit of "w" has been handled too.
    kill(before["other"])
    after = wait_replaced(sup, before, {"other"})
    specs = {cid: (typ, rst) for cid, _proc, typ, rst in sup.which_children()}
    if expected == "restarted":
        after = wait_replaced(sup, before, {"w"})
        assert after["w"].alive
    elif expected == "not restarted":
        assert specs["w"] == ("worker", "transient")
        assert after["w"] is None
        assert sup.count_children() == {"specs": 2, "active": 1, "workers": 2, "supervisors": 0}
    else:
        assert "w" not in specs
    assert sup.alive


# --------------------------------------------------------- restart intensity
def test_restart_intensity_exceeded_stops_supervisor_and_children(echo_server, start_sup):
    events: list[Any] = []
    url = echo_server.url
    sup = start_sup([worker(url, "a", events), worker(url, "b", events)],
                    max_restarts=2, max_seconds=5)
    for _ in range(2):
        before = kids(sup)
        kill(before["a"])
        wait_replaced(sup, before, {"a"})
    last = kids(sup)
    kill(last["a"])  # third restart within 5 s: more than max_restarts
    assert sup.join(5)
    assert sup.exit_reason == ("shutdown", "reached_max_restart_intensity")
    assert not last["b"].alive
    assert ("b", "shutdown") in events
    assert all(proc is None for proc in kids(sup).values())
    # b was never restarted: it was stopped exactly once
    assert [e for e in events if e[0] == "b"] == [("b", "shutdown")]


def test_restarts_outside_the_window_do_not_add_up(echo_server, start_sup):
    events: list[Any] = []
    sup = start_sup([worker(echo_server.url, "a", events)], max_restarts=1, max_seconds=0.4)
    for _ in range(3):
        before = kids(sup)
        kill(before["a"])
        wait_replaced(sup, before, {"a"})
        time.sleep(0.5)
    assert sup.alive
    # two restarts within the window are one too many
    kill(kids(sup)["a"])
    wait_replaced(sup, before, {"a"})
    kill(kids(sup)["a"])
    assert sup.join(5)
    assert sup.exit_reason == ("shutdown", "reached_max_restart_intensity")


def test_max_restarts_zero_gives_up_on_the_first_exit(echo_server, start_sup):
    events: list[Any] = []
    sup = start_sup([worker(echo_server.url, "a", events)], max_restarts=0)
    kill(kids(sup)["a"])
    assert sup.join(5)
    assert sup.exit_reason == ("shutdown", "reached_max_restart_intensity")


# ------------------------------------------------------- nested supervisors
def test_nested_supervisor_exceeding_intensity_is_restarted_by_outer(echo_server, start_sup):
    events: list[Any] = []
    url = echo_server.url
    inner_spec = wsx.Supervisor.child_spec(
        [worker(url, "x", events), worker(url, "y", events)],
        id="inner", max_restarts=1, max_seconds=5)
    outer = start_sup([worker(url, "w", events), inner_spec], max_restarts=3)
    assert [(cid, typ, rst) for cid, _p, typ, rst in outer.which_children()] == [
        ("w", "worker", "permanent"), ("inner", "supervisor", "permanent")]
    w = kids(outer)["w"]
    inner = kids(outer)["inner"]
    assert isinstance(inner, wsx.Supervisor)

    before = kids(inner)
    kill(before["x"])
    wait_replaced(inner, before, {"x"})
    y = kids(inner)["y"]
    kill(kids(inner)["x"])  # second restart within 5 s: the inner one gives up
    assert inner.join(5)
    assert inner.exit_reason == ("shutdown", "reached_max_restart_intensity")
    assert not y.alive

    inner2 = wait_until(lambda: (p := kids(outer)["inner"]) is not None and p is not inner and p,
                        what="outer restarted the inner supervisor")
    assert isinstance(inner2, wsx.Supervisor) and inner2.alive
    fresh = kids(inner2)
    assert set(fresh) == {"x", "y"}
    assert all(p is not None and p.alive and p is not y for p in fresh.values())
    assert kids(outer)["w"] is w and w.alive
    assert outer.alive

    # Stopping the outer one shuts the inner one and its children down.
    events.clear()
    assert outer.stop()
    assert inner2.exit_reason == "shutdown"
    assert events == [("y", "shutdown"), ("x", "shutdown"), ("w", "shutdown")]


def test_inner_giving_up_counts_against_the_outer_intensity(echo_server, start_sup):
    events: list[Any] = []
    url = echo_server.url
    inner_spec = wsx.Supervisor.child_spec([worker(url, "x", events)], id="inner",
                                           max_restarts=0)
    outer = start_sup([worker(url, "w", events), inner_spec], max_restarts=0)
    w = kids(outer)["w"]
    inner = kids(outer)["inner"]
    kill(kids(inner)["x"])
    assert inner.join(5)
    assert outer.join(5)
    assert outer.exit_reason == ("shutdown", "reached_max_restart_intensity")
    assert not w.alive and ("w", "shutdown") in events


def test_supervisor_child_spec_from_tuple(echo_server, start_sup):
    events: list[Any] = []
    outer = start_sup([(wsx.Supervisor, [worker(echo_server.url, "x", events)])])
    [(cid, proc, typ, restart)] = outer.which_children()
    assert cid is wsx.Supervisor and typ == "supervisor" and restart == "permanent"
    assert isinstance(proc, wsx.Supervisor) and kids(proc)["x"].alive


def test_supervisor_started_from_a_client_callback_dies_with_it(echo_server):
    # start_link links a supervisor to the current process: here a client whose
    # callback starts it. When that client crashes, the supervisor shuts down.
    # (The children live on a loop of their own, given as the supervisor's
    # loop: the parent's loop thread is busy in the callback while they
    # connect; on that thread a supervisor of the default loop is refused.)
    other = wsx.Loop("test-children")
    other.start_thread()
    events: list[Any] = []
    url = echo_server.url

    class Parent(wsx.WebSocket):
        def handle_cast(self, msg, state):
            if msg == "start":
                child = {"id": "k", "start": lambda: wsx.start_link(url, Worker, ("k", events),
                                                                       loop=other)}
                return ("ok", wsx.Supervisor.start_link([child], loop=other))
            return "crash"

    parent = wsx.start(url, Parent, None)
    try:
        wsx.cast(parent, "start")
        sup = wait_until(lambda: wsx.sys.get_state(parent))
        child = kids(sup)["k"]
        wsx.cast(parent, "crash")
        assert parent.join(5)
        assert sup.join(5)
        assert sup.exit_reason[0] == "shutdown" and sup.exit_reason[1][0] == "linked_exit"
        assert sup.exit_reason[1][1] is parent
        assert not child.alive and events == [("k", "shutdown")]
    finally:
        wsx.stop(parent)
        other.stop()


def test_trap_exit_in_a_plain_module(echo_server):
    # A callback module given as a plain module (not a WebSocket subclass)
    # keeps its trap_exit: the exit of a linked client arrives in handle_info.
    import types

    url = echo_server.url
    events: list[Any] = []
    mod = types.ModuleType("trapping")
    mod.trap_exit = True  # type: ignore[attr-defined]

    def handle_cast(msg: Any, state: Any) -> Any:
        child = wsx.start_link(url, Worker, ("linked", events), async_connect=True)
        return ("ok", state + [("child", child)])

    def handle_info(msg: Any, state: Any) -> Any:
        return ("ok", state + [msg])

    mod.handle_cast, mod.handle_info = handle_cast, handle_info  # type: ignore[attr-defined]
    parent = wsx.start(url, mod, [])
    try:
        wsx.cast(parent, "spawn")
        [(_tag, child)] = wait_until(lambda: wsx.sys.get_state(parent))
        wait_until(lambda: child.connection_state == "open")
        kill(child)
        state = wait_until(lambda: s if len(s := wsx.sys.get_state(parent)) == 2 else None)
        assert state[1][0] == "EXIT" and state[1][1] is child
        assert state[1][2] == child.exit_reason and child.exit_reason[0] == "error"
        assert parent.alive
    finally:
        wsx.stop(parent)


# ------------------------------------------------------------- child specs
def test_seed_myapp_client_under_a_supervisor(echo_server, start_sup):
    url = echo_server.url
    connected: list[Any] = []

    class Client(wsx.WebSocket):  # MyApp.Client
        @classmethod
        def start_link(cls, state):
            return wsx.start_link(url, cls, state)

        def handle_connect(self, conn, state):
            connected.append(state)
            return ("ok", state)

        def handle_cast(self, msg, state):
            if msg == "crash":
                raise RuntimeError("boom")
            return ("reply", ("text", msg), state)

        def handle_frame(self, frame, state):
            return ("ok", state)

    children = [(Client, ["WebSockex is Great"])]
    sup = start_sup(children, strategy="one_for_one")
    [(cid, proc, typ, restart)] = sup.which_children()
    assert (cid, typ, restart) == (Client, "worker", "permanent")
    assert isinstance(proc, wsx.Client) and proc.module is Client
    assert wsx.sys.get_state(proc) == ["WebSockex is Great"]
    wsx.cast(proc, "WebSockex is Great")
    wait_until(lambda: "WebSockex is Great" in echo_server.received)

    kill(proc, "crash")
    after = wait_replaced(sup, {Client: proc}, {Client})
    assert wsx.sys.get_state(after[Client]) == ["WebSockex is Great"]
    assert connected == [["WebSockex is Great"]] * 2


def test_websocket_child_spec_default_and_dict_specs(echo_server, start_sup):
    url = echo_server.url
    events: list[Any] = []

    class Mod(Worker):
        @classmethod
        def start_link(cls, state):
            return wsx.start_link(url, cls, state)

    spec = Mod.child_spec(("m", events))
    assert spec["id"] is Mod and spec["restart"] == "permanent"
    assert spec["start"] == (Mod.start_link, (("m", events),))

    custom = {"id": "custom", "start": lambda: wsx.start_link(url, Worker, ("custom", events)),
              "restart": "transient"}
    sup = start_sup([spec, custom])
    rows = sup.which_children()
    assert [(cid, typ, rst) for cid, _p, typ, rst in rows] == [
        (Mod, "worker", "permanent"), ("custom", "worker", "transient")]
    assert all(isinstance(p, wsx.Client) and p.alive for _c, p, _t, _r in rows)


@pytest.mark.parametrize(
    "make_children, opts",
    [
        (lambda url, ev: [worker(url, "a", ev), worker(url, "a", ev)], {}),
        (lambda url, ev: [worker(url, "a", ev)], {"strategy": "one_for_none"}),
        (lambda url, ev: [worker(url, "a", ev, "sometimes")], {}),
        (lambda url, ev: [{"id": "x"}], {}),
        (lambda url, ev: [42], {}),
        (lambda url, ev: [worker(url, "a", ev)], {"max_restarts": -1}),
    ],
)
def test_invalid_specs_and_options_are_rejected(echo_server, make_children, opts):
    with pytest.raises(wsx.SupervisorError):
        wsx.Supervisor.start_link(make_children(echo_server.url, []), **opts)
    assert echo_server.connections == 0


def test_a_child_that_fails_to_start_fails_the_supervisor(echo_server, free_port):
    events: list[Any] = []
    bad = worker(f"ws://127.0.0.1:{free_port}/", "bad", events)
    not_a_process = {"id": "np", "start": lambda: "not a process"}
    for spec in (bad, not_a_process):
        events.clear()
        with pytest.raises(wsx.SupervisorError):
            wsx.Supervisor.start_link([worker(echo_server.url, "a", events), spec])
        assert events == [("a", "shutdown")]


# -------------------------------------------------------------------- stop
def test_stop_stops_all_children_with_shutdown(ws_server, start_sup):
    close_codes: list[Any] = []

    async def handler(ws: Any) -> None:
        async for msg in ws:
            await ws.send(msg)
        close_codes.append(ws.close_code)

    server = ws_server(handler)
    events: list[Any] = []
    sup = start_sup([worker(server.url, n, events) for n in "abc"], name="test-sup")
    assert wsx.whereis("test-sup") is sup
    procs = kids(sup)
    assert sup.stop()
    assert sup.exit_reason == "normal"
    assert events == [("c", "shutdown"), ("b", "shutdown"), ("a", "shutdown")]
    assert all(not p.alive and p.exit_reason == "shutdown" for p in procs.values())
    assert all(p is None for p in kids(sup).values())
    assert wsx.whereis("test-sup") is None
    wait_until(lambda: len(close_codes) == 3)
    assert close_codes == [1000, 1000, 1000]  # each closed with a close handshake
    assert sup.stop()  # stopping again is harmless


def test_stopping_a_child_normally_by_hand(echo_server, start_sup):
    # wsx.stop(child) gives exit reason "normal": a permanent child comes back,
    # a transient one does not.
    events: list[Any] = []
    url = echo_server.url
    sup = start_sup([worker(url, "p", events), worker(url, "t", events, "transient")])
    before = kids(sup)
    assert wsx.stop(before["t"]) and before["t"].exit_reason == "normal"
    assert wsx.stop(before["p"]) and before["p"].exit_reason == "normal"
    after = wait_replaced(sup, before, {"p"})
    assert after["t"] is None


# ------------------------------------------------- reconnecting with Backoff
def test_reconnect_after_with_backoff(wsx_server):
    # Connection 0 is dropped; attempts 1 and 2 get a 503; attempt 3 connects.
    backoff = wsx.Backoff(base=0.05, cap=0.15, rng=random.Random(7))
    expected = wsx.Backoff(base=0.05, cap=0.15, rng=random.Random(7))
    seen: list[Any] = []
    connects: list[float] = []

    class Resilient(wsx.WebSocket):
        def handle_connect(self, conn, state):
            connects.append(time.monotonic())
            return ("ok", state)

        def handle_frame(self, frame, state):
            return ("ok", state)

        def handle_disconnect(self, status, state):
            delay = backoff.delay(status.attempt_number)
            seen.append((status.attempt_number, status.reason[0], delay))
            return ("reconnect_after", delay, state)

    client = wsx.start(wsx_server.url, Resilient, None, debug=["statistics"])
    try:
        wsx_server.wait_for_connections(1)
        wsx_server.handshake(503, times=2)
        wsx_server.half_close()
        wait_until(lambda: len(connects) == 2, what="reconnected")
        assert [(n, kind) for n, kind, _d in seen] == [(1, "remote"), (2, "error"), (3, "error")]
        delays = [d for _n, _k, d in seen]
        assert delays == [expected.delay(n) for n in (1, 2, 3)]
        assert all(0 <= d <= 0.15 for d in delays)
        assert connects[1] - connects[0] >= sum(delays) - 0.01
        assert wsx.sys.statistics(client)["reconnects"] == 1
        assert client.alive and client.connection_state == "open"
        assert wsx_server.connections == 2 and len(wsx_server.requests) == 4
    finally:
        wsx.stop(client)


def test_backoff_delays():
    plain = wsx.Backoff(base=0.5, cap=4, jitter=False)
    assert [plain.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert plain.ceiling(10_000) == 4.0
    jittered = wsx.Backoff(base=0.5, cap=4, rng=random.Random(3))
    for n in range(1, 50):
        assert 0.0 <= jittered.delay(n) <= plain.ceiling(n)
    assert len({jittered.delay(5) for _ in range(20)}) > 1  # full jitter varies
    # a huge float factor caps instead of overflowing
    assert wsx.Backoff(base=1, cap=10, factor=1e10, jitter=False).delay(100) == 10.0
    with pytest.raises(ValueError):
        plain.delay(0)
    with pytest.raises(ValueError):
        wsx.Backoff(base=0)


# ------------------------------------------------------- dynamic children
def test_dynamic_children_follow_the_restart_rules(echo_server, start_sup):
    events: list[Any] = []
    sup = start_sup([], max_restarts=5)
    proc = sup.start_child(worker(echo_server.url, "a", events))
    assert proc.alive and kids(sup) == {"a": proc}
    assert sup.count_children()["active"] == 1
    kill(proc)  # abnormal: a permanent child is restarted
    after = wait_replaced(sup, {"a": proc}, {"a"})
    sup.terminate_child("a")  # stopped, not restarted, spec kept
    assert not after["a"].alive
    time.sleep(0.3)
    assert kids(sup) == {"a": None}
    again = sup.restart_child("a")
    assert again.alive and kids(sup) == {"a": again}
    with pytest.raises(wsx.SupervisorError, match="running"):
        sup.delete_child("a")
    with pytest.raises(wsx.SupervisorError, match="already has a child"):
        sup.start_child(worker(echo_server.url, "a", events))
    sup.terminate_child("a")
    sup.delete_child("a")
    assert kids(sup) == {}
    with pytest.raises(wsx.SupervisorError, match="no child"):
        sup.restart_child("a")


def test_a_dynamic_temporary_child_is_forgotten_and_a_failed_start_is_not_kept(
        echo_server, free_port, start_sup):
    events: list[Any] = []
    sup = start_sup([])
    proc = sup.start_child(worker(echo_server.url, "t", events, restart="temporary"))
    kill(proc)
    wait_until(lambda: kids(sup) == {}, what="the temporary child forgotten")
    with pytest.raises(wsx.SupervisorError, match="failed to start") as info:
        sup.start_child(worker(f"ws://127.0.0.1:{free_port}/", "down", events))
    assert isinstance(info.value.__cause__, wsx.ConnError)
    assert kids(sup) == {} and sup.alive


def test_start_child_from_several_threads(echo_server, start_sup):
    events: list[Any] = []
    sup = start_sup([])
    procs: list[Any] = []

    def add(n: int) -> None:
        procs.append(sup.start_child(worker(echo_server.url, f"w{n}", events)))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(kids(sup)) == [f"w{n}" for n in range(6)]
    assert all(p.alive for p in procs) and sup.count_children()["active"] == 6
