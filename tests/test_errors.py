"""Errors that say what happened: the attributes of connect and handshake failures."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

import wsx
from conftest import read_request
from test_client import Probe, Rec


def sent_key(request: bytes) -> str:
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            return value.strip()
    raise AssertionError("no Sec-WebSocket-Key in the request")


def test_a_refused_connection_keeps_its_os_error(free_port: int) -> None:
    with pytest.raises(wsx.ConnError, match="Connection refused") as info:
        wsx.start_link(f"ws://127.0.0.1:{free_port}/", Rec, Probe())
    assert isinstance(info.value.original, ConnectionRefusedError)
    assert str(info.value).count("Connection refused") == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: wrong\r\n\r\n",
    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
], ids=["bad-accept", "403"])
def test_a_handshake_error_carries_the_key_sent(raw_server: Any, answer: bytes) -> None:
    keys: list[str] = []

    def handle(sock: socket.socket) -> None:
        keys.append(sent_key(read_request(sock)))
        sock.sendall(answer)

    server = raw_server(handle)
    with pytest.raises(wsx.HandshakeError) as info:
        wsx.start_link(server.url, Rec, Probe())
    assert keys and info.value.challenge == keys[0]


@pytest.mark.parametrize("name", [("a", 1), 42, b"name"])
def test_a_name_that_is_not_a_str_is_a_type_error(raw_server: Any, name: Any) -> None:
    server = raw_server(lambda sock: None)
    with pytest.raises(TypeError, match="name must be a str"):
        wsx.start_link(server.url, Rec, Probe(), name=name)
    assert server.connections == 0


class Secretive(wsx.WebSocket):
    def handle_cast(self, msg: Any, state: Any) -> Any:
        raise RuntimeError("callback bug")

    def format_status(self, opt: str, state: Any) -> Any:
        return {**state, "token": "***"} if opt == "terminate" else state


def test_an_abnormal_exit_is_one_crash_report_with_the_formatted_state(
        echo_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wsx")
    client = wsx.start(echo_server.url, Secretive, {"token": "s3cret", "n": 1})
    wsx.cast(client, "boom")
    assert client.join(5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("wsx")]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    text = errors[0].getMessage()
    assert "exited abnormally" in text and "Secretive" in text and "handle_cast" in text
    assert "'token': '***'" in text and "s3cret" not in text
    assert errors[0].exc_info is not None and errors[0].exc_info[1].args == ("callback bug",)


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "why")])
def test_normal_and_shutdown_exits_are_not_reported(
        echo_server: Any, caplog: pytest.LogCaptureFixture, reason: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="wsx")
    client = wsx.start(echo_server.url, Secretive, {"token": "s3cret"})
    assert wsx.stop(client, reason)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
