"""The scripts in examples/ run as subprocesses against examples/echo_server.py."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTS = ["echo_client.py", "supervised_app.py", "auth_headers.py", "tracing.py", "echo_server.py",
           "request_reply.py", "asyncio_feed.py", "telemetry_logging.py"]


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    out.pop("WSX_EXAMPLE_URL", None)
    out.pop("WSX_TOKEN", None)
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """examples/echo_server.py on a free port; yields its URL."""
    yield from echo_server()


def echo_server(*args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
    try:
        assert proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(15)
        assert line and line[0].startswith("listening on "), (line, proc.poll())
        url = line[0].split()[-1]
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/", url), url
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run(script: str, *args: str, timeout: float = 30, **extra_env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
        timeout=timeout, env=env(**extra_env), cwd=ROOT, check=False)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def test_every_example_passes_mypy_strict(tmp_path: Path) -> None:
    """Every file of examples/ type-checks with ``mypy --strict`` against the wsx imported."""
    api = pytest.importorskip("mypy.api")
    files = sorted(str(path) for path in EXAMPLES.glob("*.py"))
    assert len(files) >= len(SCRIPTS)
    out, err, status = api.run([
        "--strict", "--config-file=", "--cache-dir", str(tmp_path / "mypy-cache"),
        "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}",
        "--no-error-summary", "--no-color-output", *files])
    assert status == 0, out + err


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_example_has_a_docstring_saying_how_to_run_it(script):
    source = (EXAMPLES / script).read_text()
    doc = ast.get_docstring(ast.parse(source))
    assert doc, script
    assert "python examples/echo_server.py --port 8765" in doc
    if script != "echo_server.py":
        assert f"python examples/{script}" in doc
        assert "WSX_EXAMPLE_URL" in doc  # the default URL can be overridden
        assert 'DEFAULT_URL = "ws://127.0.0.1:8765/"' in source


def test_echo_client(server_url):
    result = run("echo_client.py", server_url)
    out = result.stdout.splitlines()
    # The client logs from two threads (sends from the main one, receptions from
    # the loop), so only the causal order is fixed.
    assert sorted(out) == sorted([
        "Connected!",
        "Sending message: Hello",
        "Sending message: Close the things!",
        "Received Message: Hello",
        "Received Message: Close the things!",
        "Local close with reason: normal",
        "client exited: ('local', 'normal')",
    ])
    pos = out.index
    assert pos("Connected!") == 0
    assert pos("Sending message: Hello") < pos("Received Message: Hello")
    assert pos("Sending message: Hello") < pos("Sending message: Close the things!")
    assert pos("Sending message: Close the things!") < pos("Received Message: Close the things!")
    assert pos("Received Message: Hello") < pos("Received Message: Close the things!")
    assert out[-2:] == ["Local close with reason: normal", "client exited: ('local', 'normal')"]


def test_echo_client_url_from_the_environment(server_url):
    result = run("echo_client.py", WSX_EXAMPLE_URL=server_url)
    assert "client exited: ('local', 'normal')" in result.stdout


def test_echo_client_as_a_module_with_trace(server_url):
    # EchoClient.start_link(debug=["trace"]) and echo(): the README's session.
    code = (
        "import sys, time\n"
        "sys.path.insert(0, 'examples')\n"
        "import echo_client as e\n"
        "c = e.EchoClient.start_link(sys.argv[1], debug=['trace'])\n"
        "e.echo(c, 'Hello')\n"
        "time.sleep(0.3)\n"  # the echo and the server's ping come back meanwhile
        "e.echo(c, 'Close the things!')\n"
        "assert c.join(10)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, server_url], capture_output=True,
                            text=True, timeout=30, env=env(), cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    texts = [re.sub(r"^\*DBG\* <Client #\d+> ", "", line)
             for line in result.stderr.splitlines() if line.startswith("*DBG*")]
    assert texts[:10] == [
        "attempting to connect",
        "successfully connected",
        "sending frame: ('text', 'Hello')",
        "received frame: ('text', 'Hello')",
        "received frame: 'ping'",
        "replying from handle_ping with 'pong'",
        "sending frame: ('text', 'Close the things!')",
        "received frame: ('text', 'Close the things!')",
        "closing with local reason: ('local', 'normal')",
        "sending close frame: ('local', 'normal')",
    ]


def test_asyncio_feed(server_url):
    result = run("asyncio_feed.py", server_url)
    assert result.stdout.splitlines() == [
        f"Feed connected to {server_url}",
        "app got: subscribe", "app got: tick 1", "app got: tick 2", "app got: tick 3",
        "Feed terminating: ('error', ValueError('a message the feed cannot handle'))",
        f"Feed connected to {server_url}",
        "app got: subscribe", "app got: tick 4", "app got: tick 5", "app got: tick 6",
        "Feed terminating: 'shutdown'",
        "supervisor stopped: True",
    ]


def test_telemetry_logging(server_url):
    result = run("telemetry_logging.py", server_url)
    # "<Client #N 'telemetry-demo'>" dropped: N depends on the interpreter.
    out = [re.sub(r"<Client #\d+ 'telemetry-demo'> ", "", line)
           for line in result.stdout.splitlines()]
    frames = [
        "DEBUG wsx.events: sent text frame, 5 bytes",
        "DEBUG wsx.events: received text frame, 5 bytes",
        "DEBUG wsx.events: sent binary frame, 3 bytes",
        "DEBUG wsx.events: received binary frame, 3 bytes",
        "DEBUG wsx.events: sent text frame, 3 bytes",
        "DEBUG wsx.events: received text frame, 3 bytes",
    ]
    # The server pings after its first echo: that ping may come before the close.
    assert [line for line in out if "ping frame" not in line] == (
        [f"INFO wsx.events: connected to {server_url}"] + sorted(frames, key=out.index) + [
            "INFO wsx.events: disconnected: ('local', 'normal') (attempt 1)",
            "INFO wsx.events: terminated: ('local', 'normal')",
        ])
    assert set(out) - set(frames) - {"DEBUG wsx.events: received ping frame, 0 bytes"} == {
        f"INFO wsx.events: connected to {server_url}",
        "INFO wsx.events: disconnected: ('local', 'normal') (attempt 1)",
        "INFO wsx.events: terminated: ('local', 'normal')",
    }
    pos = out.index
    for sent, received in zip(frames[::2], frames[1::2], strict=True):  # each echo after its frame
        assert pos(sent) < pos(received)
    assert pos(frames[0]) < pos(frames[2]) < pos(frames[4])  # sends in order
    assert pos(frames[1]) < pos(frames[3]) < pos(frames[5])  # echoes in order
    assert "wsx.telemetry" not in result.stderr  # the handler never failed


def test_telemetry_logging_against_the_embedded_echo_server() -> None:
    from wsx.tools.echo_server import EchoServer

    with EchoServer() as other:  # `wsx echo-server`: it does not ping
        result = run("telemetry_logging.py", other.url)
    assert "received ping" not in result.stdout
    assert result.stdout.splitlines()[-1].endswith("terminated: ('local', 'normal')")


def test_supervised_app(server_url):
    result = run("supervised_app.py", server_url)
    out = result.stdout.splitlines()
    assert out[0] == f"MyApp.Client connected to {server_url} with state ['WebSockex is Great']"
    assert re.fullmatch(r"children: \[\(<class '__main__\.Client'>, <Client #\d+>, "
                        r"'worker', 'permanent'\)\]", out[1])
    assert "MyApp.Client received ('text', 'WebSockex is Great')" in out
    assert "MyApp.Client terminating: ('error', RuntimeError('asked to crash'))" in out
    assert out.count(f"MyApp.Client connected to {server_url} with state ['WebSockex is Great']") == 2
    restarted = [line for line in out if line.startswith("restarted: ")]
    assert len(restarted) == 1 and restarted[0].endswith("state ['WebSockex is Great']")
    assert "MyApp.Client received ('text', 'still here')" in out
    assert out[-2:] == ["MyApp.Client terminating: 'shutdown'",
                        "supervisor stopped: 'normal'; client alive: False"]
    assert "RuntimeError: asked to crash" in result.stderr  # logged by wsx


def test_auth_headers(server_url):
    result = run("auth_headers.py", server_url, WSX_TOKEN="t0k3n")
    out = result.stdout.splitlines()
    assert out[0] == "bearer token   -> authorization: Bearer t0k3n"
    # alice:p@ss word, percent-encoded in the URL and decoded before encoding
    assert out[1] == ("basic auth     -> authorization: Basic YWxpY2U6cEBzcyB3b3Jk "
                      "(expected Basic YWxpY2U6cEBzcyB3b3Jk)")
    assert out[2] == "no credentials -> authorization: (none)"


def test_tracing(server_url):
    result = run("tracing.py", server_url)
    lines = [line for line in result.stderr.splitlines() if line.startswith("*DBG*")]
    ids = {re.match(r"\*DBG\* (<Client #\d+>)", line).group(1) for line in lines}  # type: ignore[union-attr]
    assert len(ids) == 2
    first, second = sorted(ids, key=lambda i: int(re.sub(r"\D", "", i)))
    by = {cid: [line.split(" ", 3)[3] for line in lines if line.split(" ", 3)[1:3] == cid.split(" ")]
          for cid in ids}
    assert by[first][:6] == [
        "attempting to connect",
        "successfully connected",
        "sending frame: ('text', 'Hello')",
        "received frame: ('text', 'Hello')",
        "received frame: 'ping'",
        "replying from handle_ping with 'pong'",
    ]
    assert "closing with local reason: ('local', 'normal')" in by[first]
    # The second client was traced only while wsx.sys.trace was on.
    assert by[second] == ["sending frame: ('text', 'Hi')", "received frame: ('text', 'Hi')"]
    out = result.stdout.splitlines()
    assert "   exited with ('local', 'normal')" in out
    assert "   statistics: 2 frames out, 2 frames in" in out
    assert "   log: sending frame: ('text', 'Hi')" in out
    assert out[-1] == "   exited with 'normal'"


def test_echo_server_echoes_pings_and_reports_authorization(server_url):
    class Probe(wsx.WebSocket):
        def handle_frame(self, frame: Any, state: Any) -> Any:
            return ("ok", state + [frame])

        def handle_ping(self, frame: Any, state: Any) -> Any:
            return ("reply", "pong", state + [frame])

    client = wsx.start_link(server_url, Probe, [], extra_headers=[("Authorization", "Bearer x")])
    try:
        wsx.send_frame(client, ("binary", b"\x00\xff"))
        wsx.send_frame(client, ("text", "whoami"))
        deadline = time.monotonic() + 5
        while len(wsx.sys.get_state(client)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(map(repr, wsx.sys.get_state(client))) == sorted(map(repr, [
            ("binary", b"\x00\xff"), "ping", ("text", "authorization: Bearer x")]))
    finally:
        wsx.stop(client)


def test_echo_server_pings_every_interval():
    class Pings(wsx.WebSocket):
        def handle_ping(self, frame: Any, state: Any) -> Any:
            return ("reply", "pong", state + 1)

    servers = echo_server("--ping-interval", "0.1")
    url = next(servers)
    try:
        client = wsx.start_link(url, Pings, 0)
        try:
            deadline = time.monotonic() + 5
            while wsx.sys.get_state(client) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert wsx.sys.get_state(client) >= 3  # pinged again and again, unprompted
        finally:
            wsx.stop(client)
    finally:
        servers.close()


def test_request_reply(server_url):
    result = run("request_reply.py", server_url)
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["ADA", "BTC", "ETH", "SOL"]
    ids = sorted(int(line.split("request ")[1].rstrip(")")) for line in lines[:4])
    assert ids == [0, 1, 2, 3]
    assert lines[4] == "unknown request: None"


@pytest.mark.parametrize("script, words", [
    ("tracing.py", "examples/echo_server.py, which pings"),
    ("auth_headers.py", "examples/echo_server.py, which answers it"),
])
def test_examples_that_need_the_example_server_say_so(script: str, words: str) -> None:
    from wsx.tools.echo_server import EchoServer

    with EchoServer() as other:  # `wsx echo-server`: it neither pings nor answers whoami
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script), other.url], capture_output=True, text=True,
            timeout=30, env=env(), cwd=ROOT, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and words in result.stderr, result.stderr
