"""Tests for wsx.core.protocol: the sans-I/O connection state machine."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsx.core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    encode_frame,
)
from wsx.core.protocol import CLOSED, CLOSING, OPEN, Protocol, frame_to_wire
from wsx.errors import FrameEncodeError, FrameError, InvalidFrameError, NotConnectedError


def srv(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A server (unmasked) frame."""
    return encode_frame(opcode, payload, fin, masked=False)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def decode_client_frames(data: bytes) -> list[Frame]:
    """Decode masked client frames (reference decoder, independent of wsx)."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b1 & 0x80, "client frames must be masked"
        length = b1 & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        key = data[pos : pos + 4]
        pos += 4
        raw = data[pos : pos + length]
        assert len(raw) == length
        pos += length
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(raw))
        frames.append(Frame(b0 & 0x0F, bool(b0 & 0x80), b0 & 0x70, payload))
    return frames


def feed_pieces(proto: Protocol, data: bytes, size: int) -> list[Any]:
    events: list[Any] = []
    for i in range(0, len(data), size):
        events += proto.receive_data(data[i : i + size])
    return events


def single_error(events: list[Any]) -> FrameError:
    errors = [e for e in events if isinstance(e, tuple) and e[0] == "error"]
    assert len(errors) == 1, events
    assert events[-1] is errors[0]
    exc = errors[0][1]
    assert isinstance(exc, FrameError)
    return exc


def sent(proto: Protocol, frame: Any) -> bytes:
    """``proto.send(frame)`` and the bytes it buffered."""
    assert proto.send(frame) is None
    return proto.data_to_send()


def assert_failed_with(proto: Protocol, code: int) -> None:
    assert proto.error is not None and proto.error.code == code
    assert proto.data_to_send() == b""  # owed, not buffered before it is answered
    assert proto.close_owed() and proto.answer_close()
    assert not proto.close_owed() and not proto.answer_close()
    assert decode_client_frames(proto.data_to_send()) == [
        Frame(OP_CLOSE, True, 0, struct.pack("!H", code))
    ]
    assert proto.state == CLOSED
    assert proto.data_to_send() == b""


# ----------------------------------------------------------------- messages


class TestMessages:
    def test_text_and_binary(self) -> None:
        p = Protocol()
        events = p.receive_data(srv(OP_TEXT, "κόσμε".encode()) + srv(OP_BINARY, b"\x00\xff"))
        assert events == [("text", "κόσμε"), ("binary", b"\x00\xff")]
        assert p.state == OPEN
        assert p.data_to_send() == b""

    def test_empty_messages(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_TEXT) + srv(OP_BINARY)) == [("text", ""), ("binary", b"")]

    def test_rfc_examples(self) -> None:
        p = Protocol()
        wire = bytes.fromhex("810548656c6c6f" "010348656c" "890548656c6c6f" "80026c6f")
        assert p.receive_data(wire) == [("text", "Hello"), ("ping", b"Hello"), ("text", "Hello")]
        p = Protocol()
        assert p.receive_data(bytes.fromhex("827E0100") + bytes(256)) == [("binary", bytes(256))]

    def test_fragmented_with_interleaved_pings(self) -> None:
        p = Protocol()
        text = "κόσμε €𝄞 done"
        data = text.encode()
        wire = (
            srv(OP_TEXT, data[:3], fin=False)
            + srv(OP_PING)
            + srv(OP_CONTINUATION, data[3:9], fin=False)
            + srv(OP_PING, b"x")
            + srv(OP_PONG)
            + srv(OP_CONTINUATION, data[9:], fin=True)
            + srv(OP_BINARY, b"a", fin=False)
            + srv(OP_PONG, b"y")
            + srv(OP_CONTINUATION, b"b", fin=False)
            + srv(OP_CONTINUATION, b"", fin=True)
        )
        expected = ["ping", ("ping", b"x"), "pong", ("text", text), ("pong", b"y"),
                    ("binary", b"ab")]
        assert p.receive_data(wire) == expected
        for size in (1, 2, 3, 7):
            assert feed_pieces(Protocol(), wire, size) == expected

    def test_ping_pong_events(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_PING)) == ["ping"]
        assert p.receive_data(srv(OP_PING, b"x")) == [("ping", b"x")]
        assert p.receive_data(srv(OP_PONG)) == ["pong"]
        assert p.receive_data(srv(OP_PONG, b"\x00")) == [("pong", b"\x00")]
        assert p.data_to_send() == b""  # no automatic pong at this layer

    def test_long_text_in_pieces(self) -> None:
        text = "".join(chr(c) for c in range(0x20, 0x3000) if not 0xD800 <= c <= 0xDFFF) * 3
        data = text.encode()
        wire = srv(OP_TEXT, data)
        for size in (1, 2, 3, 5, 13, 1000, 4096):
            if size == 1:
                wire_part = srv(OP_TEXT, data[:3000])
                assert feed_pieces(Protocol(), wire_part, 1) == [("text", data[:3000].decode())]
                continue
            assert feed_pieces(Protocol(), wire, size) == [("text", text)]

    def test_long_fragmented_text_in_pieces(self) -> None:
        text = "aé€𝄞" * 500
        data = text.encode()
        wire = (
            srv(OP_TEXT, data[:1001], fin=False)
            + srv(OP_PING, b"p")
            + srv(OP_CONTINUATION, data[1001:3002], fin=False)
            + srv(OP_CONTINUATION, data[3002:], fin=True)
            + srv(OP_TEXT, b"next")
        )
        for size in (3, 7, 100, 333):
            assert feed_pieces(Protocol(), wire, size) == [
                ("ping", b"p"), ("text", text), ("text", "next")
            ]

    def test_message_too_big(self) -> None:
        p = Protocol(max_message_size=10)
        events = p.receive_data(srv(OP_TEXT, b"12345", fin=False) + srv(OP_CONTINUATION, b"678901"))
        assert single_error(events).code == 1009
        assert_failed_with(p, 1009)

    def test_frame_too_big_header_only(self) -> None:
        p = Protocol(max_message_size=None, max_frame_size=100)
        events = p.receive_data(b"\x82\x7f" + struct.pack("!Q", 1 << 40))
        assert single_error(events).code == 1009
        assert_failed_with(p, 1009)

    def test_unlimited(self) -> None:
        p = Protocol(max_message_size=None)
        big = bytes(17 * 1024 * 1024)
        assert p.receive_data(srv(OP_BINARY, big)) == [("binary", big)]

    def test_protocol_error_keeps_earlier_events(self) -> None:
        p = Protocol()
        events = p.receive_data(srv(OP_TEXT, b"hi") + srv(OP_PING) + b"\x83\x00")
        assert events[:2] == [("text", "hi"), "ping"]
        assert single_error(events).code == 1002
        assert_failed_with(p, 1002)
        assert p.receive_data(srv(OP_TEXT, b"more")) == []

    @pytest.mark.parametrize(
        "wire",
        [
            b"\xc1\x00",  # RSV1 without extension
            b"\x84\x00",  # reserved opcode
            b"\x8b\x00",
            b"\x09\x00",  # fragmented ping
            b"\x89\x7e\x00\x7e",  # 126-byte ping
            b"\x80\x00",  # continuation without message
            b"\x01\x01a\x81\x01b",  # new text inside fragmented message
            b"\x81\x81abcdx",  # masked frame
        ],
    )
    def test_frame_errors_fail_connection(self, wire: bytes) -> None:
        p = Protocol()
        assert single_error(p.receive_data(wire)).code == 1002
        assert_failed_with(p, 1002)


# --------------------------------------------------------------- invalid UTF-8


KOSME = "κόσμε".encode()
BAD = b"\xf4\x90\x80\x80"
EDITED = b"edited"


class TestInvalidUtf8:
    def test_single_frame(self) -> None:
        p = Protocol()
        assert single_error(p.receive_data(srv(OP_TEXT, b"ab\xffcd"))).code == 1007
        assert_failed_with(p, 1007)

    def test_single_frame_truncated_at_end(self) -> None:
        p = Protocol()
        assert single_error(p.receive_data(srv(OP_TEXT, b"ab\xe2\x82"))).code == 1007
        assert_failed_with(p, 1007)

    def test_across_fragments(self) -> None:
        p = Protocol()
        # each fragment alone is a valid prefix; the message ends inside a character
        events = p.receive_data(srv(OP_TEXT, b"a\xe2", fin=False))
        assert events == []
        events = p.receive_data(srv(OP_CONTINUATION, b"\x82", fin=False))
        assert events == []
        events = p.receive_data(srv(OP_CONTINUATION, b"", fin=True))
        assert single_error(events).code == 1007
        assert_failed_with(p, 1007)

    def test_across_fragments_bad_continuation(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_TEXT, b"a\xe2", fin=False)) == []
        assert single_error(p.receive_data(srv(OP_CONTINUATION, b"A", fin=False))).code == 1007
        assert_failed_with(p, 1007)

    def test_fail_fast_inside_frame(self) -> None:
        payload = b"hello " + b"\xff" + b"x" * 100
        wire = srv(OP_TEXT, payload)
        p = Protocol()
        assert p.receive_data(wire[:2]) == []  # header
        assert p.receive_data(wire[2:6]) == []  # "hell"
        events = p.receive_data(wire[6:10])  # "o \xffx": the bad byte is here
        assert single_error(events).code == 1007
        assert_failed_with(p, 1007)
        assert p.receive_data(wire[10:]) == []

    def test_fail_fast_surrogate_inside_frame(self) -> None:
        wire = srv(OP_TEXT, b"ab\xed\xa0\x80cd")
        p = Protocol()
        assert p.receive_data(wire[:5]) == []  # header + "ab\xed"
        assert single_error(p.receive_data(wire[5:6])).code == 1007  # \xa0

    def test_fail_fast_inside_continuation(self) -> None:
        wire = srv(OP_TEXT, b"abc", fin=False) + srv(OP_PING) + srv(OP_CONTINUATION, b"d\xc0" + bytes(50))
        p = Protocol()
        cut = wire.index(b"d\xc0")
        assert p.receive_data(wire[:cut + 1]) == ["ping"]
        assert single_error(p.receive_data(wire[cut + 1 : cut + 2])).code == 1007
        assert_failed_with(p, 1007)

    def test_autobahn_6_4_1_fragments(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_TEXT, KOSME, fin=False)) == []
        assert single_error(p.receive_data(srv(OP_CONTINUATION, BAD, fin=False))).code == 1007
        assert_failed_with(p, 1007)
        assert p.receive_data(srv(OP_CONTINUATION, EDITED, fin=True)) == []

    def test_autobahn_6_4_2_fragments(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_TEXT, KOSME + b"\xf4", fin=False)) == []
        assert single_error(p.receive_data(srv(OP_CONTINUATION, b"\x90", fin=False))).code == 1007
        assert_failed_with(p, 1007)

    def test_autobahn_6_4_3_chunks(self) -> None:
        wire = srv(OP_TEXT, KOSME + BAD + EDITED)
        head = len(wire) - len(KOSME + BAD + EDITED)
        p = Protocol()
        assert p.receive_data(wire[: head + len(KOSME)]) == []
        assert single_error(p.receive_data(BAD)).code == 1007
        assert_failed_with(p, 1007)
        assert p.receive_data(EDITED) == []

    def test_autobahn_6_4_4_chunks(self) -> None:
        wire = srv(OP_TEXT, KOSME + BAD + EDITED)
        head = len(wire) - len(KOSME + BAD + EDITED)
        p = Protocol()
        assert p.receive_data(wire[: head + len(KOSME) + 1]) == []  # ... + F4
        assert single_error(p.receive_data(b"\x90")).code == 1007
        assert_failed_with(p, 1007)

    def test_valid_after_partial_validation(self) -> None:
        # KOSME + valid 4-byte char, chunked like 6.4.4: must decode exactly once
        payload = KOSME + "𝄞".encode() + EDITED
        wire = srv(OP_TEXT, payload) + srv(OP_TEXT, b"second")
        p = Protocol()
        events = []
        for a, b in [(0, 2 + len(KOSME) + 1), (2 + len(KOSME) + 1, 2 + len(KOSME) + 2),
                     (2 + len(KOSME) + 2, 2 + len(KOSME) + 4), (2 + len(KOSME) + 4, len(wire))]:
            events += p.receive_data(wire[a:b])
        assert events == [("text", "κόσμε𝄞edited"), ("text", "second")]
        assert p.state == OPEN and p.data_to_send() == b""


# ----------------------------------------------- property: random messages


@st.composite
def message_streams(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    wire = b""
    expected: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            text = draw(st.text(max_size=draw(st.sampled_from([5, 50, 300]))))
            data = text.encode()
            opcode, event = OP_TEXT, ("text", text)
        else:
            data = draw(st.binary(max_size=300))
            opcode, event = OP_BINARY, ("binary", data)
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for i, piece in enumerate(pieces):
            if draw(st.integers(0, 3)) == 0:
                ping = draw(st.binary(max_size=5))
                wire += srv(OP_PING, ping)
                expected.append(("ping", ping) if ping else "ping")
            wire += srv(opcode if i == 0 else OP_CONTINUATION, piece, i == len(pieces) - 1)
        expected.append(event)
    return wire, expected


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message_streams(), st.lists(st.integers(0, 3000), max_size=40))
def test_messages_any_chunking(stream: tuple[bytes, list[Any]], cuts: list[int]) -> None:
    wire, expected = stream
    p = Protocol()
    events: list[Any] = []
    for chunk in chunked(wire, cuts):
        events += p.receive_data(chunk)
    assert events == expected
    assert p.state == OPEN and p.error is None


def _first_reject(data: bytes) -> int | None:
    """Reference: index of the first byte no valid UTF-8 prefix can contain (RFC 3629)."""
    tail = (0x80, 0xBF)
    need: list[tuple[int, int]] = []
    for i, b in enumerate(data):
        if need:
            lo, hi = need.pop(0)
            if not lo <= b <= hi:
                return i
            continue
        if b <= 0x7F:
            continue
        if 0xC2 <= b <= 0xDF:
            need = [tail]
        elif b == 0xE0:
            need = [(0xA0, 0xBF), tail]
        elif b == 0xED:
            need = [(0x80, 0x9F), tail]
        elif 0xE1 <= b <= 0xEF:
            need = [tail, tail]
        elif b == 0xF0:
            need = [(0x90, 0xBF), tail, tail]
        elif 0xF1 <= b <= 0xF3:
            need = [tail, tail, tail]
        elif b == 0xF4:
            need = [(0x80, 0x8F), tail, tail]
        else:
            return i
    return None


_utf8ish = st.lists(
    st.one_of(
        st.text(max_size=3).map(str.encode),
        st.sampled_from([b"\xc0", b"\xed\xa0", b"\xf4\x90", b"\x80", b"\xff", b"\xe2\x82",
                         b"\xf0\x9f", b"\xce"]),
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(_utf8ish, st.lists(st.integers(0, 200), max_size=4), st.lists(st.integers(0, 250), max_size=8))
def test_text_fail_fast_property(data: bytes, frag_cuts: list[int], cuts: list[int]) -> None:
    """The 1007 error comes with the chunk holding the first hopeless byte, not later."""
    frag_points = sorted({c for c in frag_cuts if 0 <= c <= len(data)})
    pieces = [data[a:b] for a, b in zip([0, *frag_points], [*frag_points, len(data)], strict=True)]
    wire = b""
    offsets = []  # wire offset of each payload byte
    for i, piece in enumerate(pieces):
        frame = srv(OP_TEXT if i == 0 else OP_CONTINUATION, piece, i == len(pieces) - 1)
        start = len(wire) + len(frame) - len(piece)
        offsets += range(start, start + len(piece))
        wire += frame
    bad = _first_reject(data)
    try:
        valid = data.decode("utf-8")
    except UnicodeDecodeError:
        valid = None
    if bad is not None:
        error_at = offsets[bad]
    elif valid is None:
        error_at = len(wire) - 1  # truncated at the end: known when the message ends
    else:
        error_at = None
    p = Protocol()
    pos = 0
    for chunk in chunked(wire, cuts):
        events = p.receive_data(chunk)
        end = pos + len(chunk)
        if error_at is not None and pos <= error_at < end:
            assert single_error(events).code == 1007
            assert_failed_with(p, 1007)
            return
        if end == len(wire):
            assert events[-1:] == [("text", valid)]
        else:
            assert events == []
        pos = end
    assert error_at is None


# ------------------------------------------------------------------ closing


class TestClose:
    def test_replies_to_events_before_an_error_go_out_before_the_close(self) -> None:
        # Autobahn 3.2: a valid message, then a frame with RSV bits set. The
        # echo of the first message must still be sendable, and precede the close.
        p = Protocol()
        events = p.receive_data(srv(OP_TEXT, b"Hello") + bytes([0x80 | 0x30 | OP_TEXT, 0]))
        assert events[0] == ("text", "Hello") and events[1][0] == "error"
        reply = sent(p, ("text", "Hello"))
        assert p.state == OPEN and p.answer_close()
        assert decode_client_frames(reply + p.data_to_send()) == [
            Frame(OP_TEXT, True, 0, b"Hello"),
            Frame(OP_CLOSE, True, 0, close_payload(1002)),
        ]
        assert p.state == CLOSED

    def test_close_received_in_open(self) -> None:
        p = Protocol()
        events = p.receive_data(srv(OP_CLOSE, close_payload(1001, "bye é".encode())))
        assert events == [("close", 1001, "bye é")]
        assert p.close_received == (1001, "bye é")
        # Until the echo is answered, replies to earlier events may still be sent.
        assert p.state == OPEN and p.close_owed()
        assert p.data_to_send() == b""
        assert p.answer_close()
        assert decode_client_frames(p.data_to_send()) == [
            Frame(OP_CLOSE, True, 0, close_payload(1001))
        ]
        assert p.state == CLOSED and not p.close_owed()
        assert p.data_to_send() == b""

    def test_close_without_status(self) -> None:
        p = Protocol()
        assert p.receive_data(srv(OP_CLOSE)) == [("close", None, "")]
        assert p.answer_close()
        assert decode_client_frames(p.data_to_send()) == [Frame(OP_CLOSE, True, 0, b"")]
        assert p.state == CLOSED

    def test_close_in_pieces(self) -> None:
        p = Protocol()
        wire = srv(OP_CLOSE, close_payload(4000, b"custom"))
        assert feed_pieces(p, wire, 1) == [("close", 4000, "custom")]
        assert p.answer_close()
        assert decode_client_frames(p.data_to_send()) == [
            Frame(OP_CLOSE, True, 0, close_payload(4000))
        ]

    def test_send_close_then_receive(self) -> None:
        p = Protocol()
        assert p.send_close(1000, "done") is True
        out = p.data_to_send()
        assert decode_client_frames(out) == [Frame(OP_CLOSE, True, 0, close_payload(1000, b"done"))]
        assert p.state == CLOSING
        assert p.close_sent == (1000, "done")
        assert p.send_close() is False and p.data_to_send() == b""  # only once
        # data frames still arrive while closing
        assert p.receive_data(srv(OP_TEXT, b"late")) == [("text", "late")]
        assert p.receive_data(srv(OP_CLOSE, close_payload(1000))) == [("close", 1000, "")]
        assert p.state == CLOSED
        assert not p.close_owed() and not p.answer_close()  # no second close frame
        assert p.data_to_send() == b""
        assert p.send_close() is False

    def test_send_close_no_status(self) -> None:
        p = Protocol()
        assert p.send_close(None)
        assert decode_client_frames(p.data_to_send()) == [Frame(OP_CLOSE, True, 0, b"")]
        assert p.state == CLOSING

    def test_send_close_invalid(self) -> None:
        p = Protocol()
        with pytest.raises(FrameEncodeError):
            p.send_close(1005)
        with pytest.raises(FrameEncodeError):
            p.send_close(1000, "x" * 124)
        assert p.state == OPEN

    def test_data_after_close_ignored(self) -> None:
        p = Protocol()
        wire = srv(OP_TEXT, b"a") + srv(OP_CLOSE, close_payload(1000)) + srv(OP_TEXT, b"b") + b"\xff\xff"
        assert p.receive_data(wire) == [("text", "a"), ("close", 1000, "")]
        assert p.receive_data(srv(OP_TEXT, b"c")) == []
        assert p.receive_data(srv(OP_CLOSE)) == []
        assert p.error is None
        assert p.answer_close()
        assert decode_client_frames(p.data_to_send()) == [
            Frame(OP_CLOSE, True, 0, close_payload(1000))
        ]

    def test_close_inside_fragmented_message(self) -> None:
        p = Protocol()
        wire = srv(OP_TEXT, b"a", fin=False) + srv(OP_CLOSE, close_payload(1000))
        assert p.receive_data(wire) == [("close", 1000, "")]

    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            (b"\x03", 1002),
            (close_payload(1005), 1002),
            (close_payload(1006), 1002),
            (close_payload(999), 1002),
            (close_payload(5000), 1002),
            (close_payload(1000, b"\xff"), 1007),
            (close_payload(1000, b"\xed\xa0\x80"), 1007),
        ],
    )
    def test_invalid_close_payload(self, payload: bytes, code: int) -> None:
        p = Protocol()
        events = p.receive_data(srv(OP_CLOSE, payload))
        assert single_error(events).code == code
        assert p.close_received is None
        assert_failed_with(p, code)

    def test_error_while_closing_sends_nothing(self) -> None:
        p = Protocol()
        p.send_close()
        p.data_to_send()
        assert single_error(p.receive_data(srv(OP_TEXT, b"\xff"))).code == 1007
        assert p.state == CLOSED
        assert not p.close_owed() and not p.answer_close()
        assert p.data_to_send() == b""

    def test_receive_eof(self) -> None:
        p = Protocol()
        p.receive_eof()
        assert p.state == CLOSED
        assert p.receive_data(srv(OP_TEXT, b"x")) == []


# -------------------------------------------------------------------- send


class TestSend:
    @pytest.mark.parametrize(
        ("frame", "opcode", "payload"),
        [
            (("text", "héllo"), OP_TEXT, "héllo".encode()),
            (("text", b"bytes ok"), OP_TEXT, b"bytes ok"),
            (("binary", b"\x00\x01"), OP_BINARY, b"\x00\x01"),
            (("binary", bytearray(b"ba")), OP_BINARY, b"ba"),
            (("binary", memoryview(b"mv")), OP_BINARY, b"mv"),
            ("ping", OP_PING, b""),
            (("ping", b"x"), OP_PING, b"x"),
            ("pong", OP_PONG, b""),
            (("pong", b"x"), OP_PONG, b"x"),
            (("ping", bytes(125)), OP_PING, bytes(125)),
            (("binary", bytes(70000)), OP_BINARY, bytes(70000)),
        ],
    )
    def test_single_frames(self, frame: Any, opcode: int, payload: bytes) -> None:
        p = Protocol()
        assert decode_client_frames(sent(p, frame)) == [Frame(opcode, True, 0, payload)]
        assert p.state == OPEN

    def test_fragmented_text(self) -> None:
        p = Protocol()
        out = sent(p, ("fragment", "text", "a"))
        out += sent(p, "ping")
        out += sent(p, ("continuation", "b"))
        out += sent(p, ("pong", b"x"))
        out += sent(p, ("finish", "c"))
        out += sent(p, ("text", "after"))
        assert decode_client_frames(out) == [
            Frame(OP_TEXT, False, 0, b"a"),
            Frame(OP_PING, True, 0, b""),
            Frame(OP_CONTINUATION, False, 0, b"b"),
            Frame(OP_PONG, True, 0, b"x"),
            Frame(OP_CONTINUATION, True, 0, b"c"),
            Frame(OP_TEXT, True, 0, b"after"),
        ]

    def test_fragmented_binary(self) -> None:
        p = Protocol()
        out = sent(p, ("fragment", "binary", b"\x01"))
        out += sent(p, ("continuation", b"\x02"))
        out += sent(p, ("finish", b""))
        assert decode_client_frames(out) == [
            Frame(OP_BINARY, False, 0, b"\x01"),
            Frame(OP_CONTINUATION, False, 0, b"\x02"),
            Frame(OP_CONTINUATION, True, 0, b""),
        ]

    def test_fresh_mask_per_send(self) -> None:
        p = Protocol()
        a = sent(p, ("text", "same"))
        b = sent(p, ("text", "same"))
        assert a[2:6] != b[2:6]

    @pytest.mark.parametrize(
        "frame",
        [
            ("texty", "x"),
            42,
            ("text",),
            ("binary", "str"),
            "text",
            "close",
            (),
            ["text", "x"],
            ("text", 5),
            ("ping", 5),
            ("fragment", "ping", b"x"),
            ("fragment", "binary", "str"),
            ("continuation", 3),
            ("text", "x", "y"),
            None,
        ],
    )
    def test_invalid_shapes(self, frame: Any) -> None:
        p = Protocol()
        with pytest.raises(InvalidFrameError):
            p.send(frame)
        assert p.data_to_send() == b""  # nothing buffered for a refused frame
        with pytest.raises(InvalidFrameError):
            frame_to_wire(frame)

    def test_ping_too_long(self) -> None:
        with pytest.raises(FrameEncodeError):
            Protocol().send(("ping", bytes(126)))
        with pytest.raises(FrameEncodeError):
            Protocol().send(("pong", "x" * 126))

    def test_continuation_without_fragment(self) -> None:
        p = Protocol()
        with pytest.raises(FrameEncodeError):
            p.send(("continuation", b"x"))
        with pytest.raises(FrameEncodeError):
            p.send(("finish", b"x"))

    def test_new_message_during_fragmented(self) -> None:
        p = Protocol()
        sent(p, ("fragment", "text", "a"))
        with pytest.raises(FrameEncodeError):
            p.send(("text", "x"))
        with pytest.raises(FrameEncodeError):
            p.send(("fragment", "binary", b"x"))
        # the fragmented message can still be finished
        assert decode_client_frames(sent(p, ("finish", "z"))) == [
            Frame(OP_CONTINUATION, True, 0, b"z")
        ]
        with pytest.raises(FrameEncodeError):
            p.send(("finish", "again"))

    @pytest.mark.parametrize("payload", [b"\xff", b"a\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82"])
    def test_text_bytes_not_utf8(self, payload: bytes) -> None:
        with pytest.raises(FrameEncodeError):
            Protocol().send(("text", payload))

    def test_not_connected_after_close(self) -> None:
        p = Protocol()
        p.send_close()
        for frame in (("text", "x"), "ping", ("binary", b"")):
            with pytest.raises(NotConnectedError):
                p.send(frame)
        p = Protocol()
        p.receive_data(srv(OP_CLOSE))
        p.answer_close()
        with pytest.raises(NotConnectedError):
            p.send(("text", "x"))
        p = Protocol()
        p.receive_data(b"\x83\x00")
        p.answer_close()
        with pytest.raises(NotConnectedError):
            p.send("ping")

    def test_frames_buffered_together_come_out_in_order_once(self) -> None:
        p = Protocol()
        assert p.send(("text", "a")) is None
        assert p.send(("binary", b"b" * 300)) is None
        assert p.send("ping") is None
        assert p.send_close(1000, "bye")
        assert decode_client_frames(p.data_to_send()) == [
            Frame(OP_TEXT, True, 0, b"a"),
            Frame(OP_BINARY, True, 0, b"b" * 300),
            Frame(OP_PING, True, 0, b""),
            Frame(OP_CLOSE, True, 0, close_payload(1000, b"bye")),
        ]
        assert p.data_to_send() == b""

    def test_frame_to_wire(self) -> None:
        assert frame_to_wire(("text", "é")) == (OP_TEXT, True, "é".encode(), None)
        assert frame_to_wire("pong") == (OP_PONG, True, b"", None)
        assert frame_to_wire(("fragment", "text", "a")) == (OP_TEXT, False, b"a", "fragment")
        assert frame_to_wire(("continuation", "b")) == (OP_CONTINUATION, False, b"b", "continuation")
        assert frame_to_wire(("finish", b"c")) == (OP_CONTINUATION, True, b"c", "finish")


# --------------------------------------------------------------- extensions


class InvertExtension:
    """Fake per-message extension: RSV1 on a message's first frame means every
    payload byte of that message is inverted (like permessage-deflate, only the
    first frame carries RSV1)."""

    name = "x-invert"
    rsv_mask = 0x40

    def __init__(self) -> None:
        self.active = False

    def decode(
        self, opcode: int, fin: bool, rsv: int, payload: bytes, max_size: int | None
    ) -> tuple[int, bytes]:
        if opcode != OP_CONTINUATION:
            self.active = bool(rsv & 0x40)
        if self.active:
            return rsv & ~0x40, invert(payload)
        return rsv, payload

    def encode(self, opcode: int, fin: bool, rsv: int, payload: bytes) -> tuple[int, bytes]:
        if opcode != OP_CONTINUATION:
            return rsv | 0x40, invert(payload)
        return rsv, invert(payload)


def invert(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


class TestExtensions:
    def transformed_fragmented(self) -> bytes:
        return (
            encode_frame(OP_TEXT, invert(b"ab"), fin=False, rsv=0x40, masked=False)
            + srv(OP_PING)
            + srv(OP_CONTINUATION, invert("cdé€".encode()), fin=False)
            + srv(OP_CONTINUATION, invert(b"gh"), fin=True)
        )

    @pytest.mark.parametrize("size", [1, 2, 3, 100])
    def test_transformed_continuations_not_validated_raw(self, size: int) -> None:
        # Regression: continuation frames (RSV clear) of a message whose first
        # frame had RSV1 were UTF-8-checked before the extension decoded them.
        p = Protocol(extensions=[InvertExtension()])
        wire = self.transformed_fragmented() + srv(OP_TEXT, b"plain")
        assert feed_pieces(p, wire, size) == ["ping", ("text", "abcdé€gh"), ("text", "plain")]
        assert p.error is None and p.data_to_send() == b""

    def test_transformed_single_frame_in_pieces(self) -> None:
        p = Protocol(extensions=[InvertExtension()])
        wire = encode_frame(OP_TEXT, invert("κόσμε".encode()), rsv=0x40, masked=False)
        assert feed_pieces(p, wire, 1) == [("text", "κόσμε")]

    def test_plain_message_still_fail_fast(self) -> None:
        p = Protocol(extensions=[InvertExtension()])
        # a transformed message first, then a plain one: fail fast still applies
        assert p.receive_data(self.transformed_fragmented()) == ["ping", ("text", "abcdé€gh")]
        wire = srv(OP_TEXT, b"ok", fin=False) + srv(OP_CONTINUATION, b"x\xffyz" + bytes(20))
        cut = wire.index(b"\xff")
        assert p.receive_data(wire[:cut]) == []
        assert single_error(p.receive_data(wire[cut : cut + 1])).code == 1007
        assert_failed_with(p, 1007)

    def test_invalid_after_transform(self) -> None:
        p = Protocol(extensions=[InvertExtension()])
        wire = encode_frame(OP_TEXT, invert(b"a"), fin=False, rsv=0x40, masked=False) + srv(
            OP_CONTINUATION, invert(b"\xc0\x80"), fin=True
        )
        assert single_error(feed_pieces(p, wire, 1)).code == 1007

    def test_rsv_allowed_only_with_extension(self) -> None:
        wire = encode_frame(OP_TEXT, invert(b"a"), rsv=0x40, masked=False)
        assert Protocol(extensions=[InvertExtension()]).receive_data(wire) == [("text", "a")]
        assert single_error(Protocol().receive_data(wire)).code == 1002

    def test_send_through_extension(self) -> None:
        p = Protocol(extensions=[InvertExtension()])
        out = sent(p, ("fragment", "text", "a")) + sent(p, "ping") + sent(p, ("finish", "b"))
        assert decode_client_frames(out) == [
            Frame(OP_TEXT, False, 0x40, invert(b"a")),
            Frame(OP_PING, True, 0, b""),
            Frame(OP_CONTINUATION, True, 0, invert(b"b")),
        ]
