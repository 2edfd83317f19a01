"""Frame codec throughput (sans-I/O, no sockets): frames per second.

Encode: one binary message per call, client side (masked with a fresh key):

* ``wsx-encode_frame`` -- ``wsx.core.frames.encode_frame(OP_BINARY, payload)``;
* ``wsx-protocol``     -- ``wsx.core.protocol.Protocol.send(("binary", payload))``
  + ``data_to_send()``;
* ``websockets``       -- ``ClientProtocol.send_binary(payload)`` + ``data_to_send()``
  (the sans-I/O layer of websockets, in the OPEN state);
* ``wsproto``          -- ``Connection(CLIENT).send(BytesMessage(payload))``.

Parse: a stream of unmasked server frames fed in 64 KiB pieces (as a
``recv`` of 64 KiB would return them; frames straddle the pieces):

* ``wsx-frameparser`` -- ``wsx.core.frames.FrameParser.feed`` (frames only);
* ``wsx-protocol``    -- ``Protocol.receive_data`` (frames to ``("binary", bytes)`` events);
* ``websockets``      -- ``receive_data`` + ``events_received``;
* ``wsproto``         -- ``receive_data`` + ``events()``.

Anchors for the ratio column: websockets and wsproto.

Run alone: ``python bench/codec_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SIZES = [64, 4096]
# frames per timed call (one "stream")
FRAMES_PER_STREAM = {64: 1000, 4096: 256}
CHUNK = 64 * 1024
ANCHORS = ["websockets", "wsproto"]


def _websockets_protocol() -> Any:
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    uri = parse_uri("ws://127.0.0.1:8765/")
    try:
        p = ClientProtocol(uri, state=State.OPEN, max_size=None)
    except TypeError:  # older websockets: no state= argument
        p = ClientProtocol(uri, max_size=None)
        p.state = State.OPEN
        p.parser = p.parse()  # the parser was started in CONNECTING state
        next(p.parser)
    return p


def encoders() -> tuple[dict[str, Callable[[bytes, int], Callable[[], Any]]], dict[str, str]]:
    """``name -> factory(payload, n) -> call encoding n frames``."""
    from wsx.core.frames import OP_BINARY, encode_frame
    from wsx.core.protocol import Protocol

    found: dict[str, Callable[[bytes, int], Callable[[], Any]]] = {}
    kinds: dict[str, str] = {}

    def wsx_encode(payload: bytes, n: int) -> Callable[[], Any]:
        rng = range(n)

        def call() -> None:
            for _ in rng:
                encode_frame(OP_BINARY, payload)

        return call

    def wsx_protocol(payload: bytes, n: int) -> Callable[[], Any]:
        proto = Protocol(max_message_size=None)
        send = proto.send
        data_to_send = proto.data_to_send
        frame = ("binary", payload)
        rng = range(n)

        def call() -> None:
            for _ in rng:
                send(frame)
                data_to_send()

        return call

    found["wsx-encode_frame"] = wsx_encode
    found["wsx-protocol"] = wsx_protocol
    kinds["wsx-encode_frame"] = kinds["wsx-protocol"] = "wsx"

    try:
        _websockets_protocol()

        def ws_encode(payload: bytes, n: int) -> Callable[[], Any]:
            p = _websockets_protocol()
            send_binary = p.send_binary
            data_to_send = p.data_to_send
            rng = range(n)

            def call() -> None:
                for _ in rng:
                    send_binary(payload)
                    data_to_send()

            return call

        found["websockets"] = ws_encode
        kinds["websockets"] = "anchor"
    except ImportError:
        pass

    try:
        from wsproto.connection import Connection, ConnectionType
        from wsproto.events import BytesMessage

        def wsproto_encode(payload: bytes, n: int) -> Callable[[], Any]:
            conn = Connection(ConnectionType.CLIENT)
            send = conn.send
            rng = range(n)

            def call() -> None:
                for _ in rng:
                    send(BytesMessage(data=payload))

            return call

        found["wsproto"] = wsproto_encode
        kinds["wsproto"] = "anchor"
    except ImportError:
        pass
    return found, kinds


def parsers() -> tuple[dict[str, Callable[[list[bytes], int], Callable[[], Any]]], dict[str, str]]:
    """``name -> factory(chunks, n) -> call parsing the whole stream (n frames)``."""
    from wsx.core.frames import FrameParser
    from wsx.core.protocol import Protocol

    found: dict[str, Callable[[list[bytes], int], Callable[[], Any]]] = {}
    kinds: dict[str, str] = {}

    def checked(count: Callable[[], int], n: int, name: str) -> None:
        got = count()
        if got != n:
            raise AssertionError(f"{name}: parsed {got} frames, expected {n}")

    def wsx_parser(chunks: list[bytes], n: int) -> Callable[[], Any]:
        parser = FrameParser(max_frame_size=None, max_message_size=None)
        feed = parser.feed

        def call() -> int:
            total = 0
            for c in chunks:
                total += len(feed(c))
            return total

        checked(call, n, "wsx-frameparser")
        return call

    def wsx_protocol(chunks: list[bytes], n: int) -> Callable[[], Any]:
        proto = Protocol(max_message_size=None)
        receive = proto.receive_data

        def call() -> int:
            total = 0
            for c in chunks:
                total += len(receive(c))
            return total

        checked(call, n, "wsx-protocol")
        return call

    found["wsx-frameparser"] = wsx_parser
    found["wsx-protocol"] = wsx_protocol
    kinds["wsx-frameparser"] = kinds["wsx-protocol"] = "wsx"

    try:
        _websockets_protocol()

        def ws_parse(chunks: list[bytes], n: int) -> Callable[[], Any]:
            p = _websockets_protocol()
            receive = p.receive_data
            events = p.events_received

            def call() -> int:
                total = 0
                for c in chunks:
                    receive(c)
                    total += len(events())
                return total

            checked(call, n, "websockets")
            return call

        found["websockets"] = ws_parse
        kinds["websockets"] = "anchor"
    except ImportError:
        pass

    try:
        from wsproto.connection import Connection, ConnectionType

        def wsproto_parse(chunks: list[bytes], n: int) -> Callable[[], Any]:
            conn = Connection(ConnectionType.CLIENT)
            receive = conn.receive_data
            events = conn.events

            def call() -> int:
                total = 0
                for c in chunks:
                    receive(c)
                    for ev in events():  # a frame split by a piece comes in parts
                        if ev.message_finished:
                            total += 1
                return total

            checked(call, n, "wsproto")
            return call

        found["wsproto"] = wsproto_parse
        kinds["wsproto"] = "anchor"
    except ImportError:
        pass
    return found, kinds


def server_stream(size: int, n: int) -> list[bytes]:
    """``n`` unmasked binary frames of ``size`` bytes, cut into CHUNK-sized pieces."""
    from wsx.core.frames import OP_BINARY, encode_frame

    payload = os.urandom(size)
    stream = encode_frame(OP_BINARY, payload, masked=False) * n
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def _measure(
    kind: str, found: dict[str, Any], reps: int, min_time: float
) -> dict[str, dict[str, list[float]]]:
    names = list(found)
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for size in SIZES:
        label = common.size_label(size)
        n = FRAMES_PER_STREAM[size]
        payload = os.urandom(size)
        chunks = server_stream(size, n) if kind == "parse" else None
        for order in common.rotations(names, reps):
            for name in order:
                fn = found[name](chunks if kind == "parse" else payload, n)
                t = common.time_per_call(fn, min_time)
                samples[name].setdefault(label, []).append(n / t)
    return samples


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    reps = reps or (3 if quick else 5)
    min_time = 0.05 if quick else 0.25
    labels = [common.size_label(s) for s in SIZES]
    out: dict[str, Any] = {"unit": "frames/s", "higher_is_better": True, "anchors": ANCHORS,
                           "reps": reps, "chunk": CHUNK, "frames_per_stream": FRAMES_PER_STREAM}
    for kind, (found, kinds) in (("encode", encoders()), ("parse", parsers())):
        samples = _measure(kind, found, reps, min_time)
        medians = {n: {lab: common.median(v) for lab, v in samples[n].items()} for n in samples}
        title = ("Encode (client frames, masked)" if kind == "encode"
                 else f"Parse (server frames, fed in {CHUNK // 1024} KiB pieces)")
        ratios = common.print_table(title, labels, medians, ANCHORS, True, "frames/s", kinds)
        out[kind] = {"kinds": kinds, "median": medians, "ratio_vs_best_anchor": ratios,
                     "samples": samples}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    args = ap.parse_args(argv)
    info = common.machine_info()
    common.print_machine(info)
    result = run(args.quick, args.reps)
    path = common.save_results("codec", {"machine": info, "codec": result})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
