"""Authenticating the upgrade request: a bearer token, or user:password in the URL.

Two ways to send credentials with the opening handshake:

* ``extra_headers={"Authorization": "Bearer <token>"}`` adds the header
  (``extra_headers`` also takes a list of ``(name, value)`` pairs, for
  repeated headers); an ``Authorization`` given there wins over the URL's;
* ``ws://user:password@host/`` makes wsx send ``Authorization: Basic ...``
  (user and password are percent-decoded first).

Each client sends ``whoami``; the local echo server answers with the
``Authorization`` header it received, which the script prints.

Run it against the local echo server::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/auth_headers.py                 # ws://127.0.0.1:8765/
    python examples/auth_headers.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ WSX_TOKEN=abc python examples/auth_headers.py
"""

from __future__ import annotations

import base64
import os
import queue
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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


def with_userinfo(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` in front of the host (percent-encoded)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, parts.fragment))


#: Where WhoAmI puts the frames it receives.
Answers = queue.Queue[wsx.DataFrame]


class WhoAmI(wsx.WebSocket[Answers]):
    """Asks the server who it thinks we are; the answer goes to the queue in ``state``."""

    def handle_connect(self, conn: wsx.Conn, state: Answers) -> wsx.ConnectResult[Answers]:
        return ("ok", state)

    def handle_frame(self, frame: wsx.DataFrame, state: Answers) -> wsx.FrameResult[Answers]:
        state.put(frame)
        return ("ok", state)


def ask(url: str, **opts: Any) -> str:
    answers: Answers = queue.Queue()
    client = wsx.start_link(url, WhoAmI, answers, **opts)
    try:
        wsx.send_frame(client, ("text", "whoami"))
        _kind, text = answers.get(timeout=5)
        return str(text)
    finally:
        wsx.stop(client)


def main(argv: list[str] | None = None) -> int:
    url = example_url(argv)
    token = os.environ.get("WSX_TOKEN", "s3cret-token")
    try:
        first = ask(url)
    except wsx.ConnError as exc:
        print(f"auth_headers.py: cannot connect: {exc}\n"
              "start the server first: python examples/echo_server.py --port 8765",
              file=sys.stderr)
        return 1
    if first == "whoami":
        print("auth_headers.py: the server echoed 'whoami' back: this example needs "
              "examples/echo_server.py, which answers it with the Authorization header "
              "it received (`wsx echo-server` only echoes)", file=sys.stderr)
        return 1

    print("bearer token   ->", ask(url, extra_headers={"Authorization": f"Bearer {token}"}))

    user, password = "alice", "p@ss word"
    basic_url = with_userinfo(url, user, password)
    expected = base64.b64encode(f"{user}:{password}".encode()).decode()
    print(f"basic auth     -> {ask(basic_url)} (expected Basic {expected})")

    print("no credentials ->", ask(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
