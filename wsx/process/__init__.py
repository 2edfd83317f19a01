"""The process layer: callback modules bound to connections, supervision, introspection.

``base`` (process identity, names, links, exits), ``callbacks`` (the
callback contract and its defaults), ``client`` (the client process and its
lifecycle), ``lifecycle`` (its states and transitions), ``upgrade`` (the
handshake phase of a connection), ``dispatcher`` (calling callbacks and
applying their results; compiled twin ``_dispatcher``), ``reader`` (the read
path; compiled twin ``_reader``), ``keepalive``, ``owner`` (what those parts
see of their client), ``api`` (``start_link``,
``send_frame``, ``cast``... and ``WebSocket``), ``supervisor``, ``debug``
and ``backoff``.
"""

from .base import NoProcessError, Process, current_process, is_normal_exit, resolve, whereis

__all__ = ["NoProcessError", "Process", "current_process", "is_normal_exit", "resolve", "whereis"]
