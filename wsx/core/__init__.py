"""The sans-I/O layer: bytes in, events and bytes out, no sockets, threads or clocks.

``frames`` (the RFC 6455 frame codec, compiled twin ``_codec``), ``protocol``
(one connection after the handshake), ``handshake`` and ``headers`` (the HTTP
upgrade), ``url``, ``proxy`` (proxy URLs and tunnel negotiations), ``utf8``,
``extensions`` (permessage-deflate) and ``conn`` (the connection options).
"""
