"""Soak: a supervised client rides out 100 abrupt server deaths.

The echo server is the ``websockets`` package's, in a child process that is
killed with SIGKILL (no close frame, no TCP shutdown by the application) and
started again on the same port, 100 times, while one supervised wsx client
reconnects by itself (``handle_disconnect`` returns ``reconnect_after``).

Accounting: the client sends only from ``handle_frame`` (the server greets
each connection; every echo is answered with the next message), so at most one
message is in flight per connection. The server appends every message it
receives to a log file before echoing it (a write survives SIGKILL). Per
connection, the sequences ``sent`` ⊇ ``received by the server`` ⊇ ``echoed``
must be prefixes of each other, each at most one message shorter than the
previous: only the message in flight when the server died may be lost.

Resources: open file descriptors and threads must be back to their number
after the same phase before the restarts, and RSS growth must stay bounded.
The numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import wsx
from conftest import wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts /proc/self/fd and reads /proc/self/status"
)

RESTARTS = 100
WARMUP = 3
ECHOES_PER_CONNECTION = 50
RSS_GROWTH_LIMIT_MB = 20

# The server helper: imports websockets once, then forks one server process
# per "start" command (fast restarts) and SIGKILLs it on "kill".
SERVER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    port, log_path = int(sys.argv[1]), sys.argv[2]
    child = None
    incarnation = 0

    def serve_forever(n, ready_fd):
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        async def handler(ws):
            try:
                await ws.send(f"hello {n}")
                async for msg in ws:
                    os.write(log, f"{n} {msg.split('|', 1)[0]}\\n".encode())
                    await ws.send(msg)
            except ConnectionClosed:
                pass

        async def main():
            async with serve(handler, "127.0.0.1", port, max_size=2**20):
                os.write(ready_fd, b"r")
                await asyncio.Future()

        asyncio.run(main())

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "start":
            r, w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(r)
                try:
                    serve_forever(incarnation, w)
                finally:
                    os._exit(1)
            os.close(w)
            ok = os.read(r, 1) == b"r"
            os.close(r)
            incarnation += 1
            print("ready" if ok else "failed", flush=True)
        elif cmd == "kill":
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            child = None
            print("killed", flush=True)
        elif cmd == "exit":
            break
    if child:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    """
)


class ServerControl:
    """Drive the server helper: ``start()`` / ``kill()`` the echo server process."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port), str(log_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def _command(self, cmd: str, expect: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == expect, f"server helper answered {answer!r} to {cmd!r}"

    def start(self) -> None:
        self._command("start", "ready")

    def kill(self) -> None:
        self._command("kill", "killed")

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("exit\n")
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Ledger:
    """What the client did, per connection (counts only, so RSS measures wsx)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.connections: list[dict[str, Any]] = []  # one per successful connection
        self.errors: list[str] = []
        self.disconnect_reasons: list[Any] = []

    def current(self) -> dict[str, Any] | None:
        with self.lock:
            return self.connections[-1] if self.connections else None


def message(conn_no: int, seq: int) -> str:
    """The ``seq``-th message of connection ``conn_no`` (varied size, some non-ASCII)."""
    pad = ("é" if seq % 3 == 0 else "x") * ((seq * 37 + conn_no) % 1500)
    return f"c{conn_no}-{seq}|{pad}"


class SoakClient(wsx.WebSocket):
    @classmethod
    def start_link(cls, state: Any = None, **opts: Any) -> Any:
        return wsx.start_link(state.url, cls, state)

    def handle_connect(self, conn: Any, ledger: Ledger) -> Any:
        with ledger.lock:
            ledger.connections.append({"no": len(ledger.connections), "incarnation": None,
                                       "sent": 0, "echoed": 0, "open": True})
        return ("ok", ledger)

    def handle_frame(self, frame: Any, ledger: Ledger) -> Any:
        cur = ledger.current()
        assert cur is not None
        kind, text = frame
        if kind != "text":
            ledger.errors.append(f"unexpected frame {frame!r:.80}")
            return ("ok", ledger)
        if text.startswith("hello "):
            if cur["incarnation"] is not None:
                ledger.errors.append(f"second greeting on connection {cur['no']}")
            cur["incarnation"] = int(text.split()[1])
        elif text != message(cur["no"], cur["echoed"]) or cur["echoed"] + 1 != cur["sent"]:
            ledger.errors.append(f"connection {cur['no']}: echo {text[:20]!r} after "
                                 f"{cur['echoed']} echoes of {cur['sent']} sent")
            return ("ok", ledger)
        else:
            cur["echoed"] += 1
        cur["sent"] += 1
        return ("reply", ("text", message(cur["no"], cur["sent"] - 1)), ledger)

    def handle_disconnect(self, status: Any, ledger: Ledger) -> Any:
        cur = ledger.current()
        if cur is not None and cur["open"]:
            cur["open"] = False
            ledger.disconnect_reasons.append(status.reason)
        return ("reconnect_after", 0.005, ledger)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def _fd_targets() -> dict[str, str]:
    """Open descriptors: number -> what it points at (socket:[inode], pipe, file...)."""
    targets = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory listing's own descriptor, already closed
            pass
    return targets


def _snapshot() -> dict[str, Any]:
    fds = _fd_targets()
    threads = set(threading.enumerate())
    return {"fds": len(fds), "threads": len(threads), "rss_kb": _rss_kb(),
            "fd_set": set(fds), "thread_set": threads,
            "sockets": sum(1 for target in fds.values() if target.startswith("socket:"))}


def _new_since(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[Any], set[Any]]:
    """Descriptor numbers and threads present in ``after`` and not in ``before``.

    Sets, not counts: a thread or descriptor of an earlier test that ends
    during the soak must not hide (or fake) a leak. (The client's socket is
    a new one after each reconnect, usually under the same number.)
    """
    return after["fd_set"] - before["fd_set"], after["thread_set"] - before["thread_set"]


def _settled(before: dict[str, Any]) -> dict[str, Any]:
    """Snapshot once nothing is new since ``before`` (or after 3 s: the test then fails)."""
    deadline = time.monotonic() + 3
    while True:
        snap = _snapshot()
        new_fds, new_threads = _new_since(before, snap)
        if (not new_fds and not new_threads) or time.monotonic() > deadline:
            return snap
        time.sleep(0.01)


def test_supervised_client_survives_100_server_kills(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "server-received.log"
    log_path.touch()
    ledger = Ledger(f"ws://127.0.0.1:{port}/")
    rng = random.Random(7)
    server = ServerControl(port, log_path)
    sup = None
    t_start = time.monotonic()
    try:
        server.start()
        before_start = _snapshot()
        sup = wsx.Supervisor.start_link([(SoakClient, ledger)], max_restarts=3, max_seconds=5)
        child = sup.which_children()[0][1]
        assert isinstance(child, wsx.Client)

        def cycle(index: int) -> None:
            # The connection to the current incarnation is up and has echoed enough.
            wait_until(lambda: (c := ledger.current()) is not None and c["no"] == index
                       and c["echoed"] >= ECHOES_PER_CONNECTION, 10,
                       f"connection {index} with {ECHOES_PER_CONNECTION} echoes")
            server.kill()
            wait_until(lambda: not ledger.connections[index]["open"], 10,
                       f"disconnect of connection {index}")
            # Sometimes leave the server down for a few refused reconnects.
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 0.03))
            server.start()

        for i in range(WARMUP):
            cycle(i)
        wait_until(lambda: (c := ledger.current()) is not None and c["no"] == WARMUP
                   and c["echoed"] >= ECHOES_PER_CONNECTION, 10, "connected after warm-up")
        before = _snapshot()
        t_soak = time.monotonic()
        for i in range(WARMUP, WARMUP + RESTARTS):
            cycle(i)
        last = WARMUP + RESTARTS
        wait_until(lambda: (c := ledger.current()) is not None and c["no"] == last
                   and c["echoed"] >= ECHOES_PER_CONNECTION, 10, "connected after the restarts")
        soak_seconds = time.monotonic() - t_soak
        after = _settled(before)

        assert sup.which_children()[0][1] is child, "the supervisor restarted the client"
        assert child.alive and child.connection_state == "open"
        sup.stop()
        sup = None
        # What the shared loop holds (its thread, selector and wake-up pair)
        # stays, as it would for any client; nothing else may.
        after_stop = _snapshot()
    finally:
        if sup is not None:
            sup.stop()
        server.close()

    total_sent = sum(c["sent"] for c in ledger.connections)
    total_echoed = sum(c["echoed"] for c in ledger.connections)
    print(f"\nsoak: {RESTARTS} server kills in {soak_seconds:.1f} s "
          f"(total {time.monotonic() - t_start:.1f} s), {len(ledger.connections)} connections, "
          f"{total_sent} messages sent, {total_echoed} echoed")
    kinds: dict[str, int] = {}
    for reason in ledger.disconnect_reasons:
        key = repr(reason) if reason[0] != "error" else f"error {type(reason[1]).__name__}"
        kinds[key] = kinds.get(key, 0) + 1
    print(f"soak: disconnect reasons {kinds}")
    for label, snap in (("before client", before_start), ("before soak", before),
                        ("after soak", after), ("after stop", after_stop)):
        print(f"soak: {label:13} fds={snap['fds']} (sockets {snap['sockets']}) "
              f"threads={snap['threads']} "
              f"rss={snap['rss_kb'] / 1024:.1f} MB")

    assert not ledger.errors, ledger.errors[:5]
    # One connection per server incarnation, in order: no spurious disconnects.
    assert [c["incarnation"] for c in ledger.connections] == list(range(WARMUP + RESTARTS + 1))
    for reason in ledger.disconnect_reasons:
        ok = reason == ("remote", "closed") or (
            type(reason) is tuple and reason[0] == "error" and isinstance(reason[1], wsx.ConnError))
        assert ok, f"unexpected disconnect reason {reason!r}"
    assert len(ledger.disconnect_reasons) == WARMUP + RESTARTS

    # Per connection: sent ⊇ server-received ⊇ echoed, each at most one behind.
    received: dict[int, list[str]] = {}
    for line in log_path.read_text().splitlines():
        incarnation, tag = line.split(" ", 1)
        received.setdefault(int(incarnation), []).append(tag)
    in_flight = sum(c["sent"] - len(received.get(c["incarnation"], [])) for c in ledger.connections)
    print(f"soak: {sum(map(len, received.values()))} received by the server; {in_flight} sent "
          "and not received, each the message in flight when its server was killed")
    for c in ledger.connections:
        got = received.get(c["incarnation"], [])
        expected = [f"c{c['no']}-{k}" for k in range(len(got))]
        assert got == expected, f"connection {c['no']}: server received {got[:3]}... not in order"
        assert c["sent"] - 1 <= len(got) <= c["sent"], (c, len(got))
        assert len(got) - 1 <= c["echoed"] <= len(got), (c, len(got))
        assert c["echoed"] >= ECHOES_PER_CONNECTION

    new_fds, new_threads = _new_since(before, after)
    assert not new_fds, f"file descriptors leaked by the restarts: {sorted(new_fds)}"
    assert after["sockets"] <= before["sockets"], f"sockets leaked: {before} -> {after}"
    assert not new_threads, f"threads leaked by the restarts: {new_threads}"
    growth_mb = (after["rss_kb"] - before["rss_kb"]) / 1024
    assert growth_mb < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth_mb:.1f} MB"
    # Stopping the supervisor leaves at most what the shared loop holds.
    new_fds, new_threads = _new_since(before_start, after_stop)
    assert len(new_threads) <= 1 and all("loop" in t.name for t in new_threads), new_threads
    assert len(new_fds) <= 3, sorted(new_fds)
