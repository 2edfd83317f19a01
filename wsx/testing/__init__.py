"""Test your own WebSocket clients against a server that misbehaves on purpose.

:class:`Server` is an echo server on 127.0.0.1 whose faults a test scripts:

>>> from wsx.testing import Server
>>> with Server() as server:                       # doctest: +SKIP
...     client = wsx.start_link(server.url, MyClient, state)
...     server.wait_for_connections(1)
...     server.close(1011, "restart")              # every open connection
...     server.wait_for_connections(2)             # MyClient reconnected
...     assert server.messages.count(("text", "subscribe")) == 2

With pytest, the ``wsx_server`` fixture (:mod:`wsx.testing.plugin`, installed
with wsx) is a started :class:`Server`, stopped after the test.

============================  ================================================
fault                         method
============================  ================================================
refuse connections            :meth:`Server.refuse` (a TCP reset at accept)
handshake status / headers    :meth:`Server.handshake` (``status``, ``headers``,
                              ``delay``, ``times``)
stall after the handshake     :meth:`Server.stall`
stop answering pings          :meth:`Server.drop_pongs`
stop reading (backpressure)   :meth:`Server.stop_reading`
fragment every message        :meth:`Server.fragment`
delay every message           :meth:`Server.delay`
send a ping / a message       :meth:`Server.ping`, :meth:`Server.send`
close with a code and reason  :meth:`Server.close`
reset / half-close the TCP    :meth:`Server.reset`, :meth:`Server.half_close`
invalid UTF-8 / a violation   :meth:`Server.send_invalid_utf8`,
                              :meth:`Server.send_protocol_violation`
============================  ================================================

Records: :attr:`Server.requests` (:class:`Request`: target and headers),
:attr:`Server.frames` (:class:`ReceivedFrame`), :attr:`Server.messages`,
:attr:`Server.closes`, each keeping the newest ``max_records`` (10 000 by
default; :attr:`Server.dropped` counts the rest), and counters;
``wait_for...`` methods wait for them.
"""

from __future__ import annotations

from ._records import ReceivedFrame
from .server import VIOLATIONS, Request, Server

__all__ = ["Server", "Request", "ReceivedFrame", "VIOLATIONS"]
