#!/usr/bin/env python3
"""Stand-in Autobahn testee: the `websockets` package's sync client.

Testee contract (see README.md): ``testee_websockets.py URL`` connects to
URL, echoes every text/binary message back with the same type until the
connection is over, and exits 0 however the connection ended (clean close,
close because the library detected a protocol error, or a dropped TCP
connection).  It exits non-zero only when something unexpected happened
(cannot connect, opening handshake failed, an unexpected exception).
"""
import sys

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect


def main(argv):
    if len(argv) != 2:
        print("usage: testee_websockets.py WS_URL", file=sys.stderr)
        return 2
    url = argv[1]
    try:
        ws = connect(url, max_size=None, ping_interval=None, open_timeout=10)
    except (OSError, InvalidHandshake) as exc:
        print("testee: cannot connect to %s: %r" % (url, exc), file=sys.stderr)
        return 1
    try:
        with ws:
            while True:
                msg = ws.recv()          # str for text, bytes for binary
                ws.send(msg)             # same type back
    except ConnectionClosed as exc:
        print("testee: connection closed: %s" % exc, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
