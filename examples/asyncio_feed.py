"""An asyncio app fed by a supervised wsx client: ``wsx.aio``.

``Feed`` runs on the application's own asyncio loop (no thread of its own).
Its ``async def handle_frame`` puts every message in an ``asyncio.Queue``
that the app's consumer task reads; the client awaits the ``put`` before it
handles the next message, so the queue gets them in order. On every
connection, ``handle_connect`` subscribes again (a cast to itself, answered
with a reply frame), so a restarted client resumes the feed by itself.

The app starts the client under a supervisor with
``wsx.aio.Supervisor.start_link``, reads three ticks, makes the client crash
once (a message that its callback refuses), reads the ticks of the restarted
client, and stops the supervisor. Against the echo server every message the
client sends comes back to it.

Run it against the local echo server::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/asyncio_feed.py                 # ws://127.0.0.1:8765/
    python examples/asyncio_feed.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/asyncio_feed.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

try:
    import wsx
except ImportError:  # running from a checkout without installing wsx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import wsx
import wsx.aio

DEFAULT_URL = "ws://127.0.0.1:8765/"

#: Where the client connects; main() sets it from the command line.
URL = os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)


#: The app's queue of the messages the feed receives.
Messages = asyncio.Queue[str | bytes]


class Feed(wsx.WebSocket[Messages]):
    """State: the app's ``asyncio.Queue`` of messages."""

    @classmethod
    def start_link(cls, state: Messages, **opts: Any) -> wsx.Client:
        return wsx.start_link(URL, cls, state, **opts)

    def handle_connect(self, conn: wsx.Conn, queue: Messages) -> wsx.ConnectResult[Messages]:
        print(f"Feed connected to {conn.url}", flush=True)
        wsx.cast(wsx.self(), "subscribe")  # handled once connected, as every message
        return ("ok", queue)

    def handle_cast(self, msg: str, queue: Messages) -> wsx.FrameResult[Messages]:
        return ("reply", ("text", msg), queue)

    async def handle_frame(self, frame: wsx.DataFrame,
                           queue: Messages) -> wsx.FrameResult[Messages]:
        if frame == ("text", "poison"):
            raise ValueError("a message the feed cannot handle")
        await queue.put(frame[1])
        return ("ok", queue)

    def terminate(self, reason: Any, queue: Messages) -> None:
        print(f"Feed terminating: {reason!r}", flush=True)


def the_feed(sup: wsx.Supervisor) -> wsx.Client | None:
    """The live child of ``sup`` (None while it restarts)."""
    for _id, proc, _type, _restart in sup.which_children():
        if isinstance(proc, wsx.Client) and proc.alive:
            return proc
    return None


async def ticks(sup: wsx.Supervisor, queue: Messages, first: int) -> None:
    """Send three ticks through the feed and print what the queue gets."""
    feed = the_feed(sup)
    assert feed is not None
    for i in range(first, first + 3):
        await wsx.aio.send_frame(feed, ("text", f"tick {i}"))
    for _ in range(3):
        print(f"app got: {await asyncio.wait_for(queue.get(), 5)}", flush=True)


async def app() -> int:
    queue: Messages = asyncio.Queue()
    sup = await wsx.aio.Supervisor.start_link([(Feed, queue)], strategy="one_for_one")
    print(f"app got: {await asyncio.wait_for(queue.get(), 5)}", flush=True)  # subscribe
    await ticks(sup, queue, 1)

    first = the_feed(sup)
    assert first is not None
    await wsx.aio.send_frame(first, ("text", "poison"))
    for _ in range(500):  # the supervisor starts a fresh Feed; it subscribes again
        feed = the_feed(sup)
        if feed is not None and feed is not first and feed.connection_state == "open":
            break
        await asyncio.sleep(0.01)
    else:
        print("the supervisor did not restart the feed", file=sys.stderr)
        return 1
    print(f"app got: {await asyncio.wait_for(queue.get(), 5)}", flush=True)  # subscribe
    await ticks(sup, queue, 4)

    stopped = await wsx.aio.stop(sup)
    print(f"supervisor stopped: {stopped}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    global URL
    args = sys.argv[1:] if argv is None else argv
    if args:
        URL = args[0]
    # The crash is logged by wsx (logger "wsx") as an error with its traceback.
    logging.basicConfig(level=logging.CRITICAL)
    return asyncio.run(app())


if __name__ == "__main__":
    sys.exit(main())
