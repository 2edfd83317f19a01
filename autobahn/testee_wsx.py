#!/usr/bin/env python3
"""Autobahn testee for wsx: an echo client written against wsx's public API.

``testee_wsx.py URL`` connects to URL (a fuzzing server's ``/runCase`` URL),
sends every text or binary message back with the same type, and exits 0 when
the connection is over, however it ended. It exits non-zero only when the
connection could not be opened at all or a callback failed.
"""

from __future__ import annotations

import sys

import wsx


class Echo(wsx.WebSocket):
    """Echo every message back with its own type, as Autobahn expects."""

    def handle_frame(self, frame, state):
        return ("reply", frame, state)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: testee_wsx.py WS_URL", file=sys.stderr)
        return 2
    try:
        client = wsx.start(argv[1], Echo, None)
    except wsx.WSXError as exc:
        print(f"testee: cannot connect to {argv[1]}: {exc}", file=sys.stderr)
        return 1
    client.join()
    reason = client.exit_reason
    if isinstance(reason, tuple) and reason[0] == "error" and not isinstance(
        reason[1], (wsx.FrameError, wsx.ConnError)
    ):
        print(f"testee: client failed: {reason!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
