"""Telemetry to logging: every ``wsx.telemetry`` event as one log record.

``attach_logging()`` attaches one handler to the five events of
``wsx.telemetry.EVENTS`` and turns each into a record on the ``wsx.events``
logger: frames at DEBUG (their kind and size, never their payload),
connections and ends at INFO, a disconnect or an end with an
``("error", exc)`` reason at WARNING. ``detach_logging()`` removes it.

Handlers run on the client's loop thread, between its callbacks: this one
only formats a line, and ``logging`` does the rest.

Run it against the local echo server (either one: ``wsx echo-server`` works
too)::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/telemetry_logging.py            # ws://127.0.0.1:8765/
    python examples/telemetry_logging.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/telemetry_logging.py

It prints lines such as::

    INFO wsx.events: <Client #1 'telemetry-demo'> connected to ws://127.0.0.1:8765/
    DEBUG wsx.events: <Client #1 'telemetry-demo'> sent text frame, 5 bytes
    DEBUG wsx.events: <Client #1 'telemetry-demo'> received text frame, 5 bytes
    INFO wsx.events: <Client #1 'telemetry-demo'> disconnected: ('local', 'normal') (attempt 1)
    INFO wsx.events: <Client #1 'telemetry-demo'> terminated: ('local', 'normal')
"""

from __future__ import annotations

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

DEFAULT_URL = "ws://127.0.0.1:8765/"

HANDLER_ID = "examples.telemetry_logging"


def example_url(argv: list[str] | None = None) -> str:
    """The URL from the command line, else ``$WSX_EXAMPLE_URL``, else the default."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args else os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)


def frame_kind(frame: Any) -> str:
    """``"text"`` for ``("text", "hi")``, ``"ping"`` for ``"ping"``: the kind, no payload."""
    return frame if isinstance(frame, str) else str(frame[0])


def is_error(reason: Any) -> bool:
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "error"


def log_event(event: tuple[str, ...], measurements: dict[str, Any], metadata: dict[str, Any],
              logger: logging.Logger) -> None:
    """The telemetry handler: ``config`` is the logger to write to."""
    client = metadata["client"]
    if event == ("wsx", "frame", "sent") or event == ("wsx", "frame", "received"):
        if logger.isEnabledFor(logging.DEBUG):  # frames are the hot path: check first
            logger.debug("%r %s %s frame, %d bytes", client, event[2],
                         frame_kind(metadata["frame"]), measurements["size"])
    elif event == ("wsx", "connected"):
        logger.info("%r connected to %s", client, metadata["conn"].url)
    elif event == ("wsx", "disconnected"):
        reason = metadata["reason"]
        logger.log(logging.WARNING if is_error(reason) else logging.INFO,
                   "%r disconnected: %r (attempt %d)", client, reason, metadata["attempt_number"])
    elif event == ("wsx", "terminate"):
        reason = metadata["reason"]
        logger.log(logging.WARNING if is_error(reason) else logging.INFO,
                   "%r terminated: %r", client, reason)


def attach_logging(logger: logging.Logger | None = None) -> None:
    """Log every telemetry event of every client (to ``wsx.events`` by default)."""
    wsx.telemetry.attach_many(HANDLER_ID, wsx.telemetry.EVENTS, log_event,
                              logger or logging.getLogger("wsx.events"))


def detach_logging() -> bool:
    return wsx.telemetry.detach(HANDLER_ID)


class Greeter(wsx.WebSocket):
    """Ignores what comes back, and closes once the server echoes ``bye``."""

    def handle_frame(self, frame: Any, state: Any) -> Any:
        if frame == ("text", "bye"):
            return ("close", state)
        return ("ok", state)


def main(argv: list[str] | None = None) -> int:
    url = example_url(argv)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,
                        format="%(levelname)s %(name)s: %(message)s")
    attach_logging()
    try:
        client = wsx.start_link(url, Greeter, None, name="telemetry-demo")
        wsx.send_frame(client, ("text", "hello"))
        wsx.send_frame(client, ("binary", b"\x00\x01\x02"))
        wsx.send_frame(client, ("text", "bye"))
        if not client.join(10):
            print("the client did not end in time", file=sys.stderr)
            wsx.stop(client)
            return 1
    finally:
        detach_logging()
    return 0 if client.exit_reason == ("local", "normal") else 1


if __name__ == "__main__":
    sys.exit(main())
