"""The core's server side, with bytes alone: ServerHandshake, Protocol(side=SERVER), deflate.

Every fault of an upgrade request gets its status (and the headers that
status calls for); a valid request gets a 101 that wsx's own client
handshake accepts; a server protocol takes masked frames only and sends
unmasked ones; permessage-deflate negotiated by a server compresses both
ways with the client it negotiated with.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from wsx.core.extensions.permessage_deflate import Deflate
from wsx.core.frames import OP_BINARY, OP_CLOSE, OP_TEXT, FrameParser, PyFrameParser, encode_frame
from wsx.core.handshake import ClientHandshake, Refusal, ServerHandshake
from wsx.core.headers import parse_extensions
from wsx.core.protocol import CLOSED, Protocol
from wsx.core.side import Side
from wsx.core.url import parse_url
from wsx.errors import HandshakeError

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3



def sent(proto: Any, frame: Any) -> bytes:
    """``proto.send(frame)`` and the bytes it buffered."""
    proto.send(frame)
    out: bytes = proto.data_to_send()
    return out

def request(*lines: str, method: str = "GET", target: str = "/chat",
            version: str = "HTTP/1.1") -> bytes:
    head = [f"{method} {target} {version}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


VALID = ("Host: example.test", "Upgrade: websocket", "Connection: Upgrade",
         f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13")


def without(name: str, *extra: str) -> tuple[str, ...]:
    return tuple(line for line in VALID if not line.startswith(name + ":")) + extra


def refusal(data: bytes, **options: Any) -> Refusal:
    hs = ServerHandshake(**options)
    with pytest.raises(Refusal) as info:
        req = hs.receive_data(data)
        assert req is not None, "the request head was not complete"
        hs.accept(req)
    return info.value


def status_line_and_headers(response: bytes) -> tuple[str, dict[str, str]]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return head[0], {k.lower(): v for k, v in (h.split(": ", 1) for h in head[1:])}


@pytest.mark.parametrize(
    ("data", "status", "says", "header"),
    [
        (b"GET /\r\n\r\n", 400, "invalid HTTP request line", None),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "invalid HTTP request line", None),
        (request("Host: x", "bad header line"), 400, "invalid header line", None),
        (request("Host: x", " folded"), 400, "obsolete line folding", None),
        (b"\x16\x03\x01\x02\x00\x01\x00", 400, "TLS handshake", None),
        (request(*VALID, method="POST"), 405, "method POST", ("allow", "GET")),
        (request(*VALID, version="HTTP/1.0"), 400, "HTTP/1.1", None),
        (request(*without("Upgrade")), 426, "Upgrade: websocket", ("upgrade", "websocket")),
        (request(*without("Upgrade", "Upgrade: h2c")), 426, "'h2c'", ("upgrade", "websocket")),
        (request(*without("Host")), 400, "no Host", None),
        (request(*without("Connection", "Connection: keep-alive")), 400, "'keep-alive'", None),
        (request(*without("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")), 426,
         "'8'", ("sec-websocket-version", "13")),
        (request(*without("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")), 426,
         "'8'", ("upgrade", "websocket")),  # a 426 names the upgrade (RFC 9110 15.5.22)
        (request(*without("Sec-WebSocket-Version")), 426, "None",
         ("sec-websocket-version", "13")),
        (request(*without("Sec-WebSocket-Key")), 400, "Sec-WebSocket-Key None", None),
        (request(*without("Sec-WebSocket-Key", "Sec-WebSocket-Key: c2hvcnQ=")), 400,
         "'c2hvcnQ='", None),
        (request(*VALID, f"Sec-WebSocket-Key: {KEY}"), 400, "Sec-WebSocket-Key", None),
        (request(*VALID, "Sec-WebSocket-Extensions: permessage-deflate; =x"), 400,
         "Sec-WebSocket-Extensions", None),
        (request("Host: x", *[f"X-{i}: y" for i in range(200)]), 431, "max_headers", None),
        (request("Host: " + "x" * 9000), 431, "header line longer than max_line", None),
        (b"GET /" + b"a" * 9000, 414, "request line longer", None),  # no line end yet: early
        (request(*VALID, "Host: other.test"), 400, "2 Host headers", None),
    ],
)
def test_each_request_fault_has_its_status(data: bytes, status: int, says: str,
                                           header: tuple[str, str] | None) -> None:
    exc = refusal(data)
    assert exc.status == status
    assert says in exc.detail
    line, headers = status_line_and_headers(exc.response_bytes())
    assert line.startswith(f"HTTP/1.1 {status} ")
    assert "close" in headers["connection"].lower()
    body = exc.response_bytes().split(b"\r\n\r\n", 1)[1]
    assert int(headers["content-length"]) == len(body) and says.encode() in body
    if header is not None:
        assert headers[header[0]] == header[1]
    if status == 426 and header == ("upgrade", "websocket"):
        assert headers["connection"] == "Upgrade, close"


def test_an_origin_not_allowed_is_403() -> None:
    exc = refusal(request(*VALID, "Origin: https://evil.test"), origins=["https://good.test"])
    assert exc.status == 403 and "'https://evil.test'" in exc.detail
    assert refusal(request(*VALID), origins=["https://good.test"]).status == 403
    hs = ServerHandshake(origins=["https://good.test"])
    req = hs.receive_data(request(*VALID, "Origin: https://good.test"))
    assert req is not None and hs.accept(req).response.startswith(b"HTTP/1.1 101 ")


def test_rfc_example_key_and_a_request_fed_byte_by_byte() -> None:
    hs = ServerHandshake()
    data = request(*VALID) + b"\x81\x85"  # the start of the first frame
    for i in range(len(data) - 3):
        assert hs.receive_data(data[i : i + 1]) is None
    req = hs.receive_data(data[len(data) - 3 :])
    assert req is not None
    assert (req.method, req.target, req.path, req.version) == ("GET", "/chat", "/chat", "HTTP/1.1")
    assert req.leftover == b"\x81\x85"
    accepted = hs.accept(req)
    line, headers = status_line_and_headers(accepted.response)
    assert line == "HTTP/1.1 101 Switching Protocols"
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"
    assert "sec-websocket-protocol" not in headers and "sec-websocket-extensions" not in headers
    assert (accepted.subprotocol, accepted.extensions) == (None, [])
    with pytest.raises(HandshakeError, match="already finished"):
        hs.receive_data(b"more")


def test_request_fields() -> None:
    hs = ServerHandshake()
    req = hs.receive_data(request(
        *VALID, "Sec-WebSocket-Protocol: chat.v2, chat.v1", "X-Tag: a", "x-tag: b",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other",
        target="/room/1?user=ann&lang=en"))
    assert req is not None
    assert req.path == "/room/1" and req.query == {"user": "ann", "lang": "en"}
    assert req.subprotocols == ["chat.v2", "chat.v1"]
    assert req.headers.get_all("X-TAG") == ["a", "b"]
    assert [name for name, _ in req.extensions] == ["permessage-deflate", "x-other"]


def test_eof_before_the_request() -> None:
    with pytest.raises(HandshakeError, match="before any request"):
        ServerHandshake().receive_eof()
    hs = ServerHandshake()
    hs.receive_data(b"GET / HT")
    with pytest.raises(HandshakeError, match="after 8 bytes"):
        hs.receive_eof()


@pytest.mark.parametrize(
    ("server", "client", "chosen"),
    [
        (["b", "a"], ["a", "b"], "b"),  # the server's first choice that the client offers
        (["c", "a"], ["a", "b"], "a"),
        (["c"], ["a", "b"], None),
        ([], ["a"], None),
        (["a"], [], None),
    ],
)
def test_subprotocol_selection_both_sides(server: list[str], client: list[str],
                                          chosen: str | None) -> None:
    ch = ClientHandshake(parse_url("ws://example.test/"), subprotocols=client)
    hs = ServerHandshake(subprotocols=server)
    req = hs.receive_data(ch.request_bytes())
    assert req is not None
    accepted = hs.accept(req)
    assert accepted.subprotocol == chosen
    response = ch.receive_data(accepted.response)
    assert response is not None and response.subprotocol == chosen


def test_accept_options_are_checked() -> None:
    hs = ServerHandshake(subprotocols=["a"])
    req = hs.receive_data(request(*VALID, "Sec-WebSocket-Protocol: a, b"))
    assert req is not None
    assert hs.accept(req, subprotocol="b").subprotocol == "b"
    with pytest.raises(ValueError, match="'z' was not offered"):
        hs.accept(req, subprotocol="z")
    with pytest.raises(ValueError, match="'Sec-WebSocket-Accept'"):
        hs.accept(req, headers=[("Sec-WebSocket-Accept", "x")])
    with pytest.raises(ValueError, match="control character"):
        hs.accept(req, headers=[("X-A", "b\r\nX-Injected: 1")])
    _, headers = status_line_and_headers(hs.accept(req, headers=[("Set-Cookie", "s=1")]).response)
    assert headers["set-cookie"] == "s=1"
    with pytest.raises(ValueError, match="not a token"):
        ServerHandshake(subprotocols=["bad proto"])
    with pytest.raises(TypeError, match="compress"):
        ServerHandshake(compress=True)  # type: ignore[arg-type]


SERVERS = [
    Deflate(),
    Deflate(client_no_context_takeover=True, server_no_context_takeover=True),
    Deflate(server_max_window_bits=10, client_max_window_bits=9),
    Deflate(server_max_window_bits=8),
]
CLIENTS = [
    Deflate(),
    Deflate(client_max_window_bits=None),
    Deflate(server_max_window_bits=9, client_no_context_takeover=True),
    Deflate(server_no_context_takeover=True, client_max_window_bits=12),
]


@pytest.mark.parametrize("server", SERVERS, ids=lambda d: d.offer())
@pytest.mark.parametrize("client", CLIENTS, ids=lambda d: d.offer())
def test_deflate_negotiated_by_a_server_works_both_ways(server: Deflate, client: Deflate) -> None:
    ch = ClientHandshake(parse_url("ws://example.test/"), extensions=[client.offer()])
    hs = ServerHandshake(compress=server)
    req = hs.receive_data(ch.request_bytes())
    assert req is not None
    accepted = hs.accept(req)
    response = ch.receive_data(accepted.response)
    assert response is not None
    if server.client_max_window_bits == 9 and client.client_max_window_bits is None:
        # The server caps the client's window and this client cannot take a cap.
        assert accepted.extensions == [] and response.extensions == []
        return
    (server_ext,) = accepted.extensions
    ((name, params),) = response.extensions
    client_ext = client.accept(params)
    assert server_ext.side is Side.SERVER and client_ext.side is Side.CLIENT
    for attr in ("server_no_context_takeover", "client_no_context_takeover",
                 "server_max_window_bits", "client_max_window_bits"):
        assert getattr(server_ext, attr) == getattr(client_ext, attr), attr
    cp = Protocol(extensions=[client_ext], side=Side.CLIENT)
    sp = Protocol(extensions=[server_ext], side=Side.SERVER)
    for message in [("text", "hello " * 50), ("binary", os.urandom(3000) * 3), ("text", "é")]:
        for _ in range(2):  # the second time: with the context taken over, or not
            wire = sent(cp, message)
            assert sp.receive_data(wire) == [message]
            wire = sent(sp, message)
            assert cp.receive_data(wire) == [message]
            if message[0] == "text" and len(message[1]) > 100 and server_ext._can_compress:
                assert len(wire) < len(message[1]) // 2  # compressed


def test_a_server_that_declines_every_offer_of_a_broken_or_unknown_extension() -> None:
    hs = ServerHandshake(compress=Deflate())
    req = hs.receive_data(request(*VALID, "Sec-WebSocket-Extensions: "
                                  "permessage-deflate; bogus=1, permessage-deflate; "
                                  "server_max_window_bits=20, x-other"))
    assert req is not None
    accepted = hs.accept(req)
    assert accepted.extensions == []
    assert b"Sec-WebSocket-Extensions" not in accepted.response
    # The second, valid offer is taken when the first is broken.
    offers = parse_extensions(["permessage-deflate; bogus, permessage-deflate"])
    negotiated = Deflate().negotiate(offers)
    assert negotiated is not None and negotiated[1] == "permessage-deflate"


PARSERS = [FrameParser, PyFrameParser]


def server_protocol(parser: Any, **options: Any) -> Protocol:
    proto = Protocol(side=Side.SERVER, **options)
    proto._parser = parser(options.get("max_message_size", 1 << 24),
                           options.get("max_message_size", 1 << 24), 0, True)
    return proto


@pytest.mark.parametrize("parser", PARSERS, ids=["default", "python"])
def test_a_server_protocol_takes_masked_frames_and_sends_unmasked_ones(parser: Any) -> None:
    server = server_protocol(parser)
    client = Protocol()
    wire = (sent(client, ("text", "héllo")) + sent(client, ("binary", b"\x00" * 200))
            + sent(client, ("fragment", "text", "ab")) + sent(client, "ping")
            + sent(client, ("finish", "cd")))
    events = []
    for i in range(0, len(wire), 7):
        events += server.receive_data(wire[i : i + 7])
    assert events == [("text", "héllo"), ("binary", b"\x00" * 200), "ping", ("text", "abcd")]
    out = sent(server, ("text", "hi")) + sent(server, ("binary", b"xy")) + sent(server, "pong")
    assert out == (encode_frame(OP_TEXT, b"hi", masked=False)
                   + encode_frame(OP_BINARY, b"xy", masked=False) + b"\x8a\x00")
    assert client.receive_data(out) == [("text", "hi"), ("binary", b"xy"), "pong"]


@pytest.mark.parametrize("parser", PARSERS, ids=["default", "python"])
def test_a_server_protocol_fails_an_unmasked_frame_with_1002(parser: Any) -> None:
    server = server_protocol(parser)
    events = server.receive_data(encode_frame(OP_TEXT, b"hi", masked=False))
    ((kind, exc),) = events
    assert kind == "error" and exc.code == 1002 and "unmasked" in str(exc)
    assert server.data_to_send() == b"" and server.answer_close()
    close = server.data_to_send()
    assert close[:2] == b"\x88\x02" and close[2:] == (1002).to_bytes(2, "big")  # unmasked
    assert server.state is CLOSED


@pytest.mark.parametrize("parser", PARSERS, ids=["default", "python"])
def test_a_server_protocol_checks_utf8_as_text_arrives(parser: Any) -> None:
    server = server_protocol(parser)
    bad = encode_frame(OP_TEXT, b"ok" + b"\xff" + b"x" * 5000, masked=True)
    events = server.receive_data(bad[:200])  # the bad byte is in, the frame is not
    ((kind, exc),) = events
    assert kind == "error" and exc.code == 1007


@pytest.mark.parametrize("parser", PARSERS, ids=["default", "python"])
def test_closing_handshake_from_either_side(parser: Any) -> None:
    server, client = server_protocol(parser), Protocol()
    client.send_close(1001, "bye")
    assert server.receive_data(client.data_to_send()) == [("close", 1001, "bye")]
    assert server.answer_close()
    echo = server.data_to_send()
    assert echo == encode_frame(OP_CLOSE, (1001).to_bytes(2, "big"), masked=False)
    assert client.receive_data(echo) == [("close", 1001, "")]
    assert server.state is CLOSED and client.state is CLOSED
    server, client = server_protocol(parser), Protocol()
    server.send_close(1000, "done")
    start = server.data_to_send()
    assert start[1] & 0x80 == 0  # a server's close frame is not masked
    assert client.receive_data(start) == [("close", 1000, "done")]
    assert client.answer_close()
    assert server.receive_data(client.data_to_send()) == [("close", 1000, "")]


def test_side_is_checked_and_told() -> None:
    assert Protocol().side is Side.CLIENT and Side.CLIENT.masks and not Side.SERVER.masks
    assert Protocol(side=Side.SERVER)._parser.masked
    with pytest.raises(TypeError, match="'server'"):
        Protocol(side="server")  # type: ignore[arg-type]


def test_the_key_check_accepts_only_16_bytes() -> None:
    for key in (base64.b64encode(os.urandom(16)).decode(), KEY):
        hs = ServerHandshake()
        req = hs.receive_data(request(*without("Sec-WebSocket-Key", f"Sec-WebSocket-Key: {key}")))
        assert req is not None and hs.accept(req).response.startswith(b"HTTP/1.1 101")
    for key in (base64.b64encode(os.urandom(15)).decode(), "not base64!", ""):
        exc = refusal(request(*without("Sec-WebSocket-Key", f"Sec-WebSocket-Key: {key}")))
        assert exc.status == 400
