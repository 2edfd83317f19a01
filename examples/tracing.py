"""Tracing clients: ``debug=["trace"]`` at start, or ``wsx.sys.trace`` on a live client.

Trace lines go to stderr, in the ``*DBG*`` format WebSockex borrows from
OTP's ``:sys`` module::

    *DBG* <Client #1> attempting to connect
    *DBG* <Client #1> successfully connected
    *DBG* <Client #1> sending frame: ('text', 'Hello')
    *DBG* <Client #1> received frame: ('text', 'Hello')
    *DBG* <Client #1> received frame: 'ping'
    *DBG* <Client #1> replying from handle_ping with 'pong'
    ...

The first client is traced from its start and replays the README's session
(an echo, the server's ping and our pong, then a close of our own). The
second starts quietly; tracing is switched on for one exchange with
``wsx.sys.trace(client, True)`` and off again. The script also shows
``wsx.sys.statistics`` and ``wsx.sys.log``.

Run it against the local echo server (it pings after the first echo)::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/tracing.py                      # ws://127.0.0.1:8765/
    python examples/tracing.py ws://127.0.0.1:9000/ 2>trace.txt
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/tracing.py
"""

from __future__ import annotations

import os
import queue
import sys
from collections.abc import Awaitable
from pathlib import Path

try:
    import wsx
except ImportError:  # running from a checkout without installing wsx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import wsx

DEFAULT_URL = "ws://127.0.0.1:8765/"


def example_url(argv: list[str] | None = None) -> str:
    """The server URL: the first argument, else ``$WSX_EXAMPLE_URL``, else the default."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args else os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)


#: What Echo puts in its queue: the frames and pings it receives.
Inbox = queue.Queue[wsx.Frame]


class Echo(wsx.WebSocket[Inbox]):
    """Puts every frame and ping in the queue held in ``state``; closes on request."""

    def handle_frame(self, frame: wsx.DataFrame, state: Inbox) -> wsx.FrameResult[Inbox]:
        state.put(frame)
        if frame == ("text", "Close the things!"):
            return ("close", state)
        return ("ok", state)

    def handle_ping(
        self, frame: wsx.PingFrame, state: Inbox
    ) -> wsx.FrameResult[Inbox] | Awaitable[wsx.FrameResult[Inbox]]:
        state.put(frame)
        return super().handle_ping(frame, state)  # the default: a pong (typed as the base's)


class WrongServer(Exception):
    """The server does not behave as examples/echo_server.py does."""


def wait_for(inbox: Inbox, wanted: wsx.Frame) -> None:
    try:
        while inbox.get(timeout=5) != wanted:
            pass
    except queue.Empty:
        hint = (" (this example needs examples/echo_server.py, which pings after its first "
                "echo; `wsx echo-server` does not ping)" if wanted == "ping" else "")
        raise WrongServer(f"no {wanted!r} from the server within 5 s{hint}") from None


def main(argv: list[str] | None = None) -> int:
    try:
        return run(example_url(argv))
    except WrongServer as exc:
        print(f"tracing.py: {exc}", file=sys.stderr)
        return 1
    except wsx.ConnError as exc:
        print(f"tracing.py: cannot connect: {exc}\n"
              "start the server first: python examples/echo_server.py --port 8765",
              file=sys.stderr)
        return 1


def run(url: str) -> int:

    print("1. a client started with debug=['trace']", flush=True)
    inbox: Inbox = queue.Queue()
    traced = wsx.start_link(url, Echo, inbox, debug=["trace"])
    wsx.send_frame(traced, ("text", "Hello"))
    wait_for(inbox, ("text", "Hello"))
    wait_for(inbox, "ping")  # the server pings after its first echo
    wsx.send_frame(traced, ("text", "Close the things!"))
    traced.join(10)
    print(f"   exited with {traced.exit_reason!r}", flush=True)

    print("2. wsx.sys.trace on a live client", flush=True)
    inbox = queue.Queue()
    client = wsx.start_link(url, Echo, inbox)
    wsx.send_frame(client, ("text", "not traced"))
    wait_for(inbox, ("text", "not traced"))
    wait_for(inbox, "ping")
    wsx.sys.statistics(client, True)
    wsx.sys.log(client, 5)
    wsx.sys.trace(client, True)
    wsx.send_frame(client, ("text", "Hi"))
    wait_for(inbox, ("text", "Hi"))
    wsx.sys.trace(client, False)
    wsx.send_frame(client, ("text", "quiet again"))
    wait_for(inbox, ("text", "quiet again"))
    stats = wsx.sys.statistics(client)
    print(f"   statistics: {stats['frames_out']} frames out, {stats['frames_in']} frames in",
          flush=True)
    for _ts, text in wsx.sys.log(client):
        print(f"   log: {text}", flush=True)
    wsx.stop(client)
    print(f"   exited with {client.exit_reason!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
