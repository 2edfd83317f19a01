"""A supervised client: the WebSockex README's ``MyApp.Client`` in Python.

``Client`` defines ``start_link(state)``, so the child spec
``(Client, ["WebSockex is Great"])`` makes the supervisor call
``Client.start_link(["WebSockex is Great"])``. When the client crashes, the
one_for_one supervisor starts a fresh one with the same initial state.

The script starts the supervisor, talks to the client, makes it crash once
(a callback that raises), shows the restarted child, and stops everything.

Run it against the local echo server::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/supervised_app.py               # ws://127.0.0.1:8765/
    python examples/supervised_app.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/supervised_app.py
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import time
from pathlib import Path
from typing import Any

try:
    import wsx
except ImportError:  # running from a checkout without installing wsx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import wsx

DEFAULT_URL = "ws://127.0.0.1:8765/"

#: Where the client connects; main() sets it from the command line.
URL = os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)

#: Frames the clients received, for the script to wait on.
received: queue.Queue[wsx.DataFrame] = queue.Queue()


class Client(wsx.WebSocket[list[str]]):
    """MyApp.Client; its state: a list of strings."""

    @classmethod
    def start_link(cls, state: list[str], **opts: Any) -> wsx.Client:
        return wsx.start_link(URL, cls, state, **opts)

    def handle_connect(self, conn: wsx.Conn, state: list[str]) -> wsx.ConnectResult[list[str]]:
        print(f"MyApp.Client connected to {conn.url} with state {state!r}", flush=True)
        return ("ok", state)

    def handle_frame(self, frame: wsx.DataFrame, state: list[str]) -> wsx.FrameResult[list[str]]:
        print(f"MyApp.Client received {frame!r}", flush=True)
        received.put(frame)
        return ("ok", state)

    def handle_cast(self, msg: Any, state: list[str]) -> wsx.FrameResult[list[str]]:
        if msg == "crash":
            raise RuntimeError("asked to crash")
        return ("reply", ("text", str(msg)), state)

    def terminate(self, reason: Any, state: list[str]) -> None:
        print(f"MyApp.Client terminating: {reason!r}", flush=True)


def the_client(sup: wsx.Supervisor) -> wsx.Client | None:
    """The live child of ``sup`` (None while it restarts)."""
    for _id, proc, _type, _restart in sup.which_children():
        if isinstance(proc, wsx.Client):
            return proc
    return None


def main(argv: list[str] | None = None) -> int:
    global URL
    args = sys.argv[1:] if argv is None else argv
    if args:
        URL = args[0]
    # The crash is logged by wsx (logger "wsx") as an error with its traceback.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    children = [(Client, ["WebSockex is Great"])]
    sup = wsx.Supervisor.start_link(children, strategy="one_for_one")
    print(f"children: {sup.which_children()!r}")

    first = the_client(sup)
    assert first is not None
    wsx.cast(first, "WebSockex is Great")
    received.get(timeout=5)
    print(f"state of {first!r}: {wsx.sys.get_state(first)!r}")

    wsx.cast(first, "crash")
    first.join(5)
    deadline = time.monotonic() + 5
    second = the_client(sup)
    while (second is None or second is first) and time.monotonic() < deadline:
        time.sleep(0.02)
        second = the_client(sup)
    if second is None or second is first:
        print("the supervisor did not restart the client", file=sys.stderr)
        sup.stop()
        return 1
    print(f"restarted: {first!r} -> {second!r}, state {wsx.sys.get_state(second)!r}")
    wsx.cast(second, "still here")
    received.get(timeout=5)

    sup.stop()
    print(f"supervisor stopped: {sup.exit_reason!r}; client alive: {second.alive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
