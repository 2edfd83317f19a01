"""Tests for wsx.core.handshake."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsx.core.handshake import (
    DEFAULT_USER_AGENT,
    ClientHandshake,
    HandshakeResponse,
    Headers,
    accept_key,
    build_extension_offer,
    parse_extensions,
    parse_header_list,
)
from wsx.core.url import parse_url
from wsx.errors import HandshakeError, RequestError

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
UA = DEFAULT_USER_AGENT.encode()

# -- recorded server answers (for KEY) --------------------------------------

WEBSOCKETS_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Date: Fri, 28 Nov 2025 01:48:03 GMT\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n"
    b"Server: Python/3.11 websockets/12.0\r\n"
    b"\r\n"
)
NGINX_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Server: nginx/1.24.0 (Ubuntu)\r\n"
    b"Date: Fri, 28 Nov 2025 01:48:03 GMT\r\n"
    b"Connection: upgrade\r\n"
    b"Upgrade: websocket\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)
AUTOBAHN_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Server: AutobahnTestSuite/0.8.2-0.10.9\r\n"
    b"X-Powered-By: AutobahnPython/0.10.9\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    b"\r\n"
)
# Frames a server may send right after its 101: "Hello" then a close 1000.
FRAMES = b"\x81\x05Hello\x88\x02\x03\xe8"

NGINX_401_BODY = (
    b"<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"
    b"<center><h1>401 Authorization Required</h1></center>\r\n"
    b"<hr><center>nginx/1.24.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n"
)
NGINX_401 = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b"Server: nginx/1.24.0 (Ubuntu)\r\n"
    b"Date: Fri, 28 Nov 2025 01:48:03 GMT\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: keep-alive\r\n"
    b'WWW-Authenticate: Basic realm="chat"\r\n'
    b"\r\n" % len(NGINX_401_BODY)
) + NGINX_401_BODY
WEBSOCKETS_404 = (
    b"HTTP/1.1 404 Not Found\r\n"
    b"Date: Fri, 28 Nov 2025 01:48:03 GMT\r\n"
    b"Server: Python/3.11 websockets/12.0\r\n"
    b"Connection: close\r\n"
    b"Content-Length: 10\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Not Found\n"
)
NGINX_301_BODY = (
    b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
    b"<center><h1>301 Moved Permanently</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
NGINX_301 = (
    b"HTTP/1.1 301 Moved Permanently\r\n"
    b"Server: nginx\r\n"
    b"Date: Fri, 28 Nov 2025 01:48:03 GMT\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: keep-alive\r\n"
    b"Location: wss://example.com/chat\r\n"
    b"\r\n" % len(NGINX_301_BODY)
) + NGINX_301_BODY
CHUNKED_403 = (
    b"HTTP/1.1 403 Forbidden\r\n"
    b"Content-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"7\r\nOrigin \r\n"
    b"b;ext=1\r\nnot allowed\r\n"
    b"0\r\n"
    b"\r\n"
)
CLOSE_DELIMITED_400 = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nbad request\n"


def handshake(url: str = "ws://example.com/chat", **kwargs: object) -> ClientHandshake:
    kwargs.setdefault("key", KEY)
    return ClientHandshake(parse_url(url), **kwargs)  # type: ignore[arg-type]


def offering() -> ClientHandshake:
    """A handshake offering what the recorded answers select."""
    return handshake(subprotocols=["chat", "superchat"], extensions=["permessage-deflate; client_max_window_bits"])


def feed(hs: ClientHandshake, chunks: list[bytes]) -> tuple[HandshakeResponse, bytes]:
    """Feed chunks until a result; return it and the bytes given after it."""
    for index, chunk in enumerate(chunks):
        result = hs.receive_data(chunk)
        if result is not None:
            return result, b"".join(chunks[index + 1:])
    raise AssertionError("no result")


def request_error(hs: ClientHandshake, chunks: list[bytes], eof: bool = False) -> RequestError:
    with pytest.raises(RequestError) as info:
        for chunk in chunks:
            assert hs.receive_data(chunk) is None
        if eof:
            hs.receive_eof()
    return info.value


def reject(data: bytes, hs: ClientHandshake | None = None) -> str:
    hs = hs or offering()
    with pytest.raises(HandshakeError) as info:
        hs.receive_data(data)
    assert not isinstance(info.value, RequestError)
    return str(info.value)


def response_101(*lines: bytes) -> bytes:
    return b"HTTP/1.1 101 Switching Protocols\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


GOOD = (b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + ACCEPT.encode())
HEADER_LINES = b"\r\n" + response_101(*GOOD).partition(b"\r\n")[2]  # to append to a status line


# -- accept_key ------------------------------------------------------------


def test_accept_key_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- Headers and header-value helpers ----------------------------------------


def test_headers() -> None:
    headers = Headers([("Host", "a"), ("X-Multi", "1"), ("x-multi", "2, 3"), ("Empty", "")])
    assert headers.get("host") == "a"
    assert headers.get("X-MULTI") == "1, 2, 3"
    assert headers.get_all("x-Multi") == ["1", "2, 3"]
    assert headers.get_all("missing") == []
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert headers.get("empty") == ""
    assert "HOST" in headers and "nope" not in headers and 1 not in headers
    assert list(headers) == ["Host", "X-Multi", "x-multi", "Empty"]
    assert headers == Headers(headers.items()) and headers != Headers(headers.items()[::-1])
    assert len(headers) == 4
    assert headers.items() == [("Host", "a"), ("X-Multi", "1"), ("x-multi", "2, 3"), ("Empty", "")]
    assert repr(headers).startswith("Headers([('Host', 'a')")
    headers.add("Host", "b")
    assert headers.get_all("host") == ["a", "b"]


def test_parse_header_list() -> None:
    assert parse_header_list("keep-alive, Upgrade") == ["keep-alive", "Upgrade"]
    assert parse_header_list(" a ,, \tb\t,") == ["a", "b"]
    assert parse_header_list("") == []
    assert parse_header_list(" , ") == []


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], []),
        ([""], []),
        (["x-foo"], [("x-foo", [])]),
        (
            ["permessage-deflate; client_max_window_bits=10, x-foo"],
            [("permessage-deflate", [("client_max_window_bits", "10")]), ("x-foo", [])],
        ),
        (
            ["permessage-deflate ;client_max_window_bits ; server_no_context_takeover"],
            [("permessage-deflate", [("client_max_window_bits", None), ("server_no_context_takeover", None)])],
        ),
        (
            ['permessage-deflate; client_max_window_bits="10"; server_max_window_bits = 12'],
            [("permessage-deflate", [("client_max_window_bits", "10"), ("server_max_window_bits", "12")])],
        ),
        (['x; a="\\b\\c"'], [("x", [("a", "bc")])]),
        (["a", "b; c=1", " , c ,"], [("a", []), ("b", [("c", "1")]), ("c", [])]),
        ("a, b", [("a", []), ("b", [])]),  # a single str is one header value
    ],
)
def test_parse_extensions(values: list[str], expected: list[object]) -> None:
    assert parse_extensions(values) == expected


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("permessage-deflate;", "expected a parameter name at end of value"),
        ("; x", "expected an extension name at '; x'"),
        ("a b", "expected ';' or ',' at 'b'"),
        ("a; =1", "expected a parameter name at '=1'"),
        ("a; b=", "expected a value for parameter 'b' at end of value"),
        ("a; b=,", "expected a value for parameter 'b' at ','"),
        ('a; b="x y"', "expected a token inside the quoted value of 'b'"),
        ('a; b=""', "expected a token inside the quoted value of 'b'"),
        ('a; b="unterminated', "expected a value for parameter 'b'"),
        ("a; b=1=2", "expected ';' or ',' at '=2'"),
        ("a@b", "expected ';' or ',' at '@b'"),
    ],
)
def test_parse_extensions_rejects(value: str, fragment: str) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_extensions([value])
    assert repr(value) in str(info.value)
    assert fragment in str(info.value)


def test_build_extension_offer() -> None:
    offer = [
        ("permessage-deflate", [("client_max_window_bits", "10"), ("server_no_context_takeover", None)]),
        ("x-foo", []),
    ]
    text = build_extension_offer(offer)
    assert text == "permessage-deflate; client_max_window_bits=10; server_no_context_takeover, x-foo"
    assert parse_extensions([text]) == offer
    assert build_extension_offer([]) == ""
    for bad in ([("a b", [])], [("a", [("b c", None)])], [("a", [("b", "x y")])], [("a", [("b", "")])]):
        with pytest.raises(ValueError):
            build_extension_offer(bad)


# -- request ---------------------------------------------------------------


def test_request_minimal() -> None:
    assert handshake("ws://Example.com:80/chat").request_bytes() == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"User-Agent: " + UA + b"\r\n"
        b"\r\n"
    )


def test_request_ipv6_and_query() -> None:
    request = handshake("ws://[::1]:8080/runCase?case=3&agent=wsx#x").request_bytes()
    assert request.startswith(b"GET /runCase?case=3&agent=wsx HTTP/1.1\r\nHost: [::1]:8080\r\n")


def test_request_default_port_omitted() -> None:
    assert b"\r\nHost: example.com\r\n" in handshake("wss://example.com:443").request_bytes()
    assert b"\r\nHost: example.com:80\r\n" in handshake("wss://example.com:80").request_bytes()
    assert handshake("wss://example.com").request_bytes().startswith(b"GET / HTTP/1.1\r\n")


def test_request_everything() -> None:
    hs = handshake(
        "wss://alice:s%40cret@chat.example.com:8443/socket?room=1",
        origin="https://chat.example.com",
        subprotocols=["chat", "superchat"],
        extensions=["permessage-deflate; client_max_window_bits", "x-foo"],
        extra_headers={"X-Token": "abc", "Cookie": "a=1; b=2"},
    )
    assert hs.key == KEY
    assert hs.request_bytes() == (
        b"GET /socket?room=1 HTTP/1.1\r\n"
        b"Host: chat.example.com:8443\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: https://chat.example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n"
        b"Authorization: Basic " + base64.b64encode(b"alice:s@cret") + b"\r\n"
        b"X-Token: abc\r\n"
        b"Cookie: a=1; b=2\r\n"
        b"User-Agent: " + UA + b"\r\n"
        b"\r\n"
    )


def test_request_user_without_password() -> None:
    request = handshake("ws://bob@example.com/").request_bytes()
    assert b"\r\nAuthorization: Basic " + base64.b64encode(b"bob:") + b"\r\n" in request


def test_request_overrides() -> None:
    request = handshake(
        "ws://alice:pw@10.0.0.1/",
        extra_headers=[("Authorization", "Bearer t0k"), ("User-Agent", "my-app/1"), ("Host", "chat.example"),
                       ("X-Dup", "1"), ("X-Dup", "2")],
    ).request_bytes()
    assert request == (
        b"GET / HTTP/1.1\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Authorization: Bearer t0k\r\n"
        b"User-Agent: my-app/1\r\n"
        b"Host: chat.example\r\n"
        b"X-Dup: 1\r\n"
        b"X-Dup: 2\r\n"
        b"\r\n"
    )


def test_request_origin_from_extra_headers() -> None:
    assert b"\r\nOrigin: http://a\r\n" in handshake(extra_headers={"Origin": "http://a"}).request_bytes()


def test_random_key() -> None:
    first, second = ClientHandshake(parse_url("ws://h")), ClientHandshake(parse_url("ws://h"))
    assert first.key != second.key
    assert len(base64.b64decode(first.key, validate=True)) == 16
    assert b"\r\nSec-WebSocket-Key: " + first.key.encode() + b"\r\n" in first.request_bytes()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"extra_headers": {"Bad Name": "x"}}, "invalid header name 'Bad Name'"),
        ({"extra_headers": {"X:Y": "x"}}, "invalid header name 'X:Y'"),
        ({"extra_headers": {"": "x"}}, "invalid header name ''"),
        ({"extra_headers": {"X-A": "1\r\nX-Injected: 2"}}, "for header 'X-A'"),
        ({"extra_headers": {"X-A": "1\n"}}, "for header 'X-A'"),
        ({"extra_headers": {"X-A": "a\x00b"}}, "for header 'X-A'"),
        ({"extra_headers": [("X-A", 1)]}, "for header 'X-A'"),
        ({"extra_headers": {"X-A": "snowman ☃"}}, "header 'X-A' is not ISO-8859-1"),
        ({"extra_headers": {"Sec-WebSocket-Protocol": "chat"}}, "use the subprotocols argument"),
        ({"extra_headers": {"sec-websocket-key": KEY}}, "use the key argument"),
        ({"extra_headers": {"Upgrade": "websocket"}}, "'Upgrade' cannot be given"),
        ({"extra_headers": {"Origin": "http://b"}, "origin": "http://a"}, "'Origin' given both"),
        ({"origin": "http://a\r\n"}, "for header 'Origin'"),
        ({"subprotocols": ["chat", "bad proto"]}, "subprotocol 'bad proto' is not a token"),
        ({"subprotocols": [""]}, "subprotocol '' is not a token"),
        ({"extensions": ["permessage-deflate;"]}, "invalid Sec-WebSocket-Extensions"),
        ({"key": "short"}, "Sec-WebSocket-Key 'short' is not 16 bytes"),
        ({"key": "not base64 at all!!!!!!="}, "is not 16 bytes"),
    ],
)
def test_request_rejects(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        handshake(**kwargs)
    assert fragment in str(info.value)


def test_single_string_offers() -> None:
    hs = handshake(subprotocols="chat", extensions="permessage-deflate")
    assert b"\r\nSec-WebSocket-Protocol: chat\r\n" in hs.request_bytes()
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n" in hs.request_bytes()


# -- recorded 101 answers ----------------------------------------------------


def test_websockets_101() -> None:
    result = offering().receive_data(WEBSOCKETS_101)
    assert result is not None
    assert (result.status, result.reason) == (101, "Switching Protocols")
    assert result.subprotocol is None
    assert result.extensions == [
        ("permessage-deflate", [("server_max_window_bits", "12"), ("client_max_window_bits", "12")])
    ]
    assert result.headers.get("server") == "Python/3.11 websockets/12.0"
    assert result.leftover == b""


def test_nginx_101() -> None:
    result = offering().receive_data(NGINX_101)
    assert result is not None
    assert result.subprotocol == "chat"
    assert result.extensions == []
    assert result.headers.get("Connection") == "upgrade"


def test_autobahn_101_followed_by_frames() -> None:
    result = offering().receive_data(AUTOBAHN_101 + FRAMES)
    assert result is not None
    assert result.headers.get("server") == "AutobahnTestSuite/0.8.2-0.10.9"
    assert result.extensions == [("permessage-deflate", [])]
    assert result.leftover == FRAMES


@pytest.mark.parametrize("recorded", [WEBSOCKETS_101, NGINX_101, AUTOBAHN_101])
def test_one_byte_chunks(recorded: bytes) -> None:
    data = recorded + FRAMES
    hs = offering()
    result, rest = feed(hs, [data[i:i + 1] for i in range(len(data))])
    assert result == offering().receive_data(recorded)
    assert result.leftover == b"" and rest == FRAMES


@settings(max_examples=200, deadline=None)
@given(
    recorded=st.sampled_from([WEBSOCKETS_101, NGINX_101, AUTOBAHN_101]),
    cuts=st.lists(st.integers(min_value=0, max_value=len(AUTOBAHN_101 + FRAMES)), max_size=12),
)
def test_any_split_gives_same_result(recorded: bytes, cuts: list[int]) -> None:
    data = recorded + FRAMES
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    chunks = [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    result, rest = feed(offering(), chunks)
    expected = offering().receive_data(data)
    assert expected is not None
    assert (result.status, result.reason, result.headers.items(), result.subprotocol, result.extensions) == (
        expected.status, expected.reason, expected.headers.items(), expected.subprotocol, expected.extensions
    )
    assert result.leftover + rest == expected.leftover == FRAMES


@settings(max_examples=100, deadline=None)
@given(
    recorded=st.sampled_from([NGINX_401, WEBSOCKETS_404, NGINX_301, CHUNKED_403, CLOSE_DELIMITED_400]),
    cuts=st.lists(st.integers(min_value=0, max_value=len(NGINX_401)), max_size=12),
)
def test_any_split_gives_same_request_error(recorded: bytes, cuts: list[int]) -> None:
    bounds = [0, *sorted(min(cut, len(recorded)) for cut in cuts), len(recorded)]
    chunks = [recorded[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    eof = recorded is CLOSE_DELIMITED_400
    error = request_error(handshake(), chunks, eof)
    expected = request_error(handshake(), [recorded], eof)
    assert (error.status, error.reason, error.headers, error.body) == (
        expected.status, expected.reason, expected.headers, expected.body
    )


def test_missing_reason_phrase() -> None:
    for status_line in (b"HTTP/1.1 101", b"HTTP/1.1 101 "):
        result = handshake().receive_data(status_line + HEADER_LINES)
        assert result is not None
        assert (result.status, result.reason) == (101, "")


def test_tolerated_variants() -> None:
    data = response_101(
        b"upgrade:WebSocket",
        b"CONNECTION: keep-alive, Upgrade",
        b"sec-websocket-accept:   " + ACCEPT.encode() + b"  ",
        b"X-Empty:",
        b"X-Latin: caf\xe9",
    )
    result = handshake().receive_data(data.replace(b"\r\n", b"\n", 3))  # some bare LF line ends
    assert result is not None
    assert result.headers.get("X-Latin") == "café"
    assert result.headers.get("x-empty") == ""
    assert result.headers.get("Sec-WebSocket-Accept") == ACCEPT


def test_repeated_and_list_headers() -> None:
    data = response_101(
        b"Upgrade: websocket",
        b"Connection: keep-alive",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + ACCEPT.encode(),
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover",
        b"Sec-WebSocket-Extensions: x-foo",
        b"Set-Cookie: a=1",
        b"Set-Cookie: b=2",
    )
    hs = handshake(extensions=["permessage-deflate", "x-foo"])
    result = hs.receive_data(data)
    assert result is not None
    assert result.extensions == [("permessage-deflate", [("server_no_context_takeover", None)]), ("x-foo", [])]
    assert result.headers.get_all("set-cookie") == ["a=1", "b=2"]


# -- non-101 answers -----------------------------------------------------------


def test_401_with_body() -> None:
    error = request_error(handshake(), [NGINX_401])
    assert (error.status, error.code, error.reason) == (401, 401, "Unauthorized")
    assert ("WWW-Authenticate", 'Basic realm="chat"') in error.headers
    assert error.body == NGINX_401_BODY
    assert "401" in str(error) and "Unauthorized" in str(error)


def test_404() -> None:
    error = request_error(handshake(), [WEBSOCKETS_404])
    assert (error.status, error.reason, error.body) == (404, "Not Found", b"Not Found\n")


def test_301_redirect() -> None:
    error = request_error(handshake(), [NGINX_301])
    assert error.status == 301
    assert dict(error.headers)["Location"] == "wss://example.com/chat"
    assert error.body == NGINX_301_BODY


def test_non_101_waits_for_its_body() -> None:
    hs = handshake()
    head_end = NGINX_401.index(b"\r\n\r\n") + 4
    assert hs.receive_data(NGINX_401[:head_end]) is None
    assert hs.receive_data(NGINX_401[head_end:-1]) is None
    with pytest.raises(RequestError):
        hs.receive_data(NGINX_401[-1:])


def test_body_longer_than_max_body_is_truncated() -> None:
    body = b"x" * 1000
    data = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1000\r\n\r\n" + body
    error = request_error(handshake(max_body=100), [data[:200]])  # no need to wait for the rest
    assert error.body == body[:100]


def test_body_without_content_length_ends_at_eof() -> None:
    hs = handshake()
    error = request_error(hs, [CLOSE_DELIMITED_400], eof=True)
    assert (error.status, error.reason, error.body) == (400, "Bad Request", b"bad request\n")
    with pytest.raises(HandshakeError, match="already finished"):
        hs.receive_data(b"")


def test_body_without_content_length_stops_at_max_body() -> None:
    error = request_error(handshake(max_body=5), [CLOSE_DELIMITED_400])
    assert error.body == b"bad r"


def test_eof_before_full_content_length() -> None:
    error = request_error(handshake(), [NGINX_401[:-10]], eof=True)
    assert error.body == NGINX_401_BODY[:-10]


def test_chunked_body() -> None:
    error = request_error(handshake(), [CHUNKED_403])
    assert (error.status, error.body) == (403, b"Origin not allowed")
    error = request_error(handshake(max_body=3), [CHUNKED_403])
    assert error.body == b"Ori"
    # A malformed chunk size keeps what was decoded.
    error = request_error(handshake(), [CHUNKED_403.replace(b"b;ext=1", b"zz")])
    assert error.body == b"Origin "
    # Without the last chunk, EOF ends it.
    error = request_error(handshake(), [CHUNKED_403[:-7]], eof=True)
    assert error.body == b"Origin not allowed"


@pytest.mark.parametrize("status", [b"100 Continue", b"204 No Content", b"304 Not Modified"])
def test_statuses_without_body(status: bytes) -> None:
    error = request_error(handshake(), [b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n"])
    assert error.body == b""


def test_zero_content_length() -> None:
    error = request_error(handshake(), [b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"])
    assert (error.status, error.body) == (403, b"")


# -- rejected 101 answers ----------------------------------------------------


@pytest.mark.parametrize(
    "lines, fragment",
    [
        ((GOOD[1], GOOD[2]), "missing Upgrade header"),
        ((b"Upgrade: h2c", GOOD[1], GOOD[2]), "Upgrade header is 'h2c', expected 'websocket'"),
        ((b"Upgrade: websocketx", GOOD[1], GOOD[2]), "'websocketx'"),
        ((GOOD[0], GOOD[2]), "missing Connection header"),
        ((GOOD[0], b"Connection: keep-alive", GOOD[2]), "Connection header is 'keep-alive', expected 'upgrade'"),
        ((GOOD[0], GOOD[1]), f"missing Sec-WebSocket-Accept header, expected {ACCEPT!r}"),
        (
            (GOOD[0], GOOD[1], b"Sec-WebSocket-Accept: wrongwrongwrongwrongwrong="),
            f"Sec-WebSocket-Accept is 'wrongwrongwrongwrongwrong=', expected {ACCEPT!r}",
        ),
        ((*GOOD, GOOD[2]), f"Sec-WebSocket-Accept is '{ACCEPT}, {ACCEPT}'"),
        ((*GOOD, b"Sec-WebSocket-Protocol: chat, superchat"), "several subprotocols 'chat, superchat'"),
        ((*GOOD, b"Sec-WebSocket-Protocol: chat", b"Sec-WebSocket-Protocol: chat"), "several subprotocols"),
        (
            (*GOOD, b"Sec-WebSocket-Protocol: mqtt"),
            "subprotocol 'mqtt', which was not offered (offered: chat, superchat)",
        ),
        ((*GOOD, b"Sec-WebSocket-Protocol: CHAT"), "subprotocol 'CHAT', which was not offered"),
        (
            (*GOOD, b"Sec-WebSocket-Extensions: x-webkit-deflate-frame"),
            "extension 'x-webkit-deflate-frame', which was not offered (offered: permessage-deflate)",
        ),
        ((*GOOD, b"Sec-WebSocket-Extensions: permessage-deflate, x-foo"), "extension 'x-foo'"),
        (
            (*GOOD, b"Sec-WebSocket-Extensions: permessage-deflate; a b"),
            "invalid Sec-WebSocket-Extensions 'permessage-deflate; a b'",
        ),
        ((*GOOD, b" folded"), "obsolete line folding is not allowed: b' folded'"),
        ((*GOOD, b"\tfolded"), "obsolete line folding"),
        ((*GOOD, b"No-Colon"), "invalid header line b'No-Colon'"),
        ((*GOOD, b"Upgrade : websocket"), "invalid header line b'Upgrade : websocket'"),
        ((*GOOD, b": empty name"), "invalid header line"),
        ((*GOOD, b"X-A: a\rb"), "invalid character in header line b'X-A: a\\rb'"),
        ((*GOOD, b"X-A: a\x00b"), "invalid character in header line"),
    ],
)
def test_rejected_101(lines: tuple[bytes, ...], fragment: str) -> None:
    message = reject(response_101(*lines))
    assert fragment in message


def test_unoffered_subprotocol_when_none_offered() -> None:
    message = reject(response_101(*GOOD, b"Sec-WebSocket-Protocol: chat"), handshake())
    assert "subprotocol 'chat', which was not offered (offered: none)" in message
    message = reject(response_101(*GOOD, b"Sec-WebSocket-Extensions: permessage-deflate"), handshake())
    assert "(offered: none)" in message


def test_error_carries_response() -> None:
    with pytest.raises(HandshakeError) as info:
        offering().receive_data(response_101(GOOD[0], GOOD[1], b"Sec-WebSocket-Accept: nope") + FRAMES)
    response = info.value.response
    assert isinstance(response, HandshakeResponse)
    assert response.headers.get("sec-websocket-accept") == "nope"
    assert response.leftover == FRAMES


@pytest.mark.parametrize(
    "status_line, fragment",
    [
        (b"HTTP/1.1 abc Switching", "invalid HTTP status line b'HTTP/1.1 abc Switching'"),
        (b"HTTP/1.1 1010 Switching", "invalid HTTP status line"),
        (b"HTTP/2 101 Switching Protocols", "invalid HTTP status line"),
        (b"http/1.1 101 Switching Protocols", "invalid HTTP status line"),
        (b"SSH-2.0-OpenSSH_9.6", "invalid HTTP status line b'SSH-2.0-OpenSSH_9.6'"),
        (b"HTTP/1.1 101 Bad\x00Reason", "invalid HTTP status line"),
        (b"", "invalid HTTP status line b''"),
        (b"HTTP/1.0 101 Switching Protocols", "101 response uses HTTP/1.0, expected HTTP/1.1"),
    ],
)
def test_rejected_status_line(status_line: bytes, fragment: str) -> None:
    data = status_line + HEADER_LINES
    assert fragment in reject(data)


def test_http_1_0_error_status_is_a_request_error() -> None:
    error = request_error(handshake(), [b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"])
    assert (error.status, error.reason, error.body) == (503, "Service Unavailable", b"busy")


# -- limits --------------------------------------------------------------------


def test_line_too_long() -> None:
    long_line = b"X-Long: " + b"a" * 100
    hs = handshake(max_line=100)
    message = reject(response_101(*GOOD, long_line), hs)
    assert "longer than max_line=100" in message and "X-Long" in message
    # Exactly max_line bytes is fine, CRLF not counted.
    line = b"X-Long: " + b"a" * 92
    assert handshake(max_line=100).receive_data(response_101(*GOOD, line)) is not None
    assert handshake(max_line=100).receive_data(response_101(*GOOD, line).replace(b"\r\n", b"\n")) is not None


def test_unterminated_line_too_long_fails_early() -> None:
    hs = handshake(max_line=100)
    assert hs.receive_data(b"HTTP/1.1 101 OK\r\nX-Endless: ") is None
    with pytest.raises(HandshakeError, match="max_line=100"):
        for _ in range(100):
            hs.receive_data(b"a")
    with pytest.raises(HandshakeError, match="max_line=100"):
        handshake(max_line=100).receive_data(b"H" * 102)


def test_too_many_headers() -> None:
    extra = [b"X-H%d: v" % i for i in range(7)]
    assert handshake(max_headers=10).receive_data(response_101(*GOOD, *extra)) is not None
    message = reject(response_101(*GOOD, *extra, b"X-One-More: v"), handshake(max_headers=10))
    assert "more than max_headers=10 header lines" in message


class _CountingBuffer(bytearray):
    """A bytearray that counts how many bytes ``find`` looks at."""

    scanned = 0

    def find(self, sub, start=0, *args):  # type: ignore[no-untyped-def,override]
        _CountingBuffer.scanned += len(self) - start
        return super().find(sub, start, *args)


def test_large_input_in_small_chunks_is_linear() -> None:
    value = b"v" * 200_000
    data = response_101(*GOOD, b"X-Big: " + value, *(b"X-H%d: v" % i for i in range(100))) + FRAMES
    hs = handshake(max_line=400_000, max_headers=200)
    hs._head.rest = _CountingBuffer()  # white box: every search for a line end goes through it
    _CountingBuffer.scanned = 0
    result, rest = feed(hs, [data[i:i + 7] for i in range(0, len(data), 7)])
    assert _CountingBuffer.scanned > len(data) // 2  # the head's buffer was the one searched
    assert _CountingBuffer.scanned <= 2 * len(data)  # rescanning would be ~ len(data) ** 2 / 14
    assert len(result.headers.get("x-big") or "") == len(value)
    assert result.leftover + rest == FRAMES


# -- lifecycle -----------------------------------------------------------------


def test_finished_after_result() -> None:
    hs = offering()
    assert hs.receive_data(NGINX_101) is not None
    with pytest.raises(HandshakeError, match="handshake already finished"):
        hs.receive_data(FRAMES)
    with pytest.raises(HandshakeError, match="handshake already finished"):
        hs.receive_eof()


@pytest.mark.parametrize("data", [response_101(GOOD[0]), NGINX_401, b"garbage\r\n"])
def test_finished_after_error(data: bytes) -> None:
    hs = handshake()
    with pytest.raises(HandshakeError):
        hs.receive_data(data)
    with pytest.raises(HandshakeError, match="handshake already finished"):
        hs.receive_data(b"more")


def test_eof_before_response() -> None:
    hs = handshake()
    with pytest.raises(HandshakeError, match="before any response"):
        hs.receive_eof()
    with pytest.raises(HandshakeError, match="handshake already finished"):
        hs.receive_data(b"HTTP/1.1")


def test_eof_during_head() -> None:
    hs = handshake()
    assert hs.receive_data(NGINX_101[:40]) is None
    with pytest.raises(HandshakeError) as info:
        hs.receive_eof()
    assert not isinstance(info.value, RequestError)
    assert "after 40 bytes" in str(info.value) and "HTTP/1.1 101" in str(info.value)


# -- cross-check with the websockets package -----------------------------------


def _websockets_answer(request: bytes, **server_kwargs: object) -> bytes:
    server = pytest.importorskip("websockets.server")
    protocol = server.ServerProtocol(**server_kwargs)
    protocol.receive_data(request)
    (parsed,) = protocol.events_received()
    protocol.send_response(protocol.accept(parsed))
    return b"".join(protocol.data_to_send())


def test_websockets_accepts_our_request() -> None:
    pytest.importorskip("websockets")
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    hs = ClientHandshake(
        parse_url("ws://user:pw@[::1]:8080/chat?room=1"),
        origin="http://localhost",
        subprotocols=["chat", "superchat"],
        extensions=["permessage-deflate; client_max_window_bits"],
        extra_headers={"X-Token": "abc"},
    )
    answer = _websockets_answer(
        hs.request_bytes(),
        subprotocols=["superchat"],
        extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=12)],
    )
    assert answer.startswith(b"HTTP/1.1 101 ")
    result = hs.receive_data(answer + FRAMES)
    assert result is not None
    assert result.subprotocol == "superchat"
    assert result.extensions == [
        ("permessage-deflate", [("server_max_window_bits", "12"), ("client_max_window_bits", "12")])
    ]
    assert result.leftover == FRAMES


def test_websockets_plain_answer_in_one_byte_chunks() -> None:
    hs = ClientHandshake(parse_url("wss://example.com/"))
    answer = _websockets_answer(hs.request_bytes())
    result, rest = feed(hs, [answer[i:i + 1] for i in range(len(answer))])
    assert (result.status, result.subprotocol, result.extensions, rest) == (101, None, [], b"")


def test_websockets_rejection_is_a_request_error() -> None:
    server = pytest.importorskip("websockets.server")
    hs = handshake()
    protocol = server.ServerProtocol()
    protocol.receive_data(hs.request_bytes())
    protocol.events_received()
    protocol.send_response(protocol.reject(403, "Origin not allowed\n"))
    error = request_error(hs, [b"".join(protocol.data_to_send())])
    assert (error.status, error.reason, error.body) == (403, "Forbidden", b"Origin not allowed\n")
