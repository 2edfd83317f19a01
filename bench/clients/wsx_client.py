"""wsx end-to-end client.

``--variant callback`` (default): the callback module does the work on the
loop thread -- ``handle_frame`` replies to each echo with the next message
(``("reply", frame, state)``); the batch is started by ``wsx.cast``.

``--variant thread``: the main thread sends with ``wsx.send_frame`` (which
waits until the loop has written the frame) and ``handle_frame`` releases a
semaphore for each echo, so that at most ``window`` messages are in flight
(1 for pingpong).
"""

from __future__ import annotations

import threading
from typing import Any

import _common

_common.use_checkout()
import wsx  # noqa: E402


class Driver:
    """Shared by the main thread and the callbacks (the client's state)."""

    def __init__(self, frame: tuple[str, bytes], size: int) -> None:
        self.frame = frame
        self.size = size
        self.target = 0
        self.sent = 0
        self.received = 0
        self.done = threading.Event()
        self.sem: threading.Semaphore | None = None
        self.bad = 0


class CallbackEcho(wsx.WebSocket):
    def handle_cast(self, msg: Any, d: Driver) -> Any:
        d.sent += 1
        return ("reply", d.frame, d)

    def handle_frame(self, frame: Any, d: Driver) -> Any:
        if len(frame[1]) != d.size:
            d.bad += 1
        d.received += 1
        if d.received >= d.target:
            d.done.set()
            return ("ok", d)
        if d.sent < d.target:
            d.sent += 1
            return ("reply", d.frame, d)
        return ("ok", d)


class ThreadEcho(wsx.WebSocket):
    def handle_frame(self, frame: Any, d: Driver) -> Any:
        if len(frame[1]) != d.size:
            d.bad += 1
        d.received += 1
        d.sem.release()  # type: ignore[union-attr]
        if d.received >= d.target:
            d.done.set()
        return ("ok", d)


def batch_callback(client: wsx.Client, d: Driver, n: int, window: int) -> None:
    d.target, d.sent, d.received = n, 0, 0
    d.done.clear()
    for _ in range(min(window, n)):
        wsx.cast(client, "go")
    if not d.done.wait(300):
        raise SystemExit(f"timeout: {d.received}/{n} echoes")


def batch_thread(client: wsx.Client, d: Driver, n: int, window: int) -> None:
    d.target, d.sent, d.received = n, 0, 0
    d.done.clear()
    d.sem = sem = threading.Semaphore(window)
    send_frame = wsx.send_frame
    frame = d.frame
    for _ in range(n):
        sem.acquire()
        send_frame(client, frame)
    if not d.done.wait(300):
        raise SystemExit(f"timeout: {d.received}/{n} echoes")


def main() -> None:
    args = _common.parse_args()
    variant = args.variant or "callback"
    window = args.window if args.mode == "pipelined" else 1
    d = Driver(("binary", _common.payload(args.size)), args.size)
    module = CallbackEcho if variant == "callback" else ThreadEcho
    batch = batch_callback if variant == "callback" else batch_thread
    client = wsx.start_link(args.url, module, d, compress=False, max_message_size=None)
    batch(client, d, args.warmup, window)
    meter = _common.Meter()
    meter.start()
    batch(client, d, args.count, window)
    meter.stop()
    wsx.stop(client)
    _common.emit(f"wsx-{variant}", args, meter, bad=d.bad, implementation=wsx.implementation)


if __name__ == "__main__":
    main()
