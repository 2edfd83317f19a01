"""wss:// against a local TLS websockets server, with certificates from a test CA (trustme)."""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import trustme

import wsx
from conftest import WSServer, wait_until


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts the test CA."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def tls_server(
    ws_server: Callable[..., WSServer],
    cert: trustme.LeafCert,
    *,
    client_ca: trustme.CA | None = None,
    handler: Any = None,
) -> tuple[WSServer, list[str | None]]:
    """A websockets server speaking TLS with ``cert``; returns it and the SNI names seen."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    sni: list[str | None] = []

    def on_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
        sni.append(name)

    ctx.sni_callback = on_sni
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    return ws_server(handler, ssl=ctx), sni


class Echo(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        state["frames"].append(frame)
        return ("ok", state)

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state["disconnects"].append(status.reason)
        return ("ok", state)


def new_state() -> dict[str, Any]:
    return {"frames": [], "disconnects": []}


def round_trip(client: wsx.Client, state: dict[str, Any]) -> None:
    try:
        wsx.send_frame(client, ("text", "über tls"))
        wait_until(lambda: state["frames"], what="the echo")
        assert state["frames"] == [("text", "über tls")]
    finally:
        assert wsx.stop(client)


# ----------------------------------------------------------------- good path
def test_good_certificate_round_trip_with_sni(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, sni = tls_server(ws_server, ca.issue_cert("localhost"))
    state = new_state()
    client = wsx.start_link(
        f"wss://localhost:{server.port}/", Echo, state, ssl_context=trusting(ca)
    )
    assert sni == ["localhost"]
    round_trip(client, state)


def test_ip_address_certificate(ws_server: Callable[..., WSServer], ca: trustme.CA) -> None:
    server, sni = tls_server(ws_server, ca.issue_cert("127.0.0.1"))
    state = new_state()
    client = wsx.start_link(
        f"wss://127.0.0.1:{server.port}/", Echo, state, ssl_context=trusting(ca)
    )
    assert sni == [None]  # no SNI for an IP address (RFC 6066)
    round_trip(client, state)


# --------------------------------------------------------------- bad certificates
def test_wrong_host_name_is_a_conn_error_naming_the_host(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, _ = tls_server(ws_server, ca.issue_cert("other.example"))
    with pytest.raises(wsx.ConnError) as info:
        wsx.start_link(f"wss://localhost:{server.port}/", Echo, new_state(),
                       ssl_context=trusting(ca))
    assert isinstance(info.value.original, ssl.SSLCertVerificationError)
    message = str(info.value)
    assert f"TLS handshake with localhost:{server.port} failed" in message
    assert "Hostname mismatch" in message and "'localhost'" in message


def test_unknown_ca_fails_by_default(ws_server: Callable[..., WSServer], ca: trustme.CA) -> None:
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"))
    with pytest.raises(wsx.ConnError) as info:
        wsx.start_link(f"wss://localhost:{server.port}/", Echo, new_state())
    assert isinstance(info.value.original, ssl.SSLCertVerificationError)
    assert "unable to get local issuer certificate" in str(info.value)
    assert f"localhost:{server.port}" in str(info.value)


def test_unknown_ca_trusted_through_ssl_context(
    ws_server: Callable[..., WSServer], ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"))
    state = new_state()
    with caplog.at_level(logging.WARNING, logger="wsx"):
        client = wsx.start_link(f"wss://localhost:{server.port}/", Echo, state,
                                ssl_context=trusting(ca))
        round_trip(client, state)
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage()]


def test_unknown_ca_with_insecure_connects_and_warns(
    ws_server: Callable[..., WSServer], ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"))
    state = new_state()
    with caplog.at_level(logging.WARNING, logger="wsx"):
        client = wsx.start_link(f"wss://localhost:{server.port}/", Echo, state, insecure=True)
        round_trip(client, state)
    warnings = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1
    record = warnings[0]
    assert record.levelno == logging.WARNING and record.name == "wsx"
    assert f"wss://localhost:{server.port}" in record.getMessage()
    assert "insecure=True" in record.getMessage()


def test_expired_certificate_fails(ws_server: Callable[..., WSServer], ca: trustme.CA) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    server, _ = tls_server(ws_server, cert)
    with pytest.raises(wsx.ConnError) as info:
        wsx.start_link(f"wss://localhost:{server.port}/", Echo, new_state(),
                       ssl_context=trusting(ca))
    assert isinstance(info.value.original, ssl.SSLCertVerificationError)
    assert "certificate has expired" in str(info.value)
    # ... and insecure=True does not look at dates either.
    state = new_state()
    round_trip(wsx.start_link(f"wss://localhost:{server.port}/", Echo, state, insecure=True),
               state)


# ---------------------------------------------------------- client certificates
def test_client_certificate_required_by_the_server(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    client_ca = trustme.CA()
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"), client_ca=client_ca)
    url = f"wss://localhost:{server.port}/"

    ctx = trusting(ca)
    client_ca.issue_cert("client@example.org").configure_cert(ctx)
    state = new_state()
    round_trip(wsx.start_link(url, Echo, state, ssl_context=ctx), state)
    assert server.connections == 1

    # Without a client certificate the server aborts the TLS session. With
    # TLS 1.3 the client learns it only after its handshake (the server
    # checks the certificate later): while sending or reading the upgrade.
    with pytest.raises((wsx.ConnError, wsx.HandshakeError)) as info:
        wsx.start_link(url, Echo, new_state(), ssl_context=trusting(ca))
    text = str(info.value).lower()
    assert "certificate" in text or "closed" in text, text
    assert server.connections == 1  # never reached the WebSocket layer

    # A certificate from a CA the server does not trust is refused too.
    other = trusting(ca)
    trustme.CA().issue_cert("client@example.org").configure_cert(other)
    with pytest.raises((wsx.ConnError, wsx.HandshakeError)):
        wsx.start_link(url, Echo, new_state(), ssl_context=other)
    assert server.connections == 1


# ------------------------------------------------------ handle_disconnect paths
def test_tls_error_reaches_handle_disconnect_on_initial_failure(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"))
    state = new_state()
    # handle_disconnect answers ("ok", state): the client ends and start_link raises.
    with pytest.raises(wsx.ConnError) as info:
        wsx.start_link(f"wss://localhost:{server.port}/", Echo, state,
                       handle_initial_conn_failure=True)
    [reason] = state["disconnects"]
    assert reason[1] is info.value
    assert reason[0] == "error" and isinstance(reason[1], wsx.ConnError)
    assert isinstance(reason[1].original, ssl.SSLCertVerificationError)


class ReconnectWithoutTrust(wsx.WebSocket):
    """Connected with a trusting context; reconnects with the default one (which fails)."""

    def handle_disconnect(self, status: Any, state: Any) -> Any:
        state["disconnects"].append(status.reason)
        if len(state["disconnects"]) == 1:
            return ("reconnect", wsx.Conn(status.conn.url), state)
        return ("ok", state)


def test_tls_error_reaches_handle_disconnect_on_reconnect(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    async def close_at_once(ws: Any) -> None:
        await ws.close()

    server, _ = tls_server(ws_server, ca.issue_cert("localhost"), handler=close_at_once)
    state = new_state()
    client = wsx.start_link(f"wss://localhost:{server.port}/", ReconnectWithoutTrust, state,
                            ssl_context=trusting(ca))
    assert client.join(5)
    first, second = state["disconnects"]
    assert first[0] == "remote"
    assert second[0] == "error" and isinstance(second[1], wsx.ConnError)
    assert "unable to get local issuer certificate" in str(second[1])
    assert server.connections == 1


def test_reconnect_from_ws_to_wss_reads_and_writes_through_tls(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    """A reconnect may change the URL: the new connection is read and written as TLS."""
    plain = ws_server()
    secure, _ = tls_server(ws_server, ca.issue_cert("localhost"))
    # No compression: plain frames take the compiled read path when it is built.
    target = wsx.Conn(f"wss://localhost:{secure.port}/", ssl_context=trusting(ca), compress=False)

    class MoveToTLS(Echo):
        def handle_disconnect(self, status: Any, state: Any) -> Any:
            state["disconnects"].append(status.reason)
            return ("reconnect", target, state)

    state = new_state()
    client = wsx.start_link(plain.url, MoveToTLS, state, compress=False)
    try:
        plain.close()  # the server goes away: handle_disconnect moves to wss://
        wait_until(lambda: secure.connections == 1 and client.connection_state == "open",
                   what="the wss:// connection")
        for i in range(20):  # several reads and writes on the TLS socket
            wsx.send_frame(client, ("text", f"über tls {i}"))
        wait_until(lambda: len(state["frames"]) == 20, what="the echoes")
        assert state["frames"] == [("text", f"über tls {i}") for i in range(20)]
        assert client.connection_state == "open"
    finally:
        assert wsx.stop(client)


def test_uncompressed_messages_of_every_size_over_tls(
    ws_server: Callable[..., WSServer], ca: trustme.CA
) -> None:
    """Plain frames over TLS (the compiled read path when built): small ones many per
    read, large ones across many TLS records, all echoed intact and in order."""
    server, _ = tls_server(ws_server, ca.issue_cert("localhost"), handler=None)
    state = new_state()
    client = wsx.start_link(f"wss://localhost:{server.port}/", Echo, state,
                            ssl_context=trusting(ca), compress=False, max_message_size=None)
    try:
        sent = [("binary", bytes([i % 251]) * size)
                for i, size in enumerate([1, 125, 126, 4096, 70_000, 300_000, 1_000_000])]
        sent += [("text", f"msg {i} é") for i in range(300)]
        for frame in sent:
            wsx.send_frame(client, frame)
        wait_until(lambda: len(state["frames"]) == len(sent), timeout=20, what="the echoes")
        assert state["frames"] == sent
    finally:
        assert wsx.stop(client)
