"""EchoClient: the echo client from WebSockex's examples, written with wsx.

The client sends text messages, logs what comes back, and closes the
connection itself when the server echoes ``"Close the things!"``.

Run it against the local echo server (from the repository root, or from
anywhere once wsx is installed)::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/echo_client.py                  # ws://127.0.0.1:8765/
    python examples/echo_client.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/echo_client.py

From Python, as in the WebSockex README::

    client = EchoClient.start_link(debug=["trace"])   # prints *DBG* lines
    echo(client, "Hello")
    echo(client, "Close the things!")
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

try:
    import wsx
except ImportError:  # running from a checkout without installing wsx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import wsx

DEFAULT_URL = "ws://127.0.0.1:8765/"

logger = logging.getLogger("EchoClient")


def example_url(argv: list[str] | None = None) -> str:
    """The server URL: the first argument, else ``$WSX_EXAMPLE_URL``, else the default."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args else os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)


class EchoClient(wsx.WebSocket[str]):
    """The callback module; its state is a placeholder, as in the Elixir version."""

    @classmethod
    def start_link(cls, url: str | None = None, **opts: Any) -> wsx.Client:  # type: ignore[override]
        return wsx.start_link(url or example_url(), cls, "fake_state", **opts)

    def handle_connect(self, conn: wsx.Conn, state: str) -> wsx.ConnectResult[str]:
        logger.info("Connected!")
        return ("ok", state)

    def handle_frame(self, frame: wsx.DataFrame, state: str) -> wsx.FrameResult[str]:
        _kind, msg = frame
        logger.info("Received Message: %s", msg)
        if frame == ("text", "Close the things!"):
            return ("close", state)
        return ("ok", state)

    def handle_disconnect(
        self, status: wsx.DisconnectStatus, state: str
    ) -> wsx.DisconnectResult[str] | Awaitable[wsx.DisconnectResult[str]]:
        reason = status.reason
        if reason[0] == "local":
            detail = reason[1] if len(reason) == 2 else reason[1:]
            logger.info("Local close with reason: %s", detail)
            return ("ok", state)
        return super().handle_disconnect(status, state)


def echo(client: wsx.Client, message: str) -> None:
    """Send ``message`` as a text frame (the server sends it back)."""
    logger.info("Sending message: %s", message)
    wsx.send_frame(client, ("text", message))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    url = example_url(argv)
    client = EchoClient.start_link(url)
    echo(client, "Hello")
    echo(client, "Close the things!")
    if not client.join(10):
        print("the client did not finish within 10 s", file=sys.stderr)
        wsx.stop(client)
        return 1
    print(f"client exited: {client.exit_reason!r}")
    return 0 if client.exit_reason == ("local", "normal") else 1


if __name__ == "__main__":
    sys.exit(main())
