"""Telemetry: attach handlers to the events wsx clients emit.

Events (names are tuples, as in Erlang's ``:telemetry``):

========================================  =============================================
``("wsx", "connected")``                  handshake done
``("wsx", "disconnected")``               connection lost or closed; + reason,
                                          attempt_number
``("wsx", "frame", "received")``          a frame for a callback; + frame
``("wsx", "frame", "sent")``              ``send_frame`` and replies (not the default
                                          handle_ping's pong); + frame
``("wsx", "terminate")``                  the client process ends; + reason
========================================  =============================================

As WebSockex's: measurements have ``time`` (``time.time()``; frames also
``size``), metadata have ``client``, ``module`` and ``conn``, plus the
fields above.

Handlers are called as ``handler(event, measurements, metadata, config)`` on
the client's loop thread; keep them fast. A handler that raises is detached
and logged, as ``:telemetry`` does. With no handler attached to an event,
emitting it costs one dictionary lookup.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ._guard import must_propagate

__all__ = ["attach", "attach_many", "detach", "execute", "list_handlers", "EVENTS"]

logger = logging.getLogger("wsx.telemetry")

Handler = Callable[[tuple[str, ...], dict[str, Any], dict[str, Any], Any], Any]

EVENTS: tuple[tuple[str, ...], ...] = (
    ("wsx", "connected"),
    ("wsx", "disconnected"),
    ("wsx", "frame", "received"),
    ("wsx", "frame", "sent"),
    ("wsx", "terminate"),
)

_lock = threading.Lock()
# event -> tuple of (handler_id, handler, config); replaced, never mutated.
_handlers: dict[tuple[str, ...], tuple[tuple[Any, Handler, Any], ...]] = {}


def attach(handler_id: Any, event: tuple[str, ...], handler: Handler, config: Any = None) -> None:
    """Attach ``handler`` to one event under ``handler_id`` (unique)."""
    attach_many(handler_id, [event], handler, config)


def attach_many(
    handler_id: Any, events: Iterable[tuple[str, ...]], handler: Handler, config: Any = None
) -> None:
    """Attach ``handler`` to several events under one ``handler_id``."""
    events = [tuple(e) for e in events]
    for event in events:
        if event not in EVENTS:
            raise ValueError(f"unknown telemetry event {event!r}; known: {EVENTS!r}")
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {handler!r}")
    with _lock:
        if any(hid == handler_id for entries in _handlers.values() for hid, _, _ in entries):
            raise ValueError(f"telemetry handler id {handler_id!r} is already attached")
        for event in events:
            _handlers[event] = _handlers.get(event, ()) + ((handler_id, handler, config),)


def detach(handler_id: Any) -> bool:
    """Detach every event of ``handler_id``; return True if it was attached."""
    found = False
    with _lock:
        for event, entries in list(_handlers.items()):
            kept = tuple(e for e in entries if e[0] != handler_id)
            if len(kept) != len(entries):
                found = True
                if kept:
                    _handlers[event] = kept
                else:
                    del _handlers[event]
    return found


def list_handlers() -> list[tuple[Any, tuple[str, ...]]]:
    """``(handler_id, event)`` pairs currently attached."""
    with _lock:
        return [(hid, event) for event, entries in _handlers.items() for hid, _, _ in entries]


def execute(event: tuple[str, ...], measurements: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Call the handlers attached to ``event``."""
    entries = _handlers.get(event)
    if not entries:
        return
    for handler_id, handler, config in entries:
        try:
            handler(event, measurements, metadata, config)
        except BaseException as exc:  # noqa: BLE001 - the handler failed (see wsx._guard)
            logger.error("telemetry handler %r failed on %r; detaching it", handler_id, event,
                         exc_info=exc)
            detach(handler_id)
            if must_propagate(exc):
                raise


def has_handlers(event: tuple[str, ...]) -> bool:
    """True when some handler is attached to ``event`` (a cheap check for hot paths)."""
    return event in _handlers
