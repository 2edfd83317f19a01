"""Tests for wsx.core.url."""

from __future__ import annotations

import dataclasses

import pytest

from wsx.core.url import WSURL, parse_url
from wsx.errors import URLError


@pytest.mark.parametrize(
    "url, scheme, host, port, resource",
    [
        ("ws://example.com", "ws", "example.com", 80, "/"),
        ("wss://example.com", "wss", "example.com", 443, "/"),
        ("ws://example.com/", "ws", "example.com", 80, "/"),
        ("WS://Example.COM:8080/Chat", "ws", "example.com", 8080, "/Chat"),
        ("wss://example.com:443/a/b?x=1&y=%20", "wss", "example.com", 443, "/a/b?x=1&y=%20"),
        ("ws://example.com?q=1", "ws", "example.com", 80, "/?q=1"),
        ("ws://example.com/p?", "ws", "example.com", 80, "/p?"),
        ("ws://example.com/p#frag", "ws", "example.com", 80, "/p"),
        ("ws://example.com/p?q=1#frag?x", "ws", "example.com", 80, "/p?q=1"),
        ("ws://example.com#frag", "ws", "example.com", 80, "/"),
        ("ws://example.com:/p", "ws", "example.com", 80, "/p"),
        ("ws://127.0.0.1:9001/runCase?case=1&agent=wsx", "ws", "127.0.0.1", 9001, "/runCase?case=1&agent=wsx"),
        ("ws://[::1]:8080/", "ws", "::1", 8080, "/"),
        ("wss://[2001:DB8::1]/x", "wss", "2001:db8::1", 443, "/x"),
        ("ws://[::ffff:192.0.2.1]", "ws", "::ffff:192.0.2.1", 80, "/"),
        ("ws://my_host.local:65535", "ws", "my_host.local", 65535, "/"),
        ("ws://h/a%2Fb/../c;p=1", "ws", "h", 80, "/a%2Fb/../c;p=1"),
    ],
)
def test_parse(url: str, scheme: str, host: str, port: int, resource: str) -> None:
    parsed = parse_url(url)
    assert parsed.url == url
    assert (parsed.scheme, parsed.host, parsed.port, parsed.resource) == (scheme, host, port, resource)
    assert parsed.user is None and parsed.password is None
    assert parsed.secure == (scheme == "wss")


@pytest.mark.parametrize(
    "url, host_header",
    [
        ("ws://example.com", "example.com"),
        ("ws://example.com:80", "example.com"),
        ("ws://example.com:443", "example.com:443"),
        ("wss://example.com:443", "example.com"),
        ("wss://example.com:80", "example.com:80"),
        ("ws://[::1]", "[::1]"),
        ("ws://[::1]:8080", "[::1]:8080"),
        ("wss://[fe80::1]:443", "[fe80::1]"),
    ],
)
def test_host_header(url: str, host_header: str) -> None:
    parsed = parse_url(url)
    assert parsed.host_header == host_header
    assert parsed.authority == host_header


def test_str_is_normalised_and_hides_credentials() -> None:
    parsed = parse_url("WSS://user:secret@Example.com:443/p?q#f")
    assert str(parsed) == "wss://example.com/p?q"
    assert "secret" not in repr(parsed)
    assert "secret" not in str(parsed)
    assert str(parse_url("ws://[::1]:8080")) == "ws://[::1]:8080/"


def test_userinfo() -> None:
    parsed = parse_url("ws://us%3Aer:p%40ss%20word@example.com/")
    assert parsed.user == "us:er"
    assert parsed.password == "p@ss word"
    assert parsed.host == "example.com"

    parsed = parse_url("ws://alice@example.com/")
    assert (parsed.user, parsed.password) == ("alice", None)

    parsed = parse_url("ws://alice:@example.com/")
    assert (parsed.user, parsed.password) == ("alice", "")

    # An unencoded "@" in the password: the last "@" ends the userinfo.
    parsed = parse_url("ws://alice:p@ss@example.com:81/")
    assert (parsed.user, parsed.password, parsed.host, parsed.port) == ("alice", "p@ss", "example.com", 81)

    parsed = parse_url("ws://@example.com/")
    assert (parsed.user, parsed.password) == (None, None)


def test_non_ascii() -> None:
    parsed = parse_url("wss://Bücher.example/päth?q=ü")
    assert parsed.host == "xn--bcher-kva.example"
    assert parsed.resource == "/p%C3%A4th?q=%C3%BC"
    assert parsed.host_header == "xn--bcher-kva.example"
    # Existing escapes and ASCII characters are kept as given.
    assert parse_url("ws://h/%7e~é").resource == "/%7e~%C3%A9"


def test_wsurl_is_returned_unchanged() -> None:
    parsed = parse_url("ws://example.com")
    assert parse_url(parsed) is parsed


def test_frozen() -> None:
    parsed = parse_url("ws://example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.port = 1  # type: ignore[misc]
    assert parsed == parse_url("ws://example.com")
    assert isinstance(parsed, WSURL)


@pytest.mark.parametrize(
    "url, fragment",
    [
        (b"ws://example.com", "expected a str, got bytes"),
        (None, "expected a str, got NoneType"),
        ("http://example.com", "'http'"),
        ("https://example.com", "'https'"),
        ("ftp://example.com", "'ftp'"),
        ("example.com/chat", "missing scheme"),
        ("//example.com/chat", "missing scheme"),
        ("ws:example.com", "expected '//' after 'ws:'"),
        ("ws://", "missing host"),
        ("ws:///path", "missing host"),
        ("ws://user@/path", "missing host"),
        ("ws://:80/path", "missing host"),
        ("ws://example.com:abc", "port 'abc' is not a number"),
        ("ws://example.com:+80", "port '+80' is not a number"),
        ("ws://example.com:-1", "port '-1' is not a number"),
        ("ws://example.com:٨٠", "is not a number"),
        ("ws://example.com:0", "port 0 is out of range 1..65535"),
        ("ws://example.com:65536", "port 65536 is out of range"),
        ("ws://example.com:99999999999", "out of range"),
        ("ws://[::1", "unterminated IPv6 literal '[::1'"),
        ("ws://[:::1]/", "invalid IPv6 literal [:::1]"),
        ("ws://[]/", "invalid IPv6 literal []"),
        ("ws://[127.0.0.1]/", "invalid IPv6 literal [127.0.0.1]"),
        ("ws://[::1]x/", "unexpected 'x' after IPv6 literal"),
        ("ws://[::1]:abc/", "port 'abc' is not a number"),
        ("ws://[fe80::1%25eth0]/", "zone identifiers"),
        ("ws://::1/", "must be enclosed in brackets"),
        ("ws://exa mple.com/", "whitespace or control character ' ' at index 8"),
        ("ws://example.com/a b", "' '"),
        (" ws://example.com/", "at index 0"),
        ("ws://example.com/\r\nX: y", "'\\r'"),
        ("ws://example.com/\x00", "'\\x00'"),
        ("ws://example.com/\x7f", "'\\x7f'"),
        ("ws://example.com/\t", "'\\t'"),
        ("ws://example.com/\u00a0", "'\\xa0'"),
        ("ws://exa%6dple.com/", "invalid character '%' in host"),
        ("ws://exam!ple.com/", "invalid character '!' in host"),
        ("ws://ä..b/", "cannot IDNA-encode host"),
        ("ws://h/\ud800", "cannot encode resource"),
    ],
)
def test_rejected(url: object, fragment: str) -> None:
    with pytest.raises(URLError) as info:
        parse_url(url)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert info.value.url == url
    assert isinstance(info.value, ValueError)


def test_http_scheme_message() -> None:
    with pytest.raises(URLError) as info:
        parse_url("https://example.com/socket")
    message = str(info.value)
    assert "'https'" in message
    assert "ws://" in message and "wss://" in message
    assert "http" in message and "not" in message
