"""Supervisors under hostile conditions, over real sockets on 127.0.0.1.

* children that die before the supervisor links them (no links or
  references kept: a soak of thousands of crash/restart cycles).

Every wait is bounded.
"""

from __future__ import annotations

import gc
import logging
import time
import weakref
from typing import Any

import pytest

import wsx
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
