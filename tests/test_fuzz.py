"""A short fuzz pass of the sans-I/O parsers, and the regressions the fuzzers found.

The targets, oracles and mutators live in ``fuzz/`` (see ``fuzz/README.md``
for the long runs). Here each target gets a fixed-seed pass of a few thousand
inputs: any exception other than the documented errors, any oracle failure
(chunking that changes the result, a frame that breaks RFC 6455, a message
over its limit...) or an input slower than the time bound fails the test,
which prints the input to replay with ``python fuzz/mutate.py TARGET --replay HEX``.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wsx.core.handshake import ClientHandshake
from wsx.core.url import parse_url
from wsx.errors import RequestError

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"
if not (FUZZ_DIR / "harness.py").exists():  # pragma: no cover - a packaging mistake
    raise ImportError(f"tests/test_fuzz.py needs the fuzz/ directory beside tests/ ({FUZZ_DIR})")
sys.path.insert(0, str(FUZZ_DIR))

import harness  # noqa: E402
import mutate  # noqa: E402

from conftest import RawServer, read_request  # noqa: E402

INPUTS = 12_000
SEED = 20261128


def _report(summary: dict[str, Any]) -> str:
    lines = [f"{summary['target']}: {len(summary['findings'])} finding(s) in "
             f"{summary['inputs']} inputs (seed {summary['seed']})"]
    for sig, entry in summary["findings"].items():
        lines.append(f"  {sig} (x{entry['count']}): {entry['error'][:200]}")
        lines.append(f"    replay: python fuzz/mutate.py {summary['target']} --replay "
                     f"{entry['input'][:600]}")
    return "\n".join(lines)


@pytest.mark.parametrize("target", ["frames", "handshake"])
def test_short_fuzz_pass(target: str) -> None:
    summary = mutate.run(target, INPUTS, SEED, out=None, time_limit=2.0, quiet=True)
    assert not summary["findings"], _report(summary)
    # Not vacuous: the pass reached many distinct outcomes (error checks, events).
    assert summary["features"] >= (300 if target == "frames" else 60), summary


def test_frame_fuzz_reaches_every_outcome() -> None:
    """The frame mutator drives the protocol into every close code and message kind."""
    import random

    rng = random.Random(SEED)
    corpus = harness.frame_seeds()
    seen: set[str] = set()
    for blob in corpus:
        seen |= harness.run_frames(blob)
    for _ in range(1500):
        blob = mutate.mutate_frames(rng.choice(corpus), rng, corpus)
        try:
            seen |= harness.run_frames(blob)
        except Exception:  # noqa: BLE001 - findings are test_short_fuzz_pass's business
            continue
    kinds = {f.split(":")[0] + ":" + f.split(":")[1] if f.startswith(("error", "close")) else
             f.split(":")[0] for f in seen}
    for wanted in ("text", "binary", "ping", "pong", "close:1000", "close:None",
                   "error:1002", "error:1007", "error:1009"):
        assert wanted in kinds, (wanted, sorted(kinds))


def test_oracle_catches_a_chunking_dependent_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential oracle fails an input when chunking changes the frames."""
    from wsx.core.frames import PyFrameParser

    class ForgetfulParser(PyFrameParser):
        """Drops the frames completed by a one-byte read."""

        __slots__ = ()

        def feed(self, data: Any) -> Any:
            frames = super().feed(data)
            return frames if len(data) != 1 else []

    blob = bytes([0, 0]) + b"\x81\x05hello"  # chunking seed 0: one-byte pieces
    harness.run_frames(blob)
    monkeypatch.setattr(harness, "FrameParser", ForgetfulParser)
    with pytest.raises(harness.Finding, match="chunking"):
        harness.run_frames(blob)


# ----------------------------------------------------------------- regressions
KEY = harness.KEY
URL = parse_url("ws://127.0.0.1:9/")


def _non_101_outcome(response: bytes) -> RequestError:
    """Feed a whole non-101 answer, then EOF; return the RequestError raised."""
    hs = ClientHandshake(URL, key=KEY)
    with pytest.raises(RequestError) as info:
        hs.receive_data(response)
        hs.receive_eof()
    return info.value


# Found by `fuzz/mutate.py handshake --seed 1` (input #536) and by hand from
# the same pattern: str.isdigit() accepts non-ASCII digits that int() rejects
# ("\xb2" decodes to "²"), and int() refuses more than 4300 decimal digits, so
# ClientHandshake._start_body raised ValueError out of receive_data.
@pytest.mark.parametrize("value", [b"\xb2", b"\xb9", b"\xb3", b"1" * 5000, b"0" * 4301 + b"5"],
                         ids=["superscript-2", "superscript-1", "superscript-3", "5000-digits",
                              "4302-digits-leading-zeros"])
def test_regression_content_length_int_conversion(value: bytes) -> None:
    error = _non_101_outcome(b"HTTP/1.1 200 OK\r\nContent-Length: " + value
                             + b"\r\n\r\nbody")
    assert error.status == 200
    assert error.body.startswith(b"body") or error.body == b""


@pytest.mark.parametrize("blob_hex", [
    # fuzz/mutate.py handshake --seed 1: its first finding (input #536), reduced.
    "0101" + (b"HTTP/1.1 200 OK\r\nUpgrade:  websocket\r\nContent-Length: \xb3\r\n\r\n").hex(),
    "0000" + (b"HTTP/1.1 500 x\r\nContent-Length: " + b"9" * 4400 + b"\r\n\r\n").hex(),
    # fuzz/mutate.py handshake --seed 1, inputs #902568 and #965254, reduced: a
    # chunk-size line longer than max_line=64 (see the test below).
    "2129" + (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
              + b"1" * 8000 + b"\r\n\xe6\x08!\xa2\r" + b"1" * 40).hex(),
], ids=["superscript-3", "4400-digits", "long-chunk-size-line"])
def test_regression_handshake_fuzz_inputs(blob_hex: str) -> None:
    harness.run_handshake(bytes.fromhex(blob_hex))


def test_regression_bad_content_length_over_a_real_socket(
    raw_server: Callable[[Callable[[socket.socket], Any]], RawServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client reports the non-101 answer as RequestError, with no loop-level traceback."""
    import wsx

    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: \xb2\r\n\r\nno")
        # Keep the connection open a while, as a slow server would.
        time.sleep(1.0)

    server = raw_server(handler)
    with caplog.at_level(logging.ERROR, logger="wsx"):
        with pytest.raises(RequestError) as info:
            wsx.start_link(server.url, wsx.WebSocket, None)
    assert info.value.status == 403
    raised = [r for r in caplog.records if "raised" in r.getMessage()]
    assert not raised, [r.getMessage() for r in raised]


# Found by the chunking oracle (a handshake target input with max_line=64):
# ClientHandshake._read_chunks gives up on an *incomplete* chunk-size line
# longer than max_line, but parses a *complete* one of any length, so the
# body kept on RequestError depends on how TCP split the answer.
def test_regression_chunked_body_independent_of_segmentation() -> None:
    answer = (b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"0" * 70 + b"3\r\nabc\r\n0\r\n\r\n")

    def body(pieces: list[bytes]) -> bytes:
        hs = ClientHandshake(URL, key=KEY, max_line=64)
        with pytest.raises(RequestError) as info:
            for piece in pieces:
                hs.receive_data(piece)
            hs.receive_eof()
        assert info.value.status == 500
        return info.value.body

    whole = body([answer])
    byte_by_byte = body([answer[i : i + 1] for i in range(len(answer))])
    assert whole == byte_by_byte
