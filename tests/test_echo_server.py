"""wsx.tools.echo_server.EchoServer against independent peers: the websockets sync client and raw sockets."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import wsx
import wsx.testing
from conftest import wait_until
from wsx.core.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    FrameParser,
    encode_frame,
    parse_close,
)
from wsx.tools.echo_server import EchoServer


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as srv:
        yield srv


# ------------------------------------------------------------- raw client peer
class RawClient:
    """A hand-driven client: sends exactly the bytes given, parses the server's frames."""

    def __init__(self, port: int, request: bytes | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.parser = FrameParser(max_frame_size=None, max_message_size=None)
        self.frames: list[Frame] = []
        self.buf = b""
        if request is None:
            request = (
                b"GET /raw?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
        self.sock.sendall(request)

    def response_head(self) -> str:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed before the end of the response: {self.buf!r}"
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest
        if rest and head.startswith(b"HTTP/1.1 101 "):
            self.buf = b""
            self.frames += self.parser.feed(rest)
        return head.decode("latin-1")

    def send(self, opcode: int, payload: bytes = b"", fin: bool = True, masked: bool = True,
             rsv: int = 0) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, masked=masked, rsv=rsv))

    def frame(self) -> Frame:
        while not self.frames:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed while waiting for a frame"
            self.frames += self.parser.feed(chunk)
        return self.frames.pop(0)

    def rest(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        data = self.buf
        while chunk := self.sock.recv(65536):
            data += chunk
        self.buf = b""
        return data

    def eof(self) -> bool:
        """True when the server closes the connection (nothing more arrives)."""
        return self.sock.recv(65536) == b""

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server: EchoServer) -> Iterator[RawClient]:
    client = RawClient(server.port)
    yield client
    client.close()


# ---------------------------------------------------------------------- tests
def test_url_and_port_after_start() -> None:
    srv = EchoServer()
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.url
    assert srv.port == 0 and not srv.running
    with srv:
        assert srv.running
        assert srv.port > 0
        assert srv.url == f"ws://127.0.0.1:{srv.port}/"
        assert repr(srv) == f"<EchoServer 127.0.0.1:{srv.port}>"
        with pytest.raises(RuntimeError, match="already started"):
            srv.start()
    assert not srv.running
    srv.stop()  # a second stop is harmless


@pytest.mark.parametrize("port", [-1, 65536, "80", True])
def test_bad_port_is_named(port: object) -> None:
    with pytest.raises(ValueError, match=f"not {port!r}"):
        EchoServer(port=port)  # type: ignore[arg-type]


def test_bad_max_message_size_is_named() -> None:
    with pytest.raises(ValueError, match="not 0"):
        EchoServer(max_message_size=0)


def test_port_in_use_names_the_address(server: EchoServer) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        EchoServer(port=server.port).start()


def test_text_and_binary_round_trip(server: EchoServer) -> None:
    with connect(server.url) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xff"
        ws.send("")
        assert ws.recv(timeout=5) == ""
        ws.send("h\u00e9llo \U0001f600")
        assert ws.recv(timeout=5) == "h\u00e9llo \U0001f600"
    wait_until(lambda: server.closes, what="the server recorded the close")
    assert server.connections == 1
    assert server.messages == 4
    assert list(server.closes) == [(1000, "")]


def test_extensions_are_declined(server: EchoServer) -> None:
    # The websockets client offers permessage-deflate by default.
    with connect(server.url) as ws:
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        ws.send("x" * 10000)
        assert ws.recv(timeout=5) == "x" * 10000


def test_fragmented_messages_are_reassembled(server: EchoServer) -> None:
    with connect(server.url) as ws:
        ws.send(["frag", "mented ", "text"])
        assert ws.recv(timeout=5) == "fragmented text"
        ws.send([b"ab", b"", b"cd"])
        assert ws.recv(timeout=5) == b"abcd"
    assert server.messages == 2


def test_fragments_come_back_as_one_frame_with_pings_in_between(raw: RawClient) -> None:
    raw.response_head()
    raw.send(OP_TEXT, b"one ", fin=False)
    raw.send(OP_PING, b"mid")  # control frames may be interleaved
    raw.send(OP_CONTINUATION, b"two ", fin=False)
    raw.send(OP_CONTINUATION, b"three", fin=True)
    assert raw.frame() == Frame(OP_PONG, True, 0, b"mid")
    assert raw.frame() == Frame(OP_TEXT, True, 0, b"one two three")


def test_accept_key_and_resource(server: EchoServer, raw: RawClient) -> None:
    head = raw.response_head()
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    # The example of RFC 6455 section 1.3.
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    assert "Upgrade: websocket" in lines and "Connection: Upgrade" in lines
    assert not any(line.lower().startswith("sec-websocket-protocol") for line in lines)
    target, headers = server.requests[-1]
    assert target == "/raw?x=1"
    assert headers.get("Host") == "127.0.0.1"


def test_ping_is_answered_with_the_same_payload(server: EchoServer) -> None:
    with connect(server.url) as ws:
        assert ws.ping(b"payload").wait(5)
        assert ws.ping(b"").wait(5)


def test_ping_pong_on_the_wire(raw: RawClient) -> None:
    raw.response_head()
    raw.send(OP_PING, b"x" * 125)
    assert raw.frame() == Frame(OP_PONG, True, 0, b"x" * 125)
    raw.send(OP_PONG, b"unsolicited")  # ignored
    raw.send(OP_BINARY, b"after")
    assert raw.frame() == Frame(OP_BINARY, True, 0, b"after")


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "going"), (4000, "bye"),
                                              (3999, "r\u00e9ason")])
def test_close_code_and_reason_are_echoed(server: EchoServer, code: int, reason: str) -> None:
    with connect(server.url) as ws:
        ws.send("last")
        assert ws.recv(timeout=5) == "last"
        ws.close(code, reason)
    assert ws.protocol.close_rcvd is not None
    assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (code, reason)
    wait_until(lambda: server.closes, what="the server recorded the close")
    assert list(server.closes) == [(code, reason)]


def test_empty_close_is_answered_with_an_empty_close_then_tcp_close(raw: RawClient) -> None:
    raw.response_head()
    raw.send(OP_CLOSE, b"")
    assert raw.frame() == Frame(OP_CLOSE, True, 0, b"")
    assert raw.eof()  # the server closes TCP first


def test_one_mebibyte_message(server: EchoServer) -> None:
    big = bytes(range(256)) * 4096
    assert len(big) == 1 << 20
    text = "\u00e9" * (1 << 19)  # 1 MiB of UTF-8
    with connect(server.url, max_size=None) as ws:
        ws.send(big)
        assert ws.recv(timeout=20) == big
        ws.send(text)
        assert ws.recv(timeout=20) == text


def test_many_clients_at_once(server: EchoServer) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(40)

    def client(n: int) -> None:
        try:
            with connect(server.url, open_timeout=20) as ws:
                start.wait(20)
                for i in range(10):
                    ws.send(f"{n}:{i}")
                for i in range(10):
                    assert ws.recv(timeout=20) == f"{n}:{i}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert server.connections == 40
    assert server.messages == 400


def test_plain_http_request_gets_426(server: EchoServer) -> None:
    # The core's server handshake: a request without Upgrade: websocket is
    # answered 426 Upgrade Required, naming the upgrade it needs.
    client = RawClient(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        head = client.response_head()
        assert head.startswith("HTTP/1.1 426 Upgrade Required\r\n")
        assert "Content-Type: text/plain; charset=utf-8" in head.split("\r\n")
        assert "Upgrade: websocket" in head.split("\r\n")
        body = client.rest()
        assert body.startswith(b"this is a WebSocket endpoint: the request has no 'Upgrade: ")
    finally:
        client.close()
    assert server.connections == 0


def test_non_get_gets_405(server: EchoServer) -> None:
    client = RawClient(server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    try:
        head = client.response_head()
        assert head.startswith("HTTP/1.1 405 Method Not Allowed\r\n")
        assert "Allow: GET" in head.split("\r\n")
        assert client.rest().startswith(b"method POST is not allowed")
    finally:
        client.close()


def test_wrong_version_gets_426_naming_it(server: EchoServer) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    )
    client = RawClient(server.port, request)
    try:
        head = client.response_head()
        assert head.startswith("HTTP/1.1 426 Upgrade Required\r\n")
        assert "Sec-WebSocket-Version: 13" in head.split("\r\n")
        assert b"Sec-WebSocket-Version is '8'" in client.rest()
    finally:
        client.close()


def test_bad_key_gets_400(server: EchoServer) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    client = RawClient(server.port, request)
    try:
        assert client.response_head().startswith("HTTP/1.1 400 ")
        assert b"Sec-WebSocket-Key 'short'" in client.rest()
    finally:
        client.close()


def test_no_common_subprotocol_selects_none() -> None:
    # RFC 6455 lets the server accept the connection without selecting one.
    with EchoServer(subprotocols=["chat"]) as srv:
        with connect(srv.url) as ws:
            assert ws.subprotocol is None
            ws.send("x")
            assert ws.recv(timeout=5) == "x"


def test_subprotocol_selection_follows_the_client_order() -> None:
    with EchoServer(subprotocols=["chat", "superchat"]) as srv:
        with connect(srv.url, subprotocols=["v2", "superchat", "chat"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "superchat"
            assert ws.response.headers["Sec-WebSocket-Protocol"] == "superchat"


@pytest.mark.parametrize(
    ("frames", "code", "words"),
    [
        ([(OP_TEXT, b"x", True, False, 0)], 1002, "unmasked"),
        ([(OP_TEXT, b"x", True, True, 0x40)], 1002, "reserved bits"),
        ([(OP_CONTINUATION, b"x", True, True, 0)], 1002, "no message in progress"),
        ([(OP_TEXT, b"a", False, True, 0), (OP_BINARY, b"b", True, True, 0)], 1002,
         "inside a fragmented message"),
        ([(0x3, b"", True, True, 0)], 1002, "reserved data opcode"),
        ([(OP_TEXT, b"\xff\xfe", True, True, 0)], 1007, "UTF-8"),
        ([(OP_TEXT, b"caf\xc3", False, True, 0), (OP_CONTINUATION, b"", True, True, 0)], 1007,
         "UTF-8"),
        ([(OP_CLOSE, b"\x03\xe8\xff", True, True, 0)], 1007, "UTF-8"),
        ([(OP_CLOSE, b"\x03", True, True, 0)], 1002, "1-byte"),
        ([(OP_CLOSE, b"\x03\xed", True, True, 0)], 1002,
         "invalid close code 1005"),
    ],
)
def test_protocol_violations_fail_the_connection(
    raw: RawClient, frames: list[tuple[int, bytes, bool, bool, int]], code: int, words: str
) -> None:
    raw.response_head()
    for opcode, payload, fin, masked, rsv in frames:
        raw.send(opcode, payload, fin=fin, masked=masked, rsv=rsv)
    frame = raw.frame()
    assert frame.opcode == OP_CLOSE
    got_code, reason = parse_close(frame.payload)
    assert got_code == code
    assert words in reason
    assert raw.eof()


def test_message_too_big_is_1009() -> None:
    with EchoServer(max_message_size=1000) as srv:
        with connect(srv.url) as ws:
            ws.send("x" * 1000)
            assert ws.recv(timeout=5) == "x" * 1000
            with pytest.raises(ConnectionClosed) as info:
                # The close may arrive while the second fragment is being sent.
                ws.send(["x" * 600, "x" * 600])
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            assert "exceeds the limit of 1000" in info.value.rcvd.reason


def test_tcp_drop_without_close_frame_is_harmless(server: EchoServer) -> None:
    client = RawClient(server.port)
    client.response_head()
    client.send(OP_TEXT, b"half", fin=False)
    client.close()
    with connect(server.url) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=5) == "still serving"


def test_stop_closes_open_connections_with_1001() -> None:
    srv = EchoServer().start()
    with connect(srv.url) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        srv.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "server shutting down")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_wsx_client_round_trip(server: EchoServer) -> None:
    received: list[object] = []

    class Client(wsx.WebSocket):
        def handle_frame(self, frame: object, state: object) -> object:
            received.append(frame)
            return ("ok", state)

        def handle_pong(self, frame: object, state: object) -> object:
            received.append(frame)
            return ("ok", state)

    client = wsx.start(server.url, Client, None)
    try:
        assert client.conn.extensions == []  # permessage-deflate offered, declined
        wsx.send_frame(client, ("text", "hi"))
        wsx.send_frame(client, ("fragment", "binary", b"a"))
        wsx.send_frame(client, ("continuation", b"b"))
        wsx.send_frame(client, ("finish", b"c"))
        wsx.send_frame(client, ("ping", b"p"))
        wait_until(lambda: len(received) == 3, what=f"3 frames back, got {received}")
        assert received == [("text", "hi"), ("binary", b"abc"), ("pong", b"p")]
    finally:
        assert wsx.stop(client)
    assert client.exit_reason == "normal"
    wait_until(lambda: server.closes, what="the server recorded the close")
    assert list(server.closes) == [(1000, "")]


def test_every_path_is_served(server: EchoServer) -> None:
    with connect(server.url + "any/path?q=1") as ws:
        ws.send("p")
        assert ws.recv(timeout=5) == "p"
    assert server.requests[-1][0] == "/any/path?q=1"



def test_stop_does_not_wait_longer_than_its_timeout_for_silent_clients() -> None:
    srv = EchoServer().start()
    silent = RawClient(srv.port)  # never answers the close frame
    try:
        silent.response_head()
        wait_until(lambda: srv.connections == 1)
        started = time.monotonic()
        srv.stop(timeout=0.5)
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 3, elapsed
        assert not srv.running
        frame = silent.frame()
        assert frame.opcode == OP_CLOSE
        assert parse_close(frame.payload) == (1001, "server shutting down")
    finally:
        silent.close()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = EchoServer("::1").start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    with srv:
        assert srv.url == f"ws://[::1]:{srv.port}/"
        with connect(srv.url) as ws:
            ws.send("six")
            assert ws.recv(timeout=5) == "six"


def test_data_after_the_close_frame_does_not_reset_the_connection(raw: RawClient) -> None:
    raw.response_head()
    # The close frame, then bytes the server will never use. It must shut its
    # write side and read and discard them until the client closes: closing its
    # socket with unread data would send a reset, which on some systems destroys
    # the close frame before the client reads it.
    raw.sock.sendall(encode_frame(OP_CLOSE, b"\x03\xe8") + encode_frame(OP_BINARY, b"x" * 100000))
    assert raw.frame() == Frame(OP_CLOSE, True, 0, b"\x03\xe8")
    assert raw.eof()  # FIN from the server
    for _ in range(3):  # still read (and discarded): no reset
        raw.sock.sendall(b"late" * 10000)
        time.sleep(0.05)


def test_log_receives_one_line_per_connection_event() -> None:
    lines: list[str] = []
    with EchoServer(log=lines.append) as srv:
        with connect(srv.url + "chat?room=1") as ws:
            ws.send("x")
            ws.recv(timeout=5)
            ws.close(4000, "done")
        plain = RawClient(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        plain.rest()
        plain.close()
        dropped = RawClient(srv.port)
        dropped.response_head()
        dropped.close()
        wait_until(lambda: len(lines) == 5, what=f"5 log lines, got {lines}")
    peer = r"127\.0\.0\.1:\d+"
    assert re.fullmatch(rf"{peer}: connected \(/chat\?room=1\)", lines[0])
    assert re.fullmatch(rf"{peer}: closed \(4000 'done'\)", lines[1])
    assert re.fullmatch(rf"{peer}: refused with 426: this is a WebSocket endpoint: .*", lines[2])
    assert re.fullmatch(rf"{peer}: connected \(/raw\?x=1\)", lines[3])
    assert re.fullmatch(rf"{peer}: disconnected without a close frame", lines[4])


def test_a_failing_log_does_not_stop_the_server() -> None:
    def log(line: str) -> None:
        raise RuntimeError(line)

    with EchoServer(log=log) as srv:
        with connect(srv.url) as ws:
            ws.send("still echoed")
            assert ws.recv(timeout=5) == "still echoed"


def test_frames_sent_with_the_request_are_echoed(server: EchoServer) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    client = RawClient(server.port, request + encode_frame(OP_TEXT, b"eager"))
    try:
        assert client.response_head().startswith("HTTP/1.1 101 ")
        assert client.frame() == Frame(OP_TEXT, True, 0, b"eager")
    finally:
        client.close()


def test_oversized_request_head_gets_431(server: EchoServer) -> None:
    client = RawClient(server.port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000)
    try:
        assert client.response_head().startswith("HTTP/1.1 431 Request Header Fields Too Large")
        assert client.rest().startswith(b"request header line longer than max_line=8192 bytes")
    finally:
        client.close()


class _Host:
    """What an EchoConnection needs of its server, recording the messages it echoes."""

    subprotocols: tuple[str, ...] = ()
    max_message_size: int | None = 1 << 20

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []

    def _record_request(self, target: str, headers: object) -> None:
        pass

    def _record_close(self, code: int | None, reason: str) -> None:
        pass

    def _record_message(self, opcode: int, message: bytes) -> None:
        self.messages.append((opcode, message))

    def _log(self, line: str) -> None:
        pass


def test_frames_that_arrive_together_are_each_echoed_as_sent() -> None:
    # Two whole text frames and the start of a third in one read: the check
    # of the third's partial text must not leak into the second.
    from wsx.core.handshake import ClientHandshake
    from wsx.core.url import parse_url
    from wsx.tools.echo_conn import EchoConnection

    host = _Host()
    a, b = socket.socketpair()
    try:
        conn = EchoConnection(host, a, "peer")
        big = ("é" * 3000).encode()
        third = encode_frame(OP_TEXT, big)
        request = ClientHandshake(parse_url("ws://x.test/")).request_bytes()
        conn.receive(request + encode_frame(OP_TEXT, b"first") + encode_frame(OP_TEXT, b"second")
                     + third[:300])
        conn.receive(third[300:])
        assert host.messages == [(OP_TEXT, b"first"), (OP_TEXT, b"second"), (OP_TEXT, big)]
        assert not conn.closing
    finally:
        a.close()
        b.close()


def test_a_subprotocol_that_is_not_a_token_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="'bad proto' is not a token"):
        EchoServer(subprotocols=["bad proto"])
    with pytest.raises(ValueError, match="'bad proto' is not a token"):
        wsx.testing.Server(subprotocols=["bad proto"])
