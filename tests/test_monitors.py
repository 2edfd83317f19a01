"""wsx.monitor / wsx.demonitor: DOWN messages in handle_info, over real connections."""

from __future__ import annotations

from typing import Any

import wsx
from conftest import wait_until
from test_client import Probe, start

TIMEOUT = 5.0


def downs(probe: Probe) -> list[Any]:
    return [m for m in probe.of("info") if type(m) is tuple and m and m[0] == "DOWN"]


def test_the_watcher_gets_down_with_the_exit_reason(echo_server: Any) -> None:
    watcher, wprobe = start(echo_server.url)
    target, _ = start(echo_server.url)
    ref = wsx.monitor(watcher, target)
    assert ref.watcher is watcher and ref.target is target
    assert wsx.stop(target, "bye", timeout=TIMEOUT)
    wait_until(lambda: downs(wprobe))
    assert downs(wprobe) == [("DOWN", ref, target, "bye")]
    assert watcher.alive  # a monitor never ends the watcher
    assert wsx.demonitor(ref) is False  # it fired
    assert wsx.stop(watcher)


def test_a_crash_is_reported_and_a_dead_target_downs_at_once(echo_server: Any) -> None:
    watcher, wprobe = start(echo_server.url)
    target, _ = start(echo_server.url, Probe(cast=lambda msg, st: "bad shape"))
    ref = wsx.monitor(watcher, target)
    wsx.cast(target, "crash")
    assert target.join(TIMEOUT)
    wait_until(lambda: downs(wprobe))
    (_, got_ref, got_target, reason) = downs(wprobe)[0]
    assert got_ref is ref and got_target is target
    assert reason[0] == "error" and isinstance(reason[1], wsx.BadResponseError)
    late = wsx.monitor(watcher, target)  # already dead: DOWN at once
    wait_until(lambda: len(downs(wprobe)) == 2)
    assert downs(wprobe)[1] == ("DOWN", late, target, target.exit_reason)
    assert wsx.stop(watcher)


def test_demonitor_before_the_exit_stops_the_down(echo_server: Any) -> None:
    watcher, wprobe = start(echo_server.url)
    target, _ = start(echo_server.url, name="monitored-target")
    ref = wsx.monitor(watcher, "monitored-target")
    assert wsx.demonitor(ref) is True
    assert wsx.demonitor(ref) is False
    assert wsx.stop(target)
    wsx.send(watcher, "after")
    wait_until(lambda: "after" in wprobe.of("info"))
    assert downs(wprobe) == []
    assert wsx.stop(watcher)


def test_a_supervisor_can_be_monitored(echo_server: Any) -> None:
    watcher, wprobe = start(echo_server.url)
    sup = wsx.Supervisor.start_link([])
    ref = wsx.monitor(watcher, sup)
    sup.stop(timeout=TIMEOUT)
    wait_until(lambda: downs(wprobe))
    assert downs(wprobe) == [("DOWN", ref, sup, sup.exit_reason)]
    assert wsx.stop(watcher)


def test_the_monitors_of_a_watcher_end_with_it(echo_server: Any) -> None:
    # As in Erlang: the watcher's exit removes its monitor from the target.
    watcher, _ = start(echo_server.url)
    target, _ = start(echo_server.url)
    ref = wsx.monitor(watcher, target)
    assert wsx.stop(watcher, timeout=TIMEOUT)
    assert wsx.demonitor(ref) is False  # gone with the watcher
    late = wsx.monitor(watcher, target)  # a dead watcher: a reference that never fires
    assert wsx.demonitor(late) is False
    assert wsx.stop(target, timeout=TIMEOUT)
