"""websocket-client end-to-end client (anchor): blocking ``create_connection``.

Pipelined: ``window`` sends, then one send per echo received (the echo server
buffers what it cannot write yet, so the blocking sends cannot deadlock).
"""

from __future__ import annotations

import _common
import websocket


def main() -> None:
    args = _common.parse_args()
    window = _common.window(args)
    payload = _common.payload(args.size)
    ws = websocket.create_connection(args.url, skip_utf8_validation=True)
    bad = 0

    def batch(n: int) -> None:
        nonlocal bad
        send, recv = ws.send_binary, ws.recv
        sent = min(window, n)
        for _ in range(sent):
            send(payload)
        for _ in range(n):
            msg = recv()
            if len(msg) != len(payload):
                bad += 1
            if sent < n:
                sent += 1
                send(payload)

    batch(args.warmup)
    meter = _common.Meter()
    meter.start()
    batch(args.count)
    meter.stop()
    ws.close()
    _common.emit("websocket-client", args, meter, bad=bad)


if __name__ == "__main__":
    main()
