"""A supervisor's child that must end: asked to stop, killed past its ``shutdown``.

A client child is asked to stop (close handshake, ``terminate("shutdown",
state)``) and, as in OTP, killed if it has not ended within its
``shutdown`` seconds (at once for 0, OTP's ``brutal_kill``). The kill runs
on the client's loop, so the supervisor then waits for the child's end,
however long (warning every :data:`KILL_PATIENCE` seconds): a second copy of
a child never starts while the first one runs. :mod:`wsx.process.supervisor`
stops its children with these, and its logger tells of the kills.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .api import stop_within
from .base import Process

if TYPE_CHECKING:
    from .client import Client

__all__ = ["KILL_PATIENCE", "stop_client", "wait_for_end"]

# The supervisor's log: these are its warnings about its children.
logger = logging.getLogger("wsx.process.supervisor")

#: Seconds between the warnings about a killed child that has not ended yet.
KILL_PATIENCE = 5.0


def stop_client(proc: Client, timeout: float) -> None:
    """Stop the client ``proc``; kill it if not ended within ``timeout`` s; return once it ended."""
    # shutdown 0: killed at once (OTP's brutal_kill).
    if (timeout <= 0 or not stop_within(proc, "shutdown", timeout, None)) and proc.alive:
        _kill(proc, timeout)


def _kill(proc: Client, timeout: float) -> None:
    """Kill the client ``proc`` on its loop (as OTP's ``exit(Child, kill)``); wait for its end."""
    logger.warning("%r not stopped within %g s (its shutdown): killed", proc, timeout)
    proc.loop.call_soon_threadsafe(proc.kill, "killed")
    wait_for_end(proc, "killed")


def wait_for_end(proc: Process, what: str) -> None:
    """Wait until ``proc`` has ended, however long; ``what``: why, for the warnings."""
    # Unbounded, as OTP's supervisor waits for a killed child's exit: a
    # second copy of the child must not start while this one runs. It
    # ends unless a synchronous callback blocks its loop; that can only be
    # waited out (warning, so that the culprit shows).
    waited = 0.0
    loop = getattr(proc, "loop", None)
    while True:
        if loop is not None and not loop.running:
            # Nothing of it runs any more: it ends here (if its loop runs
            # again, the kill posted to it drops the connection).
            proc._exit("killed")
            return
        if proc.join(KILL_PATIENCE):
            return
        waited += KILL_PATIENCE
        logger.warning("%r %s, still running %g s later: a callback blocks its loop; "
                       "waiting for it to return (a child never runs twice)", proc, what, waited)
