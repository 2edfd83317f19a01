"""Supervision trees, after OTP's ``Supervisor``.

A :class:`Supervisor` starts its children in order, links to them, and when
one exits it applies its strategy:

* ``"one_for_one"``: restart only the child that exited;
* ``"one_for_all"``: stop the others (in reverse start order), restart all;
* ``"rest_for_one"``: stop the children started after it, restart it and them.

Each child has a restart value: ``"permanent"`` (always restarted),
``"transient"`` (restarted after an abnormal exit only) or ``"temporary"``
(never restarted). More than ``max_restarts`` restarts within ``max_seconds``
stop the supervisor with reason ``("shutdown", "reached_max_restart_intensity")``
(after stopping its children); a parent supervisor sees that exit like any
other child's.

Child specs:

* ``(Module, arg)``: ``Module.child_spec(arg)`` if it exists, else start with
  ``Module.start_link(arg)`` (the seed's ``{MyApp.Client, [...]}``);
* ``Module``: the same with ``arg = []``;
* a dict with ``id``, ``start`` (a callable, or ``(callable, args)``),
  optional ``restart`` (default ``"permanent"``), ``shutdown`` (seconds to
  wait for the child to stop before it is killed, default 5; 0: killed at
  once) and ``type`` (``"worker"`` or ``"supervisor"``).

The start function must return a process handle (a :class:`wsx.Client` or a
:class:`Supervisor`). Supervisors run their restarts in a thread of their
own, so a child's ``start_link`` may wait for its connection without blocking
any event loop.

Stopping a child (a strategy, :meth:`Supervisor.terminate_child`,
:meth:`Supervisor.stop`): a client is asked to stop (close handshake,
``terminate("shutdown", state)``) and, as in OTP, one not ended within its
``shutdown`` seconds is killed (:meth:`wsx.Client.kill`: its connection
dropped, exit reason ``"killed"``, ``terminate`` not run). The kill runs on
the client's loop: a synchronous callback that blocks that loop cannot be
interrupted from another thread, so the kill runs once that callback has
returned (after what the loop had already taken up), and the supervisor
waits for it, warning meanwhile; it never starts a second copy of a child.
A child supervisor is stopped with its own ``stop`` and waited for (its
children are killed after their ``shutdown``).

The blocking methods (``start_link``, ``start_child``, ``terminate_child``,
``restart_child``, ``delete_child``, ``join``) wait for the supervisor's
children, so they raise :class:`wsx.CallingSelfError` on the thread of a
loop its children run on (a callback there): the ``loop`` it starts its
children on (by default the default loop), or the loop of a live child.
:meth:`Supervisor.stop` there only starts the stop, as :func:`wsx.stop`
from a callback does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .._guard import must_propagate
from ..errors import CallingSelfError, WSXError
from ..io import loop as _loops
from ..io.loop import Loop
from .api import asyncio_host
from .base import Process, _set_current, current_process, is_normal_exit
from .client import Client
from .shutdown import stop_client, wait_for_end

__all__ = ["Supervisor", "SupervisorError"]

logger = logging.getLogger("wsx.process.supervisor")

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
# The public methods the internal ones of _request serve (for error messages).
_PUBLIC = {"_add_child": "start_child", "_terminate_child": "terminate_child",
           "_restart_child": "restart_child", "_delete_child": "delete_child"}
RESTARTS = ("permanent", "transient", "temporary")


class SupervisorError(WSXError):
    """A supervisor could not start, or a child spec is invalid."""


class _Child:
    __slots__ = ("id", "start", "args", "restart", "shutdown", "type", "proc")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.id = spec["id"]
        start = spec["start"]
        if isinstance(start, tuple):
            if len(start) != 2 or not callable(start[0]):
                raise SupervisorError(f"child {self.id!r}: start must be a callable or "
                                      f"(callable, args), not {start!r}")
            self.start, args = start
            self.args = tuple(args) if isinstance(args, (list, tuple)) else (args,)
        elif callable(start):
            self.start, self.args = start, ()
        else:
            raise SupervisorError(f"child {self.id!r}: start must be callable, not {start!r}")
        self.restart = spec.get("restart", "permanent")
        if self.restart not in RESTARTS:
            raise SupervisorError(f"child {self.id!r}: restart must be one of {RESTARTS}, "
                                  f"not {self.restart!r}")
        shutdown = spec.get("shutdown", 5.0)
        if (not isinstance(shutdown, (int, float)) or isinstance(shutdown, bool)
                or not shutdown >= 0):
            raise SupervisorError(f"child {self.id!r}: shutdown must be a number of seconds "
                                  f">= 0, not {shutdown!r}")
        self.shutdown = float(shutdown)
        self.type = spec.get("type", "worker")
        self.proc: Process | None = None


def _normalize(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        if "id" not in spec or "start" not in spec:
            raise SupervisorError(f"a dict child spec needs 'id' and 'start': {spec!r}")
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        module, arg = spec
    elif isinstance(spec, type) or hasattr(spec, "start_link"):
        module, arg = spec, []
    else:
        raise SupervisorError(f"invalid child spec {spec!r}: use (Module, arg), Module or a dict")
    child_spec = getattr(module, "child_spec", None)
    if callable(child_spec):
        out = child_spec(arg)
        if not isinstance(out, dict):
            raise SupervisorError(f"{module!r}.child_spec({arg!r}) returned {out!r}, not a dict")
        return out
    start_link = getattr(module, "start_link", None)
    if not callable(start_link):
        raise SupervisorError(f"{module!r} has neither child_spec nor start_link")
    return {"id": module, "start": (start_link, (arg,))}


class Supervisor(Process):
    """A running supervisor; create it with :meth:`Supervisor.start_link`."""

    def __init__(self, children: Sequence[Any], strategy: str, max_restarts: int,
                 max_seconds: float, name: str | None, loop: Any = None) -> None:
        if strategy not in STRATEGIES:
            raise SupervisorError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
        if max_restarts < 0 or max_seconds <= 0:
            raise SupervisorError(
                f"max_restarts must be >= 0 and max_seconds > 0 "
                f"({max_restarts!r}, {max_seconds!r})")
        specs = [_Child(_normalize(spec)) for spec in children]
        ids = [c.id for c in specs]
        for i, child_id in enumerate(ids):
            if child_id in ids[:i]:
                raise SupervisorError(f"duplicate child id {child_id!r}")
        super().__init__(name)
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._children = specs
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._restarts: deque[float] = deque()
        self._thread: threading.Thread | None = None
        self._parent: Process | None = None
        self._cancelled = False  # the start was cancelled (wsx.aio.Supervisor.start_link)
        #: Where its children's clients run unless their start says otherwise
        #: (a wsx.Loop or an asyncio loop's host); None: the default loop.
        self.children_loop = _host(loop)

    # ----------------------------------------------------------------- API
    @classmethod
    def start_link(cls, children: Sequence[Any], strategy: str = "one_for_one",
                   max_restarts: int = 3, max_seconds: float = 5, name: str | None = None,
                   loop: Any = None) -> Supervisor:
        """Start a supervisor and its children (in order); return when all are started.

        Linked to the current process (a parent supervisor). Raises
        :class:`SupervisorError` if a child fails to start (the children
        already started are stopped first). ``loop``: where the clients its
        children start run unless their start names a loop: a
        :class:`wsx.Loop`, or an asyncio event loop (which must be running
        and not blocked meanwhile: from asyncio code use
        :meth:`wsx.aio.Supervisor.start_link`);
        by default the parent supervisor's, else the default loop.
        Raises :class:`wsx.CallingSelfError` on that loop's thread (from a
        callback of a client on it): waiting for the children would block it.
        """
        ready = threading.Event()
        sup, error = cls._spawn(children, strategy, max_restarts, max_seconds, name, loop,
                                ready, check=True)
        ready.wait()
        sup._raise_start_error(error)
        return sup

    @classmethod
    def _spawn(cls, children: Sequence[Any], strategy: str, max_restarts: int,
               max_seconds: float, name: str | None, loop: Any, ready: Any, *,
               check: bool) -> tuple[Supervisor, list[BaseException]]:
        """Make the supervisor, link it to the current process and start its thread.

        ``ready.set()`` is called once its children are started or its start
        failed (the error then in the returned list). ``check``: raise
        :class:`CallingSelfError` on the thread of the loop its children start on.
        """
        parent = current_process()
        if loop is None:
            loop = getattr(parent, "children_loop", None)
        host = _host(loop)
        if check:
            _refuse_on(_default_host(host), "start_link")
        sup = cls(children, strategy, max_restarts, max_seconds, name, host)
        error: list[BaseException] = []
        if parent is not None:
            # Linked before its children start, as a client is before it
            # connects: an exit of either during the start is not missed.
            sup._parent = parent
            sup.link(parent)
        sup._thread = threading.Thread(target=sup._run, args=(ready, error),
                                       name=f"wsx-supervisor-{sup.id}", daemon=True)
        sup._thread.start()
        return sup, error

    def _raise_start_error(self, error: list[BaseException]) -> None:
        if error:
            raise SupervisorError(
                f"{self!r} could not start its children: {error[0]}") from error[0]

    def _cancel_start(self) -> None:
        """The start was given up (a cancelled ``wsx.aio.Supervisor.start_link``): stop
        the child being started, the ones started, then the supervisor (any thread)."""
        self._cancelled = True
        self._queue.put(("stop", "shutdown"))  # read if the start completes meanwhile
        with self._lock:
            started = {c.proc for c in self._children if c.proc is not None}
        # The child being started is linked already (start_link links
        # first): once it ends, its start raises and the supervisor stops the
        # others and exits.
        for proc in self.linked():
            if proc is self._parent or proc in started:
                continue
            if isinstance(proc, Client):
                proc.loop.call_soon_threadsafe(proc.stopping.ask, "shutdown")
            elif isinstance(proc, Supervisor):
                proc._cancel_start()

    @classmethod
    def child_spec(cls, children: Sequence[Any], *, id: Any = None, restart: str = "permanent",
                   **opts: Any) -> dict[str, Any]:
        """A spec to nest a supervisor of ``children`` under another supervisor."""
        return {"id": id if id is not None else cls, "type": "supervisor", "restart": restart,
                "start": lambda: cls.start_link(children, **opts), "shutdown": 30.0}

    def which_children(self) -> list[tuple[Any, Process | None, str, str]]:
        """``(id, process or None, type, restart)`` for each child, in start order."""
        with self._lock:
            return [(c.id, c.proc if c.proc is not None and c.proc.alive else None,
                     c.type, c.restart) for c in self._children]

    def count_children(self) -> dict[str, int]:
        """Counts of specs, live children, workers and supervisors."""
        kids = self.which_children()
        return {"specs": len(kids), "active": sum(1 for k in kids if k[1] is not None),
                "workers": sum(1 for k in kids if k[2] == "worker"),
                "supervisors": sum(1 for k in kids if k[2] == "supervisor")}

    # ------------------------------------------------------ dynamic children
    def start_child(self, spec: Any) -> Process:
        """Add a child (any spec form ``start_link`` takes) and start it; its process.

        It then follows the supervisor's strategy and restart rules like the
        children given at the start (after them in start order). Raises
        :class:`SupervisorError` for an invalid spec, an id in use, or a
        start that fails (its error as ``__cause__``; the spec is not kept).
        """
        child = _Child(_normalize(spec))
        proc: Process = self._request(self._add_child, child)
        return proc

    def terminate_child(self, child_id: Any) -> None:
        """Stop the child ``child_id`` (it is not restarted); a temporary child's spec goes too.

        :meth:`restart_child` starts it again, :meth:`delete_child` removes its spec.
        """
        self._request(self._terminate_child, child_id)

    def restart_child(self, child_id: Any) -> Process:
        """Start again the child ``child_id``, stopped by :meth:`terminate_child`; its process."""
        proc: Process = self._request(self._restart_child, child_id)
        return proc

    def delete_child(self, child_id: Any) -> None:
        """Remove the spec of the stopped child ``child_id``."""
        self._request(self._delete_child, child_id)

    def stop(self, reason: Any = "normal", timeout: float | None = 30.0) -> bool:
        """Stop the children (in reverse order), then the supervisor; wait for it.

        True once the supervisor has exited within ``timeout`` seconds. A
        child not ended within its ``shutdown`` is killed (see the module
        documentation). On the thread of a loop its children run on (from a
        callback there) it only starts the stop and returns False, as
        :func:`wsx.stop` does from a callback: the children's stop needs
        that thread.
        """
        here = self._loop_here()
        if self.alive:
            self._queue.put(("stop", reason))
        if here is not None:
            return not self.alive
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the supervisor exits; True if it did within ``timeout``.

        Raises :class:`wsx.CallingSelfError` on the thread of a loop its
        children run on: their stop, which its exit waits for, needs that thread.
        """
        if not self._exited.is_set():
            self._refuse_here("join")
        return super().join(timeout)

    # ------------------------------------------------------------ internals
    def _loop_here(self) -> Any:
        """The loop whose thread this is, when the supervisor's work may wait for it.

        That is the loop it starts its children on (the default loop unless
        ``loop=`` said otherwise), or the loop of a live child (a client, or
        a child supervisor's). None: waiting here blocks no child.
        """
        host = _default_host(self.children_loop)
        if host is not None and host.in_loop_thread():
            return host
        with self._lock:
            procs = [c.proc for c in self._children if c.proc is not None]
        for proc in procs:
            if isinstance(proc, Client):
                if proc.alive and proc.loop.in_loop_thread():
                    return proc.loop
            elif isinstance(proc, Supervisor) and proc.alive:
                found = proc._loop_here()
                if found is not None:
                    return found
        return None

    def _refuse_here(self, what: str) -> None:
        _refuse_on(self._loop_here(), what)

    def _request(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Run fn(*args) on the supervisor's thread, between two exits it handles.
        if current_process() is self:
            return fn(*args)
        self._refuse_here(_PUBLIC.get(getattr(fn, "__name__", ""), "a call"))
        box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
        self._queue.put(("call", fn, args, box))
        while True:
            try:
                ok, value = box.get(timeout=0.1)
                break
            except queue.Empty:
                if not self.alive:
                    raise SupervisorError(f"{self!r} is not running "
                                          f"(exit reason {self.exit_reason!r})") from None
        if not ok:
            raise value
        return value

    def _find(self, child_id: Any) -> _Child:
        for c in self._children:
            if c.id == child_id:
                return c
        raise SupervisorError(f"{self!r} has no child {child_id!r}")

    def _add_child(self, child: _Child) -> Process:
        if any(c.id == child.id for c in self._children):
            raise SupervisorError(f"{self!r} already has a child {child.id!r}")
        proc = self._start_or_raise(child)
        with self._lock:
            self._children.append(child)
        return proc

    def _terminate_child(self, child_id: Any) -> None:
        child = self._find(child_id)
        self._stop_children([child])
        if child.restart == "temporary":
            with self._lock:
                self._children.remove(child)

    def _restart_child(self, child_id: Any) -> Process:
        child = self._find(child_id)
        if child.proc is not None and child.proc.alive:
            raise SupervisorError(f"child {child_id!r} is running")
        return self._start_or_raise(child)

    def _delete_child(self, child_id: Any) -> None:
        child = self._find(child_id)
        if child.proc is not None and child.proc.alive:
            raise SupervisorError(f"child {child_id!r} is running: terminate_child it first")
        with self._lock:
            self._children.remove(child)

    def _on_linked_exit(self, other: Process, reason: Any) -> None:
        self._queue.put(("exit", other, reason))

    def _run(self, ready: threading.Event, error: list[BaseException]) -> None:
        _set_current(self)
        try:
            for child in self._children:
                if self._cancelled:
                    raise SupervisorError("the start was cancelled")
                self._start_child(child)
        except BaseException as exc:  # noqa: BLE001 - reported to the starter
            error.append(exc)
            self._stop_children(self._children)
            ready.set()
            self._exit(("shutdown", "failed_to_start_child"))
            return
        ready.set()
        while True:
            msg = self._queue.get()
            if msg[0] == "call":
                _, fn, args, box = msg
                try:
                    box.put((True, fn(*args)))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    box.put((False, exc))
                continue
            if msg[0] == "stop":
                self._stop_children(self._children)
                self._exit(msg[1])
                return
            _, proc, reason = msg
            found = next((c for c in self._children if c.proc is proc), None)
            if found is None:
                if proc is self._parent and not is_normal_exit(reason):
                    self._stop_children(self._children)
                    self._exit(("shutdown", ("linked_exit", proc, reason)))
                    return
                # A child already replaced or stopped (its exit was queued
                # before the supervisor unlinked it), or a start that failed:
                # not a reason to act (OTP ignores such exits too).
                logger.debug("%r: ignoring the exit of %r (not a current child): %r",
                             self, proc, reason)
                continue
            if not self._child_exited(found, reason):
                return

    def _start_or_raise(self, child: _Child) -> Process:
        """Start ``child`` for start_child / restart_child: a failure is the caller's
        SupervisorError (the supervisor goes on)."""
        try:
            self._start_child(child)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller (wsx._guard)
            if must_propagate(exc):
                raise
            raise SupervisorError(f"child {child.id!r} failed to start: {exc}") from exc
        assert child.proc is not None
        return child.proc

    def _start_child(self, child: _Child) -> None:
        proc = child.start(*child.args)
        if not isinstance(proc, Process):
            raise SupervisorError(f"child {child.id!r}: start returned {proc!r}, not a process")
        child.proc = proc
        with self._links_lock:
            linked = proc in self._links
        if not linked:
            # Not linked by its start (wsx.start_link links to the current
            # process: this one), or it has ended already: then link() tells
            # of its exit at once and keeps nothing (an exit told twice is
            # ignored the second time: it is no longer the child's process).
            self.link(proc)

    def _stop_children(self, children: Sequence[_Child]) -> None:
        for child in reversed(children):
            proc = child.proc
            if proc is None:
                continue
            self.unlink(proc)
            if proc.alive:
                _stop_process(proc, child.shutdown)
            child.proc = None  # ended: which_children showed it alive until now

    def _child_exited(self, child: _Child, reason: Any) -> bool:
        """Apply the strategy; False when the supervisor gave up and exited."""
        child.proc = None
        logger.info("%r: child %r exited: %r", self, child.id, reason)
        if child.restart == "temporary":
            with self._lock:
                self._children.remove(child)
            return True
        if child.restart == "transient" and is_normal_exit(reason):
            return True
        index = self._children.index(child)
        if self.strategy == "one_for_one":
            group = [child]
        elif self.strategy == "one_for_all":
            group = list(self._children)
        else:
            group = self._children[index:]
        others = [c for c in group if c is not child]
        self._stop_children(others)
        # Temporary siblings stopped by the strategy are not restarted either.
        dropped = [c for c in others if c.restart == "temporary"]
        if dropped:
            with self._lock:
                for c in dropped:
                    self._children.remove(c)
            group = [c for c in group if c.restart != "temporary"]
        return self._restart(group)

    def _restart(self, group: list[_Child]) -> bool:
        while True:
            if not self._count_restart():
                logger.error("%r: reached the restart intensity (%d in %g s); shutting down",
                             self, self.max_restarts, self.max_seconds)
                self._stop_children(self._children)
                self._exit(("shutdown", "reached_max_restart_intensity"))
                return False
            try:
                for c in group:
                    if c.proc is None or not c.proc.alive:
                        self._start_child(c)
                return True
            except BaseException as exc:  # noqa: BLE001 - a start function failed (wsx._guard)
                if must_propagate(exc):
                    raise
                logger.error("%r: restarting %r failed: %s", self,
                             [c.id for c in group], exc)

    def _count_restart(self) -> bool:
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and now - self._restarts[0] > self.max_seconds:
            self._restarts.popleft()
        return len(self._restarts) <= self.max_restarts


def _host(loop: Any) -> Any:
    if loop is None or isinstance(loop, Loop):
        return loop
    host = asyncio_host(loop)
    if host is None:
        raise TypeError(f"loop must be a wsx.Loop or an asyncio event loop, not {loop!r}")
    return host


def _default_host(host: Any) -> Any:
    """``host``, or the default loop if it exists (not made here) when ``host`` is None."""
    return host if host is not None else _loops._default_loop


def _refuse_on(host: Any, what: str) -> None:
    """CallingSelfError if this is the thread of ``host`` (a loop the call would wait for)."""
    if host is not None and host.in_loop_thread():
        raise CallingSelfError(
            f"Supervisor.{what}", f"called on the thread of {host!r}, where the supervisor's "
            "children run: waiting for them would block it (call it from another thread; "
            "from asyncio code use wsx.aio.Supervisor)")


def _stop_process(proc: Process, timeout: float) -> None:
    """Stop a child; kill a client not ended within ``timeout`` s; return once it ended."""
    if isinstance(proc, Supervisor):
        if not proc.stop("shutdown", timeout):
            # Its own children are killed after their shutdown: it ends
            # unless a callback blocks a loop. Never left running.
            wait_for_end(proc, f"not stopped within {timeout:g} s (its shutdown)")
        return
    if isinstance(proc, Client):
        stop_client(proc, timeout)
        return
    stop: Callable[..., Any] | None = getattr(proc, "stop", None)
    if stop is not None:
        stop()
