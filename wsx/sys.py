"""Debugging and introspection of running clients, after OTP's ``:sys`` module.

Every function takes a client handle or its registered name, runs on the
client's loop thread, and is safe to call from any thread. They work while
the client is suspended (as system messages do in OTP). Each takes
``timeout=`` (seconds, default 5 as in ``:sys``; ``None`` waits as long as it
takes): when the loop does not get to the request in time (a callback holds
it), :class:`wsx.TimeoutExpired` is raised and the request is dropped, never
run later.

>>> wsx.sys.trace(client, True)      # print *DBG* lines
>>> wsx.sys.get_state(client)        # the callback module's state
>>> wsx.sys.statistics(client, True); wsx.sys.statistics(client)
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import BadResponseError, WSXError
from .process.callbacks import resolve_module
from .process.client import Client, client_of
from .process.debug import DEFAULT_LOG_SIZE, DebugState, format_event, new_statistics
from .process.loopcall import run_on_loop

__all__ = [
    "trace",
    "log",
    "statistics",
    "get_state",
    "replace_state",
    "get_status",
    "suspend",
    "resume",
    "change_code",
    "log_to_file",
    "install",
    "remove",
    "no_debug",
]


def _debug(c: Client) -> DebugState:
    dbg = c.debug
    if dbg is None:
        dbg = DebugState()
        c.set_debug(dbg)
    return dbg


def _settle(c: Client) -> None:
    # Statistics may have been switched: the client takes the state again
    # (or drops it once nothing is on, so that it skips all debug work).
    dbg = c.debug
    c.set_debug(dbg if dbg is not None and dbg.active else None)


def trace(client: Client | str, flag: bool, timeout: float | None = 5.0) -> None:
    """Turn printing of ``*DBG*`` trace lines (to stderr) on or off."""

    def run(c: Client) -> None:
        _debug(c).trace = bool(flag)
        _settle(c)

    _on(client, run, timeout)


def log(client: Client | str, flag: bool | int | str = "get",
        timeout: float | None = 5.0) -> Any:
    """Keep the last events of a client.

    ``True`` keeps the last 10, an int ``N`` the last N, ``False`` stops;
    ``"get"`` returns the kept events as ``(timestamp, text)`` pairs and
    ``"print"`` prints them.
    """

    def run(c: Client) -> Any:
        dbg = _debug(c)
        if flag == "get" or flag == "print":
            entries = [(ts, format_event(kind, args)) for ts, kind, args in (dbg.log or ())]
            _settle(c)
            if flag == "print":
                for ts, text in entries:
                    print(f"*DBG* {c!r} {time.strftime('%H:%M:%S', time.localtime(ts))} {text}")
                return None
            return entries
        if flag is False:
            dbg.log = None
        elif flag is True:
            dbg.log = deque(maxlen=DEFAULT_LOG_SIZE)
        elif isinstance(flag, int) and flag > 0:
            dbg.log = deque(maxlen=flag)
        else:
            raise ValueError(
                f"log flag must be True, False, a positive int, 'get' or 'print': {flag!r}"
            )
        _settle(c)
        return None

    return _on(client, run, timeout)


def statistics(client: Client | str, flag: bool | str = "get",
               timeout: float | None = 5.0) -> Any:
    """Collect statistics: ``True`` starts, ``False`` stops, ``"get"`` returns them.

    The statistics dict holds ``start_time``, ``frames_in``, ``frames_out``,
    ``bytes_in``, ``bytes_out`` (on the wire), ``messages_in`` (casts and
    infos), ``reconnects``, ``slow_callbacks`` (callbacks that held the loop
    longer than its ``slow_callback``, see :mod:`wsx.process.watchdog`),
    ``connected_time`` (seconds connected, including the current connection)
    and ``current_time``. ``"get"`` returns ``None``
    when statistics are off.
    """

    def run(c: Client) -> Any:
        dbg = _debug(c)
        if flag == "get":
            stats = dbg.stats
            _settle(c)
            if stats is None:
                return None
            out = dict(stats)
            since = out.pop("connected_since")
            if since is not None:
                out["connected_time"] += time.monotonic() - since
            out["current_time"] = time.time()
            return out
        if flag is True:
            dbg.stats = new_statistics()
            if c.connection_state in ("open", "closing"):
                dbg.stats["connected_since"] = time.monotonic()
        elif flag is False:
            dbg.stats = None
        else:
            raise ValueError(f"statistics flag must be True, False or 'get': {flag!r}")
        _settle(c)
        return None

    return _on(client, run, timeout)


def log_to_file(client: Client | str, path: str | os.PathLike[str] | None,
                timeout: float | None = 5.0) -> None:
    """Append the client's ``*DBG*`` lines to the file ``path``; ``None`` stops (closes it)."""

    def run(c: Client) -> None:
        _debug(c).open_log_file(path)
        _settle(c)

    _on(client, run, timeout)


def install(client: Client | str, fn: Callable[[Any, Any, Any], Any], fn_state: Any,
            timeout: float | None = 5.0) -> None:
    """Call ``fn(fn_state, (kind, args), client)`` for every debug event (OTP's ``sys:install``).

    ``fn`` returns its next state, or ``"done"`` to be removed; one that
    raises is removed (and logged). Installing ``fn`` again replaces it.
    """
    if not callable(fn):
        raise TypeError(f"wsx.sys.install takes a function, not {fn!r}")

    def run(c: Client) -> None:
        _debug(c).install(fn, fn_state)
        _settle(c)

    _on(client, run, timeout)


def remove(client: Client | str, fn: Callable[[Any, Any, Any], Any],
           timeout: float | None = 5.0) -> None:
    """Stop calling the debug function ``fn`` (installed with :func:`install`)."""

    def run(c: Client) -> None:
        _debug(c).remove(fn)
        _settle(c)

    _on(client, run, timeout)


def no_debug(client: Client | str, timeout: float | None = 5.0) -> None:
    """Turn every debug feature off: trace, log, statistics, log file, debug functions."""

    def run(c: Client) -> None:
        dbg = c.debug
        if dbg is not None:
            dbg.close()
        c.set_debug(None)

    _on(client, run, timeout)


def get_state(client: Client | str, timeout: float | None = 5.0) -> Any:
    """The callback module's current state."""
    return _on(client, lambda c: c.dispatcher.state, timeout)


def replace_state(client: Client | str, fun: Callable[[Any], Any],
                  timeout: float | None = 5.0) -> Any:
    """Replace the state with ``fun(state)``; return the new state.

    If ``fun`` raises, the state is unchanged and the exception propagates.
    """

    def run(c: Client) -> Any:
        c.dispatcher.state = fun(c.dispatcher.state)
        return c.dispatcher.state

    return _on(client, run, timeout)


def get_status(client: Client | str, timeout: float | None = 5.0) -> dict[str, Any]:
    """A description of the client: module, connection, debug flags and (formatted) state."""

    def run(c: Client) -> dict[str, Any]:
        state = c.dispatcher.cb.format_status("normal", c.dispatcher.state)
        dbg = c.debug
        return {
            "client": c,
            "name": c.name,
            "module": c.module,
            "connection_state": c.connection_state,
            "url": str(c.conn.url),
            "suspended": c.suspended,
            "pending_messages": c.pending_messages,
            "debug": {
                "trace": bool(dbg and dbg.trace),
                "log": bool(dbg and dbg.log is not None),
                "statistics": bool(dbg and dbg.stats is not None),
            },
            "state": state,
        }

    status: dict[str, Any] = _on(client, run, timeout)
    return status


def suspend(client: Client | str, timeout: float | None = 5.0) -> None:
    """Stop handling frames and messages; they wait until :func:`resume`."""
    _on(client, lambda c: c.holds.suspend(), timeout)


def resume(client: Client | str, timeout: float | None = 5.0) -> None:
    """Handle again what waited while suspended, in order."""
    _on(client, lambda c: c.holds.resume(), timeout)


def change_code(client: Client | str, module: Any, extra: Any = None,
                timeout: float | None = 5.0) -> None:
    """Swap the callback module of a live client.

    The new module's ``code_change(old_vsn, state, extra)`` runs; on
    ``("ok", state)`` the client continues with the new module and state; on
    ``("error", reason)`` (or a raise) nothing changes and :class:`wsx.WSXError`
    is raised. ``old_vsn`` is the old module's ``vsn`` attribute (or ``None``).
    """

    def run(c: Client) -> None:
        new_cb = resolve_module(module)
        old_vsn = getattr(c.dispatcher.cb, "vsn", None)
        try:
            result = new_cb.code_change(old_vsn, c.dispatcher.state, extra)
        except Exception as exc:
            raise WSXError(f"code_change to {module!r} raised {exc!r}") from exc
        if type(result) is tuple and len(result) == 2 and result[0] == "ok":
            c.dispatcher.cb = new_cb
            c.module = module
            c.dispatcher.state = result[1]
            return
        if type(result) is tuple and len(result) == 2 and result[0] == "error":
            raise WSXError(f"code_change to {module!r} refused: {result[1]!r}")
        raise BadResponseError(module, "code_change", result)

    _on(client, run, timeout)


def _on(client: Client | str, fn: Callable[[Client], Any], timeout: float | None) -> Any:
    c = client_of(client)
    if not c.alive:
        raise WSXError(f"{c!r} has terminated ({c.exit_reason!r})")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"timeout must be a non-negative number of seconds or None, "
                         f"not {timeout!r}")
    return run_on_loop(c, fn, c, timeout=timeout, what=f"wsx.sys.{fn.__qualname__.split('.')[0]}")
