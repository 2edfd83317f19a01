"""wsx end-to-end client.

``--variant callback`` (default): the callback module does the work on the
loop thread -- ``handle_frame`` replies to each echo with the next message
(``("reply", frame, state)``); the batch is started by ``wsx.cast``. With
``--connections N`` the batch is shared by N clients on the default loop,
each with its own window.

``--variant thread``: the main thread sends with ``wsx.send_frame`` and
``handle_frame`` releases a semaphore for each echo, so that at most
``window`` messages are in flight (1 for pingpong, all for stream).

``--variant call`` (pingpong): the main thread's ``wsx.call`` sends the
message from ``handle_call`` and ``handle_frame`` answers it with
``wsx.reply``: one synchronous request/response per message.
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any

import _common

_common.use_checkout()
import wsx  # noqa: E402

_now = time.perf_counter_ns


class Driver:
    """Shared by the main thread and the callbacks (one client's state)."""

    def __init__(self, frame: tuple[str, bytes], size: int, latency: bool) -> None:
        self.frame = frame
        self.size = size
        self.target = 0
        self.sent = 0
        self.received = 0
        self.done = threading.Event()
        self.sem: threading.Semaphore | None = None
        self.bad = 0
        self.caller: Any = None
        self.rtts: list[int] | None = [] if latency else None
        self.t_sent = 0
        #: Shared by the connections of one batch: the main thread waits once
        #: for all of them (not once per connection, which would wake it and
        #: make it compete for the GIL with the loop as each one finishes).
        self.group: Group | None = None


class Group:
    """Connections still running in a batch; ``done`` is set when none is."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.done = threading.Event()

    def finished(self) -> None:
        # Loop thread only (every client of the batch is on the default loop).
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class CallbackEcho(wsx.WebSocket):
    def handle_cast(self, msg: Any, d: Driver) -> Any:
        d.sent += 1
        d.t_sent = _now()
        return ("reply", d.frame, d)

    def handle_frame(self, frame: Any, d: Driver) -> Any:
        if d.rtts is not None:
            d.rtts.append(_now() - d.t_sent)
        if len(frame[1]) != d.size:
            d.bad += 1
        d.received += 1
        if d.received >= d.target:
            if d.received == d.target and d.group is not None:
                d.group.finished()
            return ("ok", d)
        if d.sent < d.target:
            d.sent += 1
            if d.rtts is not None:
                d.t_sent = _now()
            return ("reply", d.frame, d)
        return ("ok", d)


class ThreadEcho(wsx.WebSocket):
    def handle_frame(self, frame: Any, d: Driver) -> Any:
        if len(frame[1]) != d.size:
            d.bad += 1
        d.received += 1
        sem = d.sem
        if sem is not None:  # None in a stream: echoes are only counted
            sem.release()
        if d.received >= d.target:
            d.done.set()
        return ("ok", d)


class CallEcho(wsx.WebSocket):
    def handle_call(self, request: Any, caller: Any, d: Driver) -> Any:
        d.caller = caller
        return ("reply", d.frame, d)

    def handle_frame(self, frame: Any, d: Driver) -> Any:
        if len(frame[1]) != d.size:
            d.bad += 1
        d.received += 1
        wsx.reply(d.caller, None)
        return ("ok", d)


def batch_callback(clients: list[wsx.Client], ds: list[Driver], n: int, window: int) -> None:
    shares = [n // len(ds) + (1 if i < n % len(ds) else 0) for i in range(len(ds))]
    group = Group(sum(1 for share in shares if share))
    for d, share in zip(ds, shares, strict=True):
        d.target, d.sent, d.received = share, 0, 0
        d.group = group
        if d.rtts is not None:
            d.rtts.clear()
    for client, d in zip(clients, ds, strict=True):
        for _ in range(min(window, d.target)):
            wsx.cast(client, "go")
    if group.remaining and not group.done.wait(300):
        raise SystemExit(f"timeout: {sum(d.received for d in ds)}/{n} echoes")


def batch_thread(clients: list[wsx.Client], ds: list[Driver], n: int, window: int) -> None:
    (client,), (d,) = clients, ds
    d.target, d.sent, d.received = n, 0, 0
    d.done.clear()
    send_frame = wsx.send_frame
    frame = d.frame
    rtts = d.rtts
    if window >= n:  # stream: back to back, nothing to wait for until the end
        d.sem = None
        for _ in range(n):
            send_frame(client, frame)
        if not d.done.wait(300):
            raise SystemExit(f"timeout: {d.received}/{n} echoes")
        return
    d.sem = sem = threading.Semaphore(window)
    if rtts is not None:  # pingpong: send, wait for the echo
        rtts.clear()
        d.sem = sem = threading.Semaphore(0)
        for _ in range(n):
            t0 = _now()
            send_frame(client, frame)
            sem.acquire()
            rtts.append(_now() - t0)
    else:
        for _ in range(n):
            sem.acquire()
            send_frame(client, frame)
    if not d.done.wait(300):
        raise SystemExit(f"timeout: {d.received}/{n} echoes")


def batch_call(clients: list[wsx.Client], ds: list[Driver], n: int, window: int) -> None:
    (client,), (d,) = clients, ds
    d.received = 0
    call = wsx.call
    rtts = d.rtts
    if rtts is not None:
        rtts.clear()
    for _ in range(n):
        t0 = _now()
        call(client, "go", timeout=30)
        if rtts is not None:
            rtts.append(_now() - t0)


VARIANTS = {"callback": (CallbackEcho, batch_callback), "thread": (ThreadEcho, batch_thread),
            "call": (CallEcho, batch_call)}


def main() -> None:
    args = _common.parse_args()
    variant = args.variant or "callback"
    module, batch = VARIANTS[variant]
    if args.connections > 1 and variant != "callback":
        raise SystemExit("--connections needs --variant callback")
    if variant == "call" and args.mode != "pingpong":
        raise SystemExit("--variant call is pingpong only")
    window = _common.window(args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1024), hard))
    frame = ("binary", _common.payload(args.size))
    ds = [Driver(frame, args.size, args.latency) for _ in range(args.connections)]
    clients = [wsx.start_link(args.url, module, d, compress=False, max_message_size=None)
               for d in ds]
    batch(clients, ds, args.warmup, window)
    meter = _common.Meter()
    meter.start()
    batch(clients, ds, args.count, window)
    meter.stop()
    for client in clients:
        wsx.stop(client)
    extra: dict[str, Any] = {}
    if args.latency:
        extra["rtt_us"] = _common.percentiles([t for d in ds for t in d.rtts or ()])
    _common.emit(f"wsx-{variant}", args, meter, bad=sum(d.bad for d in ds),
                 implementation=wsx.implementation, **extra)


if __name__ == "__main__":
    main()
