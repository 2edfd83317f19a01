"""A structure-aware mutation fuzzer for wsx's parsers, in plain Python.

    python fuzz/mutate.py frames -n 1000000 --seed 1
    python fuzz/mutate.py handshake -n 1000000 --seed 1

Starts from the valid inputs of :mod:`harness` (frame streams, upgrade
responses), mutates them with a seeded :class:`random.Random` (frame fields:
FIN, RSV, opcode, mask bit, length field and its encoding, payloads that are
invalid UTF-8 or bad close codes or (bad) DEFLATE data, fragmentation,
splicing; handshake fields: status line, header names and values, extension
parameters, bodies; then raw byte flips, inserts, deletes and truncation),
and runs each input through the harness target under a time bound. Inputs
that produce a new *feature* (an error message or event sequence not seen
before) join the corpus, a cheap stand-in for coverage feedback.

Every input that raises anything but the documented errors, fails an oracle
or exceeds the time bound is a finding: it is saved (hex) under ``--out``,
deduplicated by exception type and place, and the run goes on. The exit
status is 1 when there were findings. The same seed replays the same inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

MAX_LEN = 4096


class InputTimeout(Exception):
    """An input ran longer than the time bound."""


def _alarm(signum: int, frame: Any) -> None:
    raise InputTimeout("input exceeded the time bound")


# ------------------------------------------------------------- frame mutator
_BAD_UTF8 = [
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xe2\x82",
    b"\xf0\x9d", b"\xce", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xef\xbf\xbf", b"\xf0\x9f\x98\x80",
    "κόσμε".encode(), b"\xe0\x80\xaf",
]
_CLOSE_CODES = [0, 1, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1014, 1015,
                1016, 2999, 3000, 4999, 5000, 65535]
_LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


def _split_frames(stream: bytes) -> tuple[list[list[Any]], bytes]:
    """Loosely split a stream into ``[b0, b1_flags, form, declared, key, payload]`` items."""
    frames: list[list[Any]] = []
    pos, n = 0, len(stream)
    while n - pos >= 2:
        b0, b1 = stream[pos], stream[pos + 1]
        length, start, form = b1 & 0x7F, pos + 2, 0
        if length == 126:
            if n - pos < 4:
                break
            length, start, form = struct.unpack_from("!H", stream, pos + 2)[0], pos + 4, 1
        elif length == 127:
            if n - pos < 10:
                break
            length, start, form = struct.unpack_from("!Q", stream, pos + 2)[0], pos + 10, 2
        key = b""
        if b1 & 0x80:
            key, start = stream[start : start + 4], start + 4
        if start + length > n:
            break
        frames.append([b0, b1 & 0x80, form, length, key, stream[start : start + length]])
        pos = start + length
    return frames, stream[pos:]


def _join_frames(frames: list[list[Any]], tail: bytes) -> bytes:
    out = bytearray()
    for b0, mask, form, declared, key, payload in frames:
        out.append(b0 & 0xFF)
        if form == 0 and declared < 126:
            out.append(mask | declared)
        elif form <= 1 and declared < 65536:
            out.append(mask | 126)
            out += struct.pack("!H", declared)
        else:
            out.append(mask | 127)
            out += struct.pack("!Q", declared & (2**64 - 1))
        if mask:
            out += key
        out += payload
    out += tail
    return bytes(out)


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _payload(rng: random.Random, opcode: int) -> bytes:
    r = rng.randrange(10)
    if r == 0:
        return b""
    if r == 1 or opcode == 8:
        code = rng.choice(_CLOSE_CODES)
        reason = rng.choice([b"", b"bye", "ünï".encode(), rng.choice(_BAD_UTF8), b"x" * 123,
                             b"x" * 124])
        return (struct.pack("!H", code) + reason)[: rng.choice([0, 1, 2, 200, 200])]
    if r == 2:
        return rng.choice(_BAD_UTF8) * rng.randint(1, 3)
    if r == 3:
        text = "añ€𝄞".encode() * rng.randint(1, 20)
        return text[: rng.randint(0, len(text))]
    if r == 4:
        data = rng.choice([b"", b"a" * rng.randint(1, 3000), _rand_bytes(rng, 40),
                           "héllo ✓".encode() * 5, rng.choice(_BAD_UTF8) + b"abc"])
        bits = rng.choice([9, 12, 15])
        c = zlib.compressobj(rng.choice([0, 1, 6, 9]), zlib.DEFLATED, -bits)
        mode = rng.choice([zlib.Z_SYNC_FLUSH, zlib.Z_FINISH, zlib.Z_FULL_FLUSH])
        out = c.compress(data) + c.flush(mode)
        if rng.random() < 0.6 and out.endswith(b"\x00\x00\xff\xff"):
            out = out[:-4]
        if rng.random() < 0.2:
            out += rng.choice([b"\x00", b"\x00\x00\xff\xff", b"\x03\x00", _rand_bytes(rng, 3)])
        return out
    if r == 5:
        return _rand_bytes(rng, rng.choice([1, 2, 5, 30, 125, 126, 300]))
    if r == 6:
        # Raw DEFLATE block headers: stored, fixed, dynamic, reserved type.
        return rng.choice([b"\x00\x00\x00\xff\xff", b"\x01\x00\x00\xff\xff", b"\x02\x00",
                           b"\x03\x00", b"\x07", b"\x06", b"\x04\x00"]) + _rand_bytes(rng, 3)
    return bytes(rng.choice(b"ab\x00\xff") for _ in range(rng.randint(1, 130)))


def _mutate_frames(frames: list[list[Any]], rng: random.Random,
                   other: list[list[Any]]) -> list[list[Any]]:
    frames = [list(f) for f in frames]
    if not frames or rng.random() < 0.1:
        frames.insert(rng.randint(0, len(frames)),
                      [0x80 | rng.choice([1, 2, 8, 9, 10]), 0, 0, 0, b"", b""])
    i = rng.randrange(len(frames))
    f = frames[i]
    r = rng.randrange(17)
    if r == 0:
        f[0] ^= 0x80  # FIN
    elif r == 1:
        f[0] ^= rng.choice([0x40, 0x20, 0x10, 0x40, 0x70])  # RSV
    elif r == 2:
        f[0] = (f[0] & 0xF0) | rng.choice([0, 1, 2, 3, 7, 8, 9, 10, 11, 15, 0, 1, 2])
    elif r == 3:
        f[1] ^= 0x80  # mask bit
        f[4] = _rand_bytes(rng, 4) if f[1] else b""
    elif r == 4:
        f[3] = max(0, f[3] + rng.choice([-2, -1, 1, 2, 100]))  # declared length off
    elif r == 5:
        f[3] = rng.choice(_LENGTHS)
        f[2] = rng.choice([0, 1, 2])
    elif r == 6:
        f[2] = rng.choice([1, 2])  # non-minimal length encoding
    elif r == 7:
        f[5] = _payload(rng, f[0] & 0x0F)
        f[3] = len(f[5])
    elif r == 8 and len(f[5]) > 1:
        # Fragment a data frame (maybe with a control frame in between).
        cut = rng.randint(1, len(f[5]) - 1)
        head, rest = f[5][:cut], f[5][cut:]
        first = [f[0] & 0x7F, 0, 0, len(head), b"", head]
        last = [(f[0] & 0x80) | (f[0] & 0x30), 0, 0, len(rest), b"", rest]
        extra = [[0x89, 0, 0, 1, b"", b"p"]] if rng.random() < 0.5 else []
        frames[i : i + 1] = [first, *extra, last]
    elif r == 9:
        frames.insert(rng.randint(0, len(frames)), list(rng.choice(frames)))
    elif r == 10 and len(frames) > 1:
        del frames[i]
    elif r == 11 and len(frames) > 1:
        j = rng.randrange(len(frames))
        frames[i], frames[j] = frames[j], frames[i]
    elif r == 12 and other:
        frames.insert(rng.randint(0, len(frames)), list(rng.choice(other)))
    elif r == 13:
        # Compress the payload (RSV1 on a first frame, or wrongly on a continuation).
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(f[5]) + c.flush(zlib.Z_SYNC_FLUSH)
        f[5] = data[:-4] if rng.random() < 0.8 else data
        f[3] = len(f[5])
        f[0] |= 0x40
    elif r == 14:
        # Insert a control frame.
        op = rng.choice([8, 9, 10, 9, 10])
        payload = _payload(rng, op)[: rng.choice([125, 125, 126, 200])]
        frames.insert(i, [0x80 | op, 0, 0, len(payload), b"", payload])
    elif r == 15:
        frames[i:] = frames[i:][: rng.randint(1, 3)]
    else:
        f[5] = f[5] + _rand_bytes(rng, rng.randint(1, 10))
        f[3] = len(f[5]) if rng.random() < 0.8 else f[3]
    return frames


def _mutate_bytes(data: bytes, rng: random.Random, other: bytes) -> bytes:
    buf = bytearray(data)
    r = rng.randrange(8)
    if not buf:
        return _rand_bytes(rng, rng.randint(1, 8))
    pos = rng.randrange(len(buf))
    if r == 0:
        buf[pos] ^= 1 << rng.randrange(8)
    elif r == 1:
        buf[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x7E, 0x0D, 0x0A, 0x20, 0x3B, 0x2C, 0x22,
                               rng.getrandbits(8)])
    elif r == 2:
        buf[pos:pos] = _rand_bytes(rng, rng.randint(1, 4))
    elif r == 3:
        del buf[pos : pos + rng.randint(1, 8)]
    elif r == 4:
        del buf[pos:]
    elif r == 5:
        end = min(len(buf), pos + rng.randint(1, 64))
        buf[pos:pos] = buf[pos:end] * rng.randint(1, 4)
    elif r == 6 and other:
        cut = rng.randrange(len(other))
        buf[pos:] = other[cut:]
    else:
        for _ in range(rng.randint(2, 6)):
            buf[rng.randrange(len(buf))] = rng.getrandbits(8)
    return bytes(buf)


def _config_bytes(blob: bytes, rng: random.Random) -> bytes:
    cfg = blob[0] if rng.random() < 0.6 else rng.getrandbits(8)
    r = rng.random()
    chunking = blob[1] if r < 0.3 else 0 if r < 0.4 else 1 if r < 0.45 else rng.getrandbits(8)
    return bytes([cfg, chunking])


def mutate_frames(blob: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    other, _ = _split_frames(rng.choice(corpus)[2:])
    frames, tail = _split_frames(blob[2:])
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        frames = _mutate_frames(frames, rng, other)
    stream = _join_frames(frames, tail if rng.random() < 0.5 else b"")
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        stream = _mutate_bytes(stream, rng, rng.choice(corpus)[2:])
    return _config_bytes(blob, rng) + stream[:MAX_LEN]


# --------------------------------------------------------- handshake mutator
_HEADER_NAMES = ["Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
                 "Sec-WebSocket-Extensions", "Content-Length", "Transfer-Encoding",
                 "Sec-WebSocket-Version", "Server", "X-Custom", "upgrade", "CONNECTION"]
_EXT_VALUES = [
    "permessage-deflate",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=8",
    "permessage-deflate; server_max_window_bits=\"10\"",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=\xb9",
    "permessage-deflate; client_max_window_bits=\"1\\5\"",
    "permessage-deflate; x=\"a\\\"b\"",
    "permessage-deflate;;",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate, x-webkit-deflate-frame",
    "x-unknown",
    ", ,permessage-deflate ,",
    "permessage-deflate; a=\"\\\xff\"",
    "=",
    ";",
    "\"x\"",
    "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=8; server_max_window_bits=8",
    "permessage-deflate; client_max_window_bits=\"",
    "permessage-deflate; client_no_context_takeover=1",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits=x",
    "permessage-deflate; client_max_window_bits=12",
    "permessage-deflate; server_max_window_bits=13",
]
_VALUES = [
    "", " ", "websocket", "WebSocket", "Upgrade", "upgrade, keep-alive", "close", "chunked",
    "gzip, chunked", "chunked, gzip", "0", "5", "00012", "-1", "+5", " 7 ", "1, 1", "1, 2",
    "\xb2", "\xb9", "\xb3", "1" * 5000, "9" * 30, "0x10", "\u0661\u0662".encode().decode("latin-1"),
    "chat", "chat, superchat", "superchat", "v2.wsx", "nope", harness.ACCEPT, harness.ACCEPT + "=",
    harness.ACCEPT[:-1], "\x00", "a\x7fb", "\xff\xfe", "13",
]
_STATUS_LINES = ["HTTP/1.1 101 Switching Protocols", "HTTP/1.1 101", "HTTP/1.1 101 ",
                 "HTTP/1.0 101 OK", "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found",
                 "HTTP/1.1 100 Continue", "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified",
                 "HTTP/1.1 999 What", "HTTP/1.1 000 Zero", "HTTP/2 101", "HTTP/1.1 1011",
                 "HTTP/1.1 101 Sw\x00itching", "HTTP/1.1 101 \xe9t\xe9", "http/1.1 101 x",
                 "HTTP/1.1  101 x", "HTTP/1.1 500 Internal Server Error", ""]


_FRAME_SEEDS = harness.frame_seeds()


def _split_response(data: bytes) -> tuple[str, list[list[str]], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    headers = [list(line.partition(":")[::2]) for line in lines[1:]]
    return lines[0], [[n, v.strip()] for n, v in headers], body


def _chunked_body(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 4)):
        data = _rand_bytes(rng, rng.randint(0, 20))
        size = rng.choice([f"{len(data):x}", f"{len(data):X}", "0" * rng.randint(1, 50) + "1",
                           "zz", "", "-1", f"{len(data)};ext=\"q\"", "FFFFFFFFFFFFFFFFFFFF",
                           "\xb2", "1" * rng.randint(1, 8000)])
        parts.append(size.encode("latin-1") + rng.choice([b"\r\n", b"\n", b""]) + data
                     + rng.choice([b"\r\n", b"", b"\r"]))
    parts.append(rng.choice([b"0\r\n\r\n", b"0\r\nTrailer: x\r\n\r\n", b"", b"0"]))
    return b"".join(parts)


def _mutate_response(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    status, headers, body = _split_response(data)
    for _ in range(rng.choice([1, 1, 2, 3])):
        r = rng.randrange(12)
        if r == 0:
            status = rng.choice(_STATUS_LINES)
        elif r == 1 and headers:
            del headers[rng.randrange(len(headers))]
        elif r == 2 and headers:
            headers.insert(rng.randrange(len(headers) + 1), list(rng.choice(headers)))
        elif r == 3:
            headers.insert(rng.randrange(len(headers) + 1),
                           [rng.choice(_HEADER_NAMES), rng.choice(_VALUES)])
        elif r == 4:
            headers.append(["Sec-WebSocket-Extensions", rng.choice(_EXT_VALUES)])
        elif r == 5 and headers:
            h = rng.choice(headers)
            h[1] = rng.choice(_VALUES + _EXT_VALUES)
        elif r == 6 and headers:
            h = rng.choice(headers)
            h[0] = rng.choice([h[0].lower(), h[0].upper(), " " + h[0], h[0] + " ", "", "Bad Name",
                               "X\x01", h[0] + "\xe9"])
        elif r == 7:
            headers.append([rng.choice(["Content-Length", "Transfer-Encoding"]),
                            rng.choice(_VALUES)])
            body = rng.choice([_chunked_body(rng), b"x" * rng.randint(0, 100), body])
        elif r == 8:
            body = _split_response(rng.choice(corpus)[2:])[2]
        elif r == 9:
            body = rng.choice(_FRAME_SEEDS)[2:][: rng.randint(0, 300)]
        elif r == 10:
            headers.append(["X-Long", "v" * rng.choice([50, 60, 100, 8000, 9000])])
        else:
            headers.extend([[f"X-H{k}", "1"] for k in range(rng.choice([5, 7, 130]))])
    eol = "\r\n" if rng.random() < 0.9 else "\n"
    head = status + eol + "".join(f"{n}:{rng.choice([' ', '', '  ', chr(9)])}{v}{eol}"
                                  for n, v in headers) + eol
    # ("\xb5".upper() is a Greek letter: such characters become "?".)
    return head.encode("latin-1", "replace") + body


def mutate_handshake(blob: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    data = blob[2:]
    if rng.random() < 0.8:
        data = _mutate_response(data, rng, corpus)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        data = _mutate_bytes(data, rng, rng.choice(corpus)[2:])
    cfg = _config_bytes(blob, rng)
    return cfg + data[: MAX_LEN * 4]


# -------------------------------------------------------------------- driver
TARGETS: dict[str, tuple[Callable[[bytes], frozenset[str]], Callable[[], list[bytes]],
                         Callable[[bytes, random.Random, list[bytes]], bytes]]] = {
    "frames": (harness.run_frames, harness.frame_seeds, mutate_frames),
    "handshake": (harness.run_handshake, harness.handshake_seeds, mutate_handshake),
}


def _signature(exc: BaseException) -> str:
    """Dedup key of a finding: exception type and the innermost frame inside wsx/."""
    tb = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in tb if "wsx" in Path(f.filename).parts[:-1]] or tb[-1:]
    place = f"{Path(inside[-1].filename).name}:{inside[-1].lineno}" if inside else "?"
    # An oracle's message up to the first value it shows: which oracle failed.
    detail = harness._KIND_RE.split(str(exc), 1)[0] if isinstance(exc, harness.Finding) else ""
    return f"{type(exc).__name__} at {place} {detail}".strip()


def run(target: str, iterations: int, seed: int, out: Path | None, time_limit: float,
        quiet: bool = False, corpus_limit: int = 4000) -> dict[str, Any]:
    """Fuzz ``target`` for ``iterations`` inputs; return a summary (findings included)."""
    fn, seeds, mutator = TARGETS[target]
    rng = random.Random(seed)
    corpus = list(seeds())
    n_seeds = len(corpus)
    seen: set[str] = set()
    findings: dict[str, dict[str, Any]] = {}
    use_alarm = time_limit > 0 and hasattr(signal, "setitimer")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _alarm)
    slowest = 0.0
    start = time.perf_counter()
    try:
        for i in range(iterations):
            blob = corpus[i] if i < n_seeds else mutator(rng.choice(corpus), rng, corpus)
            t0 = time.perf_counter()
            try:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, time_limit)
                try:
                    features = fn(blob)
                finally:
                    if use_alarm:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            except (Exception, RecursionError) as exc:  # noqa: BLE001 - every escape is a bug
                sig = _signature(exc)
                entry = findings.setdefault(sig, {"count": 0, "input": blob.hex(),
                                                  "error": f"{type(exc).__name__}: {exc}"[:500],
                                                  "first": i})
                entry["count"] += 1
                if entry["count"] == 1:
                    if not quiet:
                        print(f"[{target}] #{i} FINDING {sig}\n    {entry['error'][:300]}\n"
                              f"    input {blob.hex()[:200]}", flush=True)
                    if out is not None:
                        out.mkdir(parents=True, exist_ok=True)
                        name = hashlib.sha1(sig.encode()).hexdigest()[:12]
                        (out / f"{target}-{name}.hex").write_text(blob.hex() + "\n")
                continue
            elapsed = time.perf_counter() - t0
            slowest = max(slowest, elapsed)
            new = features - seen
            if new:
                seen |= new
                if len(corpus) < corpus_limit:
                    corpus.append(blob)
                else:
                    corpus[rng.randrange(n_seeds, corpus_limit)] = blob
            if not quiet and (i + 1) % 100_000 == 0:
                rate = (i + 1) / (time.perf_counter() - start)
                print(f"[{target}] {i + 1} inputs, {rate:.0f}/s, corpus {len(corpus)}, "
                      f"features {len(seen)}, findings {len(findings)}", flush=True)
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    return {"target": target, "seed": seed, "inputs": iterations, "seconds": round(seconds, 1),
            "corpus": len(corpus), "features": len(seen), "slowest_input_s": round(slowest, 4),
            "findings": findings}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("-n", "--iterations", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "findings",
                    help="directory for the inputs of findings (hex)")
    ap.add_argument("--time-limit", type=float, default=2.0, help="seconds per input")
    ap.add_argument("--replay",
                    help="run one input (hex, or a file holding hex) and show the error")
    args = ap.parse_args(argv)
    if args.replay:
        text = Path(args.replay).read_text() if os.path.exists(args.replay) else args.replay
        TARGETS[args.target][0](bytes.fromhex(text.strip()))
        print("no error")
        return 0
    summary = run(args.target, args.iterations, args.seed, args.out, args.time_limit)
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}))
    for sig, entry in summary["findings"].items():
        print(f"FINDING x{entry['count']}: {sig}\n  {entry['error'][:300]}\n"
              f"  input {entry['input'][:400]}{'...' if len(entry['input']) > 400 else ''}")
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
