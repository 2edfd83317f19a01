"""The ``wsx`` command, run as a real subprocess (``python -m wsx``) against real servers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

import wsx
from conftest import RawServer, WSServer, read_request, wait_until
from wsx.tools.echo_server import EchoServer

ROOT = Path(__file__).resolve().parent.parent


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    out["PYTHONIOENCODING"] = "utf-8"
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "no_proxy", "NO_PROXY"):
        out.pop(name, None)  # the tests talk to 127.0.0.1 directly
    out.update(extra)
    return out


def run_cli(*args: str, stdin: str | bytes = "", timeout: float = 30,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [sys.executable, "-m", "wsx", *args], input=data, capture_output=True,
        timeout=timeout, env=env(**(extra_env or {})), cwd=ROOT, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode("utf-8"),
                                       result.stderr.decode("utf-8"))


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def embedded() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


def recording_server(ws_server: Callable[..., WSServer], **kwargs: Any) -> tuple[WSServer, dict[str, Any]]:
    """A websockets echo server recording the request, subprotocol and the client's close."""
    seen: dict[str, Any] = {}

    async def handler(ws: Any) -> None:
        seen["headers"] = ws.request.headers
        seen["subprotocol"] = ws.subprotocol
        async for msg in ws:
            await ws.send(msg)
        seen["close"] = (ws.close_code, ws.close_reason)

    return ws_server(handler, **kwargs), seen


# -------------------------------------------------------------- round trips
def test_piped_stdin_round_trip_and_clean_close(ws_server: Callable[..., WSServer]) -> None:
    server, seen = recording_server(ws_server)
    result = run_cli(server.url, stdin="hello\nworld\n\nh\u00e9llo \u2603\nno newline")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "< text: hello", "< text: world", "< text: ", "< text: h\u00e9llo \u2603",
        "< text: no newline"]
    assert result.stderr == ""  # not a terminal, no --verbose: nothing but the frames
    wait_until(lambda: "close" in seen, what="the server saw the close")
    assert seen["close"] == (1000, "")


def test_round_trip_with_the_embedded_server_class(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, "-v", stdin="one\r\ntwo\r\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< text: one", "< text: two"]
    assert f"wsx: connected to {embedded.url}\n" in result.stderr
    assert "wsx: connection closed" in result.stderr
    wait_until(lambda: embedded.closes, what="the server saw the close")
    assert list(embedded.closes) == [(1000, "")]
    assert embedded.messages == 2


def test_no_url_starts_the_embedded_echo_server() -> None:
    result = run_cli(stdin="hi\n")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: hi\n"
    assert re.search(r"started the embedded echo server on ws://127\.0\.0\.1:\d+/", result.stderr)


def test_no_url_and_empty_stdin_closes_cleanly() -> None:
    result = run_cli(stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_binary_lines(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, "--binary", stdin=b"ab\n\xff\x00\n" + b"z" * 100 + b"\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "< binary: 2 bytes: b'ab'",
        "< binary: 2 bytes: b'\\xff\\x00'",
        "< binary: 100 bytes: b'" + "z" * 64 + "'...",
    ]


def test_long_line_is_one_message(embedded: EchoServer) -> None:
    line = "0123456789abcdef" * (256 * 1024)  # 4 MiB, read from stdin in many pieces
    result = run_cli(embedded.url, stdin=line + "\nshort\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"< text: {line}\n< text: short\n"


def test_invalid_utf8_input_is_sent_with_replacement_characters(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, stdin=b"caf\xe9\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: caf\ufffd\n"


# ------------------------------------------------------------ request options
def test_headers_subprotocol_and_origin_reach_the_server(ws_server: Callable[..., WSServer]) -> None:
    server, seen = recording_server(ws_server, subprotocols=["chat"])
    result = run_cli(server.url, "-H", "Authorization: Bearer T0K3N", "-H", "X-Trace:  1 ",
                     "--subprotocol", "v2", "--subprotocol", "chat",
                     "--origin", "http://origin.test", "-v", stdin="x\n")
    assert result.returncode == 0, result.stderr
    headers = seen["headers"]
    assert headers["Authorization"] == "Bearer T0K3N"
    assert headers["X-Trace"] == "1"
    assert headers["Origin"] == "http://origin.test"
    assert headers["Sec-WebSocket-Protocol"] == "v2, chat"
    assert seen["subprotocol"] == "chat"
    assert "subprotocol 'chat'" in result.stderr


def test_compression_is_offered_unless_no_compress(ws_server: Callable[..., WSServer]) -> None:
    server, seen = recording_server(ws_server)
    result = run_cli(server.url, "-v", stdin="x\n")
    assert result.returncode == 0, result.stderr
    assert "permessage-deflate" in seen["headers"]["Sec-WebSocket-Extensions"]
    assert "extensions permessage-deflate" in result.stderr
    result = run_cli(server.url, "--no-compress", stdin="x\n")
    assert result.returncode == 0, result.stderr
    assert "Sec-WebSocket-Extensions" not in seen["headers"]
    assert result.stdout == "< text: x\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-H", "no colon"], "invalid header 'no colon': expected 'Name: value'"),
        (["-H", "Bad Name: x"], "invalid header name 'Bad Name'"),
        (["-H", "Upgrade: h2c"], "header 'Upgrade' cannot be given in extra_headers"),
        (["--subprotocol", "two words"], "subprotocol 'two words' is not a token"),
        (["--wait", "-1"], "'-1' is negative"),
        (["--connect-timeout", "0"], "'0' is not positive"),
    ],
)
def test_bad_options_exit_2_with_the_value_named(
    embedded: EchoServer, args: list[str], message: str
) -> None:
    result = run_cli(*args, embedded.url)
    no_traceback(result)
    assert result.returncode == 2
    assert message in result.stderr
    assert embedded.connections == 0


def test_bad_url_exits_2() -> None:
    result = run_cli("http://127.0.0.1:1/")
    no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.startswith("wsx: invalid WebSocket URL 'http://127.0.0.1:1/'")


def test_insecure_accepts_an_untrusted_certificate(ws_server: Callable[..., WSServer]) -> None:
    trustme = pytest.importorskip("trustme")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("localhost").configure_cert(ctx)
    server = ws_server(ssl=ctx)
    url = f"wss://localhost:{server.port}/"
    result = run_cli(url, stdin="secure\n")
    no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.startswith(f"wsx: cannot connect to {url}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    result = run_cli(url, "--insecure", stdin="secure\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: secure\n"


def test_cafile_trusts_a_private_ca(ws_server: Callable[..., WSServer], tmp_path: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(ctx)
    server = ws_server(ssl=ctx)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    url = f"wss://localhost:{server.port}/"
    result = run_cli(url, "--cafile", str(cafile), stdin="trusted\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: trusted\n"
    result = run_cli(url, "--cafile", str(tmp_path / "missing.pem"))
    no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.startswith("wsx: cannot load CA certificates from ")
    result = run_cli(url, "--cafile", str(cafile), "--insecure")
    assert result.returncode == 2 and "exclude each other" in result.stderr


# ------------------------------------------------------------------ failures
def test_max_size_fails_the_connection_with_1009(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, "--max-size", "10", stdin="short\n" + "x" * 11 + "\n")
    no_traceback(result)
    assert result.returncode == 1
    assert result.stdout == "< text: short\n"
    assert result.stderr.startswith("wsx: connection failed: ")
    assert "exceeds the limit of 10 (close code 1009)" in result.stderr
    wait_until(lambda: embedded.closes, what="the server saw the close")
    assert embedded.closes[0][0] == 1009


def test_max_size_boundary_and_0_for_no_limit(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, "--max-size", "100", stdin="z" * 100 + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: " + "z" * 100 + "\n"
    from wsx.tools.cli import _conn_from_args, client_parser

    for value, expected in (("0", None), ("100", 100), (None, wsx.core.frames.DEFAULT_MAX_SIZE)):
        argv = [embedded.url] + (["--max-size", value] if value is not None else [])
        conn = _conn_from_args(client_parser().parse_args(argv), embedded.url)
        assert conn.max_message_size == expected


def test_connection_refused_is_one_clear_line(free_port: int) -> None:
    result = run_cli(f"ws://127.0.0.1:{free_port}/", stdin="x\n")
    no_traceback(result)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"wsx: cannot connect to ws://127.0.0.1:{free_port}/: ")
    assert "refused" in lines[0].lower()
    assert result.stdout == ""


def test_handshake_refusal_is_one_clear_line(raw_server: Callable[..., RawServer]) -> None:
    def handler(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno socket")

    server = raw_server(handler)
    result = run_cli(server.url, stdin="x\n")
    no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"wsx: handshake with {server.url} failed: server answered the upgrade with "
        "HTTP 404 'Not Found', expected 101; body starts b'no socket'"]


def test_server_close_with_an_error_code_exits_1(ws_server: Callable[..., WSServer]) -> None:
    async def handler(ws: Any) -> None:
        await ws.recv()
        await ws.close(4001, "go away")

    server = ws_server(handler)
    result = run_cli(server.url, stdin="x\n")
    no_traceback(result)
    assert result.returncode == 1
    assert result.stdout == "< close: 4001 'go away'\n"
    assert result.stderr == "wsx: the server closed the connection with code 4001 'go away'\n"


def finish_with_stdin_open(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Wait for ``proc`` to exit by itself, its stdin still open; return stdout and stderr."""
    try:
        proc.wait(30)
        assert proc.stdout is not None and proc.stderr is not None
        return proc.stdout.read().decode(), proc.stderr.read().decode()
    finally:
        proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_server_close_1000_exits_0_before_stdin_ends(ws_server: Callable[..., WSServer]) -> None:
    async def handler(ws: Any) -> None:
        await ws.send("bye")
        await ws.close(1000)

    server = ws_server(handler)
    proc = subprocess.Popen([sys.executable, "-m", "wsx", server.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    out, err = finish_with_stdin_open(proc)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["< text: bye", "< close: 1000"]


def test_protocol_violation_by_the_server_exits_1(raw_server: Callable[..., RawServer]) -> None:
    from conftest import accept_response, read_frame, server_frame

    closes: list[tuple[int, bytes] | None] = []

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        sock.sendall(server_frame(0x3, b"reserved opcode"))
        sock.settimeout(10)
        closes.append(read_frame(sock))

    server = raw_server(handler)
    proc = subprocess.Popen([sys.executable, "-m", "wsx", server.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    out, err = finish_with_stdin_open(proc)
    assert proc.returncode == 1
    assert out == ""
    assert err.startswith("wsx: connection failed: ")
    assert "reserved data opcode 0x3 (close code 1002)" in err
    assert closes and closes[0] is not None and closes[0][0] == 0x8
    assert closes[0][1][:2] == (1002).to_bytes(2, "big")


def test_tcp_close_without_close_frame_exits_1(raw_server: Callable[..., RawServer]) -> None:
    from conftest import accept_response

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        time.sleep(0.2)

    server = raw_server(handler)
    # stdin stays open: the client sends nothing, so the server's close is a clean FIN.
    proc = subprocess.Popen([sys.executable, "-m", "wsx", server.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    _out, err = finish_with_stdin_open(proc)
    assert proc.returncode == 1
    assert err == "wsx: the server closed the connection without a close frame\n"


# ------------------------------------------------------- frames and waiting
def test_server_ping_is_printed_and_answered(ws_server: Callable[..., WSServer]) -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: Any) -> None:
        waiter = await ws.ping(b"abcd")
        seen["pong"] = await asyncio.wait_for(waiter, 5) is not None
        await ws.send("pinged")
        await ws.close(1000)

    server = ws_server(handler)
    proc = subprocess.Popen([sys.executable, "-m", "wsx", server.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    out, err = finish_with_stdin_open(proc)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["< ping: 4 bytes: b'abcd'", "< text: pinged", "< close: 1000"]
    assert seen["pong"] is True


def test_wait_stops_after_idle_time_when_answers_do_not_come(
    ws_server: Callable[..., WSServer],
) -> None:
    seen: dict[str, Any] = {}

    async def silent(ws: Any) -> None:
        async for _msg in ws:
            pass
        seen["close"] = ws.close_code

    server = ws_server(silent)
    started = time.monotonic()
    result = run_cli(server.url, "--wait", "0.5", stdin="a\nb\n")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert elapsed >= 0.5
    assert elapsed < 10
    wait_until(lambda: "close" in seen)
    assert seen["close"] == 1000


def test_wait_ends_early_once_every_answer_arrived(ws_server: Callable[..., WSServer]) -> None:
    async def slow_echo(ws: Any) -> None:
        async for msg in ws:
            await asyncio.sleep(0.3)
            await ws.send(msg)

    server = ws_server(slow_echo)
    started = time.monotonic()
    result = run_cli(server.url, "--wait", "20", stdin="a\nb\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< text: a", "< text: b"]
    assert time.monotonic() - started < 15  # not the 20 s of --wait


# -------------------------------------------------------------------- trace
def test_trace_prints_dbg_lines(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, "--trace", stdin="traced\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: traced\n"
    dbg = [line for line in result.stderr.splitlines() if line.startswith("*DBG* ")]
    text = "\n".join(dbg)
    assert "attempting to connect" in text
    assert "successfully connected" in text
    assert "received cast: ('send', ('text', 'traced'))" in text
    assert "replying from handle_cast with ('text', 'traced')" in text
    assert "received frame: ('text', 'traced')" in text
    assert "received close frame: (1000, '')" in text


def test_without_trace_there_are_no_dbg_lines(embedded: EchoServer) -> None:
    result = run_cli(embedded.url, stdin="quiet\n")
    assert result.returncode == 0
    assert "*DBG*" not in result.stderr


# --------------------------------------------------------------------- proxy
def connect_proxy(raw_server: Callable[..., RawServer], requests: list[bytes]) -> RawServer:
    """A minimal HTTP CONNECT proxy: records the CONNECT request, then relays bytes."""

    def handler(sock: socket.socket) -> None:
        request = read_request(sock)
        requests.append(request)
        target = request.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pipe, args=(upstream, sock), daemon=True)
        back.start()
        pipe(sock, upstream)
        back.join(10)
        upstream.close()

    return raw_server(handler)


def test_proxy_is_used(raw_server: Callable[..., RawServer], embedded: EchoServer) -> None:
    requests: list[bytes] = []
    proxy = connect_proxy(raw_server, requests)
    result = run_cli(embedded.url, "--proxy", f"http://127.0.0.1:{proxy.port}", stdin="via\n")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: via\n"
    assert len(requests) == 1
    assert requests[0].startswith(f"CONNECT 127.0.0.1:{embedded.port} HTTP/1.1\r\n".encode())


def test_environment_proxy_only_with_env_proxy(
    raw_server: Callable[..., RawServer], embedded: EchoServer
) -> None:
    requests: list[bytes] = []
    proxy = connect_proxy(raw_server, requests)
    proxy_env = {"http_proxy": f"http://127.0.0.1:{proxy.port}"}
    result = run_cli(embedded.url, stdin="direct\n", extra_env=proxy_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: direct\n"
    assert requests == []  # the environment is ignored without --env-proxy
    result = run_cli(embedded.url, "--env-proxy", stdin="via env\n", extra_env=proxy_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< text: via env\n"
    assert len(requests) == 1 and requests[0].startswith(b"CONNECT 127.0.0.1:")


def test_proxy_refusal_is_one_clear_line(raw_server: Callable[..., RawServer]) -> None:
    def refuse(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    proxy = raw_server(refuse)
    result = run_cli("ws://127.0.0.1:9/", "--proxy", f"http://127.0.0.1:{proxy.port}",
                     stdin="x\n")
    no_traceback(result)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsx: cannot connect to ws://127.0.0.1:9/: ")
    assert "403" in lines[0]


def test_bad_proxy_url_exits_2() -> None:
    result = run_cli("ws://127.0.0.1:9/", "--proxy", "ftp://127.0.0.1:1")
    no_traceback(result)
    assert result.returncode == 2
    assert "invalid proxy URL 'ftp://127.0.0.1:1'" in result.stderr


def test_ping_interval_sends_keepalive_pings(raw_server: Callable[..., RawServer]) -> None:
    from conftest import accept_response, read_frame, server_frame

    seen: list[tuple[int, bytes]] = []

    def handler(sock: socket.socket) -> None:
        sock.sendall(accept_response(read_request(sock)))
        sock.settimeout(10)
        while (frame := read_frame(sock)) is not None:
            seen.append(frame)
            if frame[0] == 0x9:  # ping: answer, then close normally
                sock.sendall(server_frame(0xA, frame[1]))
                sock.sendall(server_frame(0x8, (1000).to_bytes(2, "big")))
            elif frame[0] == 0x8:
                return

    server = raw_server(handler)
    proc = subprocess.Popen([sys.executable, "-m", "wsx", server.url, "--ping-interval", "0.3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    out, err = finish_with_stdin_open(proc)
    assert proc.returncode == 0, err
    assert seen and seen[0][0] == 0x9, seen
    assert out.splitlines()[-1] == "< close: 1000"


# --------------------------------------------------------- echo-server command
def start_echo_server_command(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "wsx", "echo-server", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), cwd=ROOT)
    assert proc.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(20)
    if not line or not line[0].startswith("listening on "):
        proc.kill()
        raise AssertionError(f"no 'listening on' line: {line!r}, exit {proc.poll()}")
    url = line[0].split()[-1]
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/", url), url
    return proc, url


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is SIGINT on POSIX")
def test_echo_server_command_serves_wsx_and_websockets_clients() -> None:
    proc, url = start_echo_server_command("--port", "0", "--subprotocol", "chat")
    try:
        received: list[Any] = []

        class Client(wsx.WebSocket):
            def handle_frame(self, frame: Any, state: Any) -> Any:
                received.append(frame)
                return ("ok", state)

        client = wsx.start(url, Client, None, subprotocols=["chat"])
        assert client.conn.subprotocol == "chat"
        wsx.send_frame(client, ("text", "from wsx"))
        wsx.send_frame(client, ("binary", b"\x00\x01"))
        wait_until(lambda: len(received) == 2, what=f"two echoes, got {received}")
        assert received == [("text", "from wsx"), ("binary", b"\x00\x01")]
        assert wsx.stop(client)

        with connect(url) as ws:
            ws.send("from websockets")
            assert ws.recv(timeout=5) == "from websockets"
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None

        result = run_cli(url, stdin="from the cli\n")
        assert result.stdout == "< text: from the cli\n"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is SIGINT on POSIX")
def test_echo_server_command_verbose_logs_connections() -> None:
    proc, url = start_echo_server_command("-v")
    try:
        result = run_cli(url + "room", stdin="x\n")
        assert result.returncode == 0, result.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"127\.0\.0\.1:\d+: connected \(/room\)", lines[0]), lines
    assert re.fullmatch(r"127\.0\.0\.1:\d+: closed \(1000\)", lines[1]), lines


def test_echo_server_command_port_in_use_is_one_line(embedded: EchoServer) -> None:
    result = run_cli("echo-server", "--port", str(embedded.port))
    no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.startswith(f"wsx: cannot listen on 127.0.0.1:{embedded.port}: ")
    assert len(result.stderr.splitlines()) == 1


def test_echo_server_command_bad_port() -> None:
    result = run_cli("echo-server", "--port", "70000")
    assert result.returncode == 2
    assert "port 70000 is not in 0-65535" in result.stderr


# -------------------------------------------------------------- interaction
def test_closed_output_pipe_closes_quietly(embedded: EchoServer, tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(20000)))
    with lines.open("rb") as stdin:
        proc = subprocess.Popen([sys.executable, "-m", "wsx", embedded.url], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
                                cwd=ROOT)
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"< text: line 0\n"
        proc.stdout.close()  # like `wsx URL | head -1`
        try:
            err = proc.stderr.read()
            proc.wait(30)
        finally:
            proc.kill()
            proc.stderr.close()
    assert proc.returncode == 0, err
    assert err == b""
    wait_until(lambda: embedded.closes, what="the server saw the close")
    assert list(embedded.closes) == [(1000, "")]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_closes_with_1000_and_exits_0(embedded: EchoServer) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "wsx", embedded.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"before ctrl-c\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"< text: before ctrl-c\n"
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
        err = proc.stderr.read() if proc.stderr is not None else b""
    finally:
        proc.kill()
        proc.stdin.close()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    wait_until(lambda: embedded.closes, what="the server saw the close")
    assert list(embedded.closes) == [(1000, "")]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_terminal_session_prints_notices_and_ctrl_d_closes(embedded: EchoServer) -> None:
    primary, secondary = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "wsx", embedded.url], stdin=secondary,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    os.close(secondary)
    try:
        assert proc.stdout is not None
        os.write(primary, b"typed\n")
        assert proc.stdout.readline() == b"< text: typed\n"
        os.write(primary, b"\x04")  # Ctrl-D at the start of a line: end of input
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        os.close(primary)
    assert proc.returncode == 0, err
    text = err.decode()
    assert f"wsx: connected to {embedded.url}" in text
    assert "type a line to send it as a text frame" in text
    assert "wsx: connection closed" in text
    wait_until(lambda: embedded.closes)
    assert list(embedded.closes) == [(1000, "")]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_control_characters_are_escaped_on_a_terminal_only(embedded: EchoServer) -> None:
    payload = "red \x1b[31mtext\tand \x9b bell\x07"
    primary, secondary = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "wsx", embedded.url], stdin=subprocess.PIPE,
                            stdout=secondary, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    os.close(secondary)
    try:
        _out, err = proc.communicate(payload.encode() + b"\n", timeout=30)
        shown = b""
        while b"\n" not in shown:
            shown += os.read(primary, 4096)
    finally:
        proc.kill()
        os.close(primary)
    assert proc.returncode == 0, err
    assert shown.decode().splitlines()[0] == "< text: red \\x1b[31mtext\tand \\x9b bell\\x07"
    result = run_cli(embedded.url, stdin=payload + "\n")  # stdout is a pipe: verbatim
    assert result.stdout == f"< text: {payload}\n"


def test_version_and_help() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wsx {wsx.__version__}"
    result = run_cli("--help")
    assert result.returncode == 0
    assert "wsx echo-server" in result.stdout
    assert "as many messages as it sent" in result.stdout  # the end-of-input rule


def test_main_in_process_returns_the_status(embedded: EchoServer, capsys: Any) -> None:
    from wsx.tools.cli import main

    with pytest.raises(SystemExit) as info:
        main(["-H", "nocolon", embedded.url])
    assert info.value.code == 2
    assert main(["http://x/"]) == 2
    assert "invalid WebSocket URL 'http://x/'" in capsys.readouterr().err


def test_console_script_entry_point_is_main() -> None:
    from importlib.metadata import entry_points

    from wsx.tools.cli import main

    scripts = [e for e in entry_points(group="console_scripts") if e.name == "wsx"]
    assert [e.value for e in scripts] == ["wsx.tools.cli:main"]
    assert scripts[0].load() is main
