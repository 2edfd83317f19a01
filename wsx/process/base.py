"""Processes: identity, names, links and exits shared by clients and supervisors.

A wsx *process* is an object with a life: it starts, it may be registered
under a name, it is linked to other processes, and it exits once with a
reason. When it exits, every linked process is told; what a process does with
that news is its own business (a supervisor restarts children, a client
terminates unless it traps exits).

Exit reasons follow Erlang: ``"normal"`` and ``"shutdown"`` are normal, as
are the WebSockex close reasons ``("local"|"remote", "normal")`` and
``("local"|"remote", 1000, reason)``; anything else is abnormal.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any

from ..errors import WSXError

__all__ = ["Process", "whereis", "resolve", "current_process", "is_normal_exit"]

_ids = itertools.count(1)
_registry: dict[str, Process] = {}
_registry_lock = threading.Lock()


class _Running:
    """What runs on one thread: ``process`` is the process whose code runs (None: none)."""

    __slots__ = ("process", "__weakref__")

    def __init__(self) -> None:
        self.process: Process | None = None


# Thread ident -> that thread's _Running, for the watchdog
# (wsx.process.watchdog), which looks at a loop thread from its own thread. An
# entry goes when its thread ends (the thread-local drops its _Running).
_running_by_thread: weakref.WeakValueDictionary[int, _Running] = weakref.WeakValueDictionary()


class _PerThread(threading.local):
    # One _Running per thread, made on the thread's first use: code that
    # switches the running process (every callback) reads the thread-local
    # once and then sets a slot.
    def __init__(self) -> None:
        self.running = _Running()
        _running_by_thread[threading.get_ident()] = self.running


_per_thread = _PerThread()


def running_slot(thread_id: int) -> _Running | None:
    """The :class:`_Running` of thread ``thread_id`` (None until it ran a process's code).

    Its ``process`` is the process whose code runs on that thread right now.
    """
    return _running_by_thread.get(thread_id)


def running() -> _Running:
    """This thread's :class:`_Running`."""
    return _per_thread.running


def is_normal_exit(reason: Any) -> bool:
    """True for exit reasons that do not call for a restart or propagate to links."""
    if reason in ("normal", "shutdown"):
        return True
    if type(reason) is tuple and reason:
        if reason[0] == "shutdown":
            return True
        if reason[0] in ("local", "remote") and len(reason) >= 2:
            return bool(reason[1] == "normal" or reason[1] == 1000)
    return False


class Process:
    """Base class of :class:`wsx.Client` and :class:`wsx.Supervisor` handles."""

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a process name must be a str, not {name!r}")
        self.id = next(_ids)
        self.name = name
        self._links: set[Process] = set()
        self._links_lock = threading.Lock()  # also guards _monitors, _watching and _down
        self._monitors: set[Any] = set()  # refs of the monitors watching this process
        self._watching: set[Any] = set()  # refs of this process's monitors of others
        self._down = False  # set (under the lock) once the exit has begun
        self._exited = threading.Event()
        self._exit_reason: Any = None
        if name is not None:
            with _registry_lock:
                other = _registry.get(name)
                if other is not None and other.alive:
                    raise ValueError(f"name {name!r} is already registered to {other!r}")
                _registry[name] = self

    # ----------------------------------------------------------------- state
    @property
    def alive(self) -> bool:
        """True until the process has exited."""
        return not self._exited.is_set()

    @property
    def exit_reason(self) -> Any:
        """Why the process exited (``None`` while it is alive)."""
        return self._exit_reason

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the process exits; return True if it did within ``timeout``."""
        return self._exited.wait(timeout)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<{type(self).__name__} #{self.id}{label}>"

    # ----------------------------------------------------------------- links
    def link(self, other: Process) -> None:
        """Link two processes: each is told when the other exits.

        As in Erlang, a link to a process that has exited is not kept: the
        live one of the two is told of the other's exit at once (with its
        exit reason). Linking twice is linking once.
        """
        if other is self:
            return
        # Both sets change under both locks, taken in a fixed order (two links
        # made at once never deadlock); _exit takes one lock at a time. A
        # process whose exit has begun (_down) is never added to a set: its
        # exit has already taken its links.
        first, second = (self, other) if self.id < other.id else (other, self)
        with first._links_lock, second._links_lock:
            dead = other if other._down else self if self._down else None
            if dead is None:
                self._links.add(other)
                other._links.add(self)
                return
        live = self if dead is other else other
        if not live._down:
            live._on_linked_exit(dead, dead.exit_reason)

    def unlink(self, other: Process) -> None:
        """Undo :meth:`link`."""
        with self._links_lock:
            self._links.discard(other)
        with other._links_lock:
            other._links.discard(self)

    def linked(self) -> list[Process]:
        """The processes linked to this one (none once it has exited)."""
        with self._links_lock:
            return list(self._links)

    def _on_linked_exit(self, other: Process, reason: Any) -> None:
        """A linked process exited (may be called from any thread). Override."""

    def _watch(self, ref: Any) -> bool:
        """Add a monitor (:mod:`wsx.process.monitors`); False if this process has exited."""
        with self._links_lock:
            if self._down:
                return False
            self._monitors.add(ref)
        return True

    def _unwatch(self, ref: Any) -> bool:
        """Remove a monitor; False if it was not there (fired or removed)."""
        with self._links_lock:
            if ref not in self._monitors:
                return False
            self._monitors.discard(ref)
        return True

    def _hold(self, ref: Any) -> bool:
        """Keep ``ref``, a monitor of another process by this one; False if this one has exited.

        At this process's exit each monitor it holds is removed from its
        target (as in Erlang), which would otherwise keep it, and this
        process, until the target's own exit.
        """
        with self._links_lock:
            if self._down:
                return False
            self._watching.add(ref)
        return True

    def _release(self, ref: Any) -> None:
        """Forget ``ref`` (it fired, or was demonitored)."""
        with self._links_lock:
            self._watching.discard(ref)

    def _exit(self, reason: Any) -> None:
        """Mark the process as exited and tell the linked ones (once)."""
        if self._exited.is_set():
            return
        self._exit_reason = reason
        if self.name is not None:
            with _registry_lock:
                if _registry.get(self.name) is self:
                    del _registry[self.name]
        with self._links_lock:
            links = list(self._links)
            self._links.clear()
            monitors = list(self._monitors)
            self._monitors.clear()
            watching = list(self._watching)
            self._watching.clear()
            self._down = True
        self._exited.set()
        for ref in watching:
            ref.target._unwatch(ref)
        for ref in monitors:
            ref.fire(reason)
        for other in links:
            with other._links_lock:
                other._links.discard(self)
            other._on_linked_exit(self, reason)


def whereis(name: str) -> Process | None:
    """The live process registered under ``name``, or ``None``."""
    with _registry_lock:
        proc = _registry.get(name)
    return proc if proc is not None and proc.alive else None


def resolve(target: Process | str) -> Process:
    """A process handle from a handle or a registered name; raises for unknown names."""
    if isinstance(target, Process):
        return target
    if isinstance(target, str):
        proc = whereis(target)
        if proc is None:
            raise NoProcessError(target)
        return proc
    raise TypeError(f"expected a wsx client handle or a registered name, got {target!r}")


class NoProcessError(WSXError, LookupError):
    """No live process is registered under the given name, or the process is not alive.

    ``process_name`` is the name looked up (None for a handle); ``reason`` is
    the exit reason of a process that ended (None for a name).
    """

    def __init__(self, name: str | Process, reason: Any = None) -> None:
        if isinstance(name, Process):
            self.process_name: str | None = None
            self.reason = reason
            super().__init__(f"{name!r} is not alive (exit reason {reason!r})")
            return
        self.process_name = name
        self.reason = reason
        super().__init__(f"no live wsx process is registered as {name!r}")


def current_process() -> Process | None:
    """The process whose code runs in this thread right now (a callback or a supervisor)."""
    return _per_thread.running.process


def _set_current(proc: Process | None) -> Process | None:
    state = _per_thread.running
    previous = state.process
    state.process = proc
    return previous
