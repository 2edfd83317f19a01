"""The pytest plugin of :mod:`wsx.testing`: the ``wsx_server`` fixture.

It is registered through the ``pytest11`` entry point when wsx is
installed, so a test needs no import and no ``conftest.py``::

    def test_reconnects(wsx_server):
        client = wsx.start_link(wsx_server.url, Feed, None)
        wsx_server.wait_for_connections(1)
        wsx_server.reset()
        wsx_server.wait_for_connections(2)

``wsx_server_factory`` makes more servers, with :class:`~wsx.testing.Server`'s
options (``wsx_server_factory(echo=False)``); each is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .server import Server

__all__ = ["wsx_server", "wsx_server_factory"]


@pytest.fixture
def wsx_server_factory() -> Iterator[Callable[..., Server]]:
    """A function that starts a :class:`~wsx.testing.Server` (keywords: its options)."""
    servers: list[Server] = []

    def make(**options: Any) -> Server:
        server = Server(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def wsx_server(wsx_server_factory: Callable[..., Server]) -> Server:
    """A started :class:`~wsx.testing.Server` (an echo server), stopped after the test."""
    return wsx_server_factory()
