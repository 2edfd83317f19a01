"""Request/reply over a WebSocket: ``wsx.call`` answered by a later frame.

``Quotes.handle_call`` turns each call into a JSON request to the server
and keeps the caller in its state under the request's id; when the answer
arrives (here the echo server sends the request back), ``handle_frame`` looks
the caller up and answers it with ``wsx.reply``. The calling threads block
only themselves; four of them call at once.

Run it against the local echo server::

    python examples/echo_server.py --port 8765      # in another terminal
    python examples/request_reply.py                # ws://127.0.0.1:8765/
    python examples/request_reply.py ws://127.0.0.1:9000/
    WSX_EXAMPLE_URL=ws://127.0.0.1:9000/ python examples/request_reply.py
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TypedDict

try:
    import wsx
except ImportError:  # running from a checkout without installing wsx
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import wsx

DEFAULT_URL = "ws://127.0.0.1:8765/"


class QuotesState(TypedDict):
    next: int  # the id of the next request
    pending: dict[int, wsx.Caller]  # the callers waiting, by request id


class Quotes(wsx.WebSocket[QuotesState]):
    """State: ``{"next": int, "pending": {request id: caller}}``."""

    def handle_call(
        self, request: Any, caller: wsx.Caller, state: QuotesState
    ) -> wsx.FrameResult[QuotesState]:
        match request:
            case ("quote", symbol):
                rid = state["next"]
                state["next"] += 1
                state["pending"][rid] = caller
                return ("reply", ("text", json.dumps({"id": rid, "symbol": symbol})), state)
        wsx.reply(caller, None)  # an unknown request gets None
        return ("ok", state)

    def handle_frame(
        self, frame: wsx.DataFrame, state: QuotesState
    ) -> wsx.FrameResult[QuotesState]:
        try:
            msg = json.loads(frame[1])
        except (TypeError, ValueError):
            return ("ok", state)  # not one of our answers (the server's greeting...)
        caller = state["pending"].pop(msg.get("id"), None)
        if caller is not None:
            # A real price server would answer with a price; the echo server
            # sends the request back, so the answer is the symbol and its id.
            wsx.reply(caller, f"{msg['symbol']} (request {msg['id']})")
        return ("ok", state)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("WSX_EXAMPLE_URL", DEFAULT_URL)
    # A TypedDict state is annotated before start_link: a type checker reads a
    # bare dict literal there as a plain dict.
    state: QuotesState = {"next": 0, "pending": {}}
    try:
        client = wsx.start_link(url, Quotes, state)
    except wsx.ConnError as exc:
        print(f"cannot connect to {url}: {exc}\n"
              "start the echo server first: python examples/echo_server.py --port 8765",
              file=sys.stderr)
        return 1
    answers: dict[str, Any] = {}

    def ask(symbol: str) -> None:
        answers[symbol] = wsx.call(client, ("quote", symbol), timeout=5)

    threads = [threading.Thread(target=ask, args=(s,)) for s in ("BTC", "ETH", "SOL", "ADA")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for symbol in sorted(answers):
        print(f"{symbol}: {answers[symbol]}")
    print(f"unknown request: {wsx.call(client, 'hello', timeout=5)!r}")
    wsx.stop(client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
