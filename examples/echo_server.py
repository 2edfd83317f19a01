"""A tiny local WebSocket echo server for trying the wsx examples.

It uses the ``websockets`` package (``pip install websockets``) and listens on
127.0.0.1. Start it in one terminal, then run any example in another::

    python examples/echo_server.py --port 8765
    python examples/echo_client.py                 # connects to ws://127.0.0.1:8765/

What it does with each connection:

* every text or binary message is sent back unchanged;
* after echoing the first message of a connection it sends a ping with an
  empty payload, so that a traced client (``debug=["trace"]``) shows the
  ``received frame: 'ping'`` and ``replying from handle_ping with 'pong'``
  lines, as in the WebSockex README's session; ``--ping-interval N`` also
  pings every N seconds;
* the text message ``whoami`` is answered with the ``Authorization`` header
  the client sent in its upgrade request (see ``auth_headers.py``).

``--port 0`` picks a free port. Once listening, the server prints one line,
``listening on ws://HOST:PORT/``, and runs until interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

try:
    from websockets.asyncio.server import serve
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("examples/echo_server.py needs the websockets package (>= 13): pip install websockets")


async def ping(ws: Any) -> None:
    """Send a ping with an empty payload (skipped while the previous one is unanswered)."""
    try:
        await ws.ping(b"")
    except RuntimeError:
        # websockets refuses a second ping with the same payload before the
        # pong of the first one (ConcurrencyError is a RuntimeError).
        pass


async def pinger(ws: Any, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await ping(ws)


def make_handler(ping_interval: float) -> Any:
    async def handler(ws: Any) -> None:
        task = asyncio.ensure_future(pinger(ws, ping_interval)) if ping_interval > 0 else None
        try:
            first = True
            async for message in ws:
                if message == "whoami":
                    auth = ws.request.headers.get("Authorization")
                    await ws.send(f"authorization: {auth if auth is not None else '(none)'}")
                else:
                    await ws.send(message)
                if first:
                    first = False
                    await ping(ws)
        finally:
            if task is not None:
                task.cancel()

    return handler


async def main(host: str, port: int, ping_interval: float) -> None:
    async with serve(make_handler(ping_interval), host, port) as server:
        bound = server.sockets[0].getsockname()
        print(f"listening on ws://{bound[0]}:{bound[1]}/", flush=True)
        await asyncio.get_running_loop().create_future()  # run until cancelled


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A local WebSocket echo server for the wsx examples.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks one)")
    parser.add_argument("--ping-interval", type=float, default=0.0,
                        help="also ping every N seconds (default: only after each echo)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(main(args.host, args.port, args.ping_interval))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    cli()
