"""``async def`` callbacks: a client that awaits its callback before its next event.

On a client hosted by an asyncio loop (:func:`wsx.aio.start_link`) any
callback may be ``async def``. Its coroutine's first step runs at once, as a
plain callback would (:class:`AsyncCallback`): one that finishes without
waiting for anything (``await queue.put(x)`` on a queue with room) costs
no task and no hold. One that waits goes on as an asyncio task; until it
finishes the client is *busy*: it holds
its frames and messages, in order, and stops reading its socket (the
server feels backpressure, as with :func:`wsx.sys.suspend`), while other
clients and tasks on the loop run. When the coroutine returns, its result
is applied exactly as a plain callback's (``("ok", state)``, ``("reply",
frame, state)``, ``("close", ...)``; a bad shape crashes), then what was
held is handled. A coroutine that raises, or whose task is cancelled by
anyone but wsx, crashes the client (close 1011, ``terminate(("error",
exc))``); nothing of it reaches the loop's exception handler.

Each step of the coroutine runs as the client's process (``wsx.self()``
is the client, and a ``wsx.send_frame`` to itself raises
:class:`~wsx.errors.CallingSelfError`, as from a plain callback).

When the connection ends while a callback awaits (keepalive timeout,
broken socket, close timeout), wsx cancels the task and drops its result:
the connection it was for is gone. A :func:`wsx.stop` waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .._guard import must_propagate
from .base import _per_thread

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncCallback", "AsyncNotSupportedError", "is_awaitable"]


class AsyncNotSupportedError(TypeError):
    """An ``async def`` callback on a client whose loop is not an asyncio loop."""


def is_awaitable(result: Any) -> bool:
    """True for what an ``async def`` callback returns (a coroutine, or any awaitable)."""
    return hasattr(result, "__await__") and type(result) is not tuple


class AsyncCallback:
    """One ``async def`` callback of a client in progress (see the module documentation).

    ``finish(result)`` runs on the loop thread with what the coroutine
    returned; ``fail(exc)`` with what it raised (``asyncio.CancelledError``
    when its task was cancelled by someone else). Neither runs once
    :meth:`abandon` was called.
    """

    __slots__ = ("name", "client", "finish", "fail", "task", "abandoned", "ok", "_awaitable",
                 "_aloop", "_error", "_then")

    def __init__(self, client: Any, name: str, awaitable: Any,
                 finish: Callable[[Any], Any], fail: Callable[[BaseException], Any]) -> None:
        self.name = name
        self.client = client
        self.finish = finish
        self.fail = fail
        self.abandoned = False
        #: What ``finish`` returned (False once it failed), when it is done.
        self.ok = False
        self.task: asyncio.Task[Any] | None = None
        self._awaitable = awaitable
        self._error: BaseException | None = None
        self._then: list[Callable[[], Any]] = []
        aloop = self._aloop = getattr(client.loop, "aloop", None)
        if aloop is None:
            if hasattr(awaitable, "close"):
                awaitable.close()  # no "never awaited" warning: it is reported here
            raise AsyncNotSupportedError(
                f"{name} of {client.module!r} returned an awaitable (async def): async "
                f"callbacks run only on a client hosted by an asyncio loop "
                f"(wsx.aio.start_link / wsx.aio.start), not on {client.loop!r}")

    def start(self) -> bool:
        """Run the first step now. True if it is done (``finish`` or ``fail`` ran);
        False if it waits: its task goes on, and the caller holds the client."""
        step = _AsProcess(self, self._awaitable)
        self._awaitable = None
        try:
            first = step.send(None)
        except StopIteration as stop:
            self._settle(stop.value)
            return True
        step.prime(first)
        assert self._aloop is not None
        self.task = self._aloop.create_task(step)
        self.task.add_done_callback(self._done)
        return False

    def __repr__(self) -> str:
        return f"<wsx.AsyncCallback {self.name} of {self.client!r}>"

    def then(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once the result is applied (not if it crashed or was abandoned)."""
        self._then.append(callback)

    def abandon(self) -> None:
        """Cancel the task and drop its result (the connection it was for has ended)."""
        if not self.abandoned:
            self.abandoned = True
            if self.task is not None:
                self.task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        import asyncio  # loaded already: the task ran on it

        if self.abandoned:
            return
        if self._error is None and task.cancelled():
            self._error = asyncio.CancelledError()
        try:
            self._settle(None if self._error is not None else task.result())
        finally:
            # Then what was held meanwhile, in order (wsx.process.holds).
            self.client.holds.idle(self, self._then if self.ok else ())

    def _settle(self, result: Any) -> None:
        """Apply what the coroutine returned (``finish``) or raised (``fail``)."""
        import asyncio

        error = self._error
        if error is None:
            self.ok = bool(self.finish(result))
            return
        if isinstance(error, asyncio.CancelledError):
            error = _cancelled(self.name, error)
        self.fail(error)


def _cancelled(name: str, error: BaseException) -> BaseException:
    import asyncio

    exc = asyncio.CancelledError(f"the task of the async callback {name} was cancelled")
    exc.__cause__ = error
    return exc


_NOTHING: Any = object()


class _AsProcess(Coroutine[Any, Any, Any]):
    """Steps a callback's coroutine as the client's process; keeps its errors for wsx.

    Whatever the coroutine raises (but what must propagate, see
    :mod:`wsx._guard`) ends this wrapper normally, the error kept in the
    :class:`AsyncCallback`: the loop's exception handler never sees it.
    """

    __slots__ = ("job", "inner", "_send", "_throw", "_primed")

    def __init__(self, job: AsyncCallback, awaitable: Any) -> None:
        self.job = job
        inner = awaitable.__await__()
        self.inner = inner
        self._send = inner.send
        self._throw = inner.throw
        self._primed: Any = _NOTHING

    def prime(self, first: Any) -> None:
        """The first step already ran and yielded ``first``: the task's first send gets it."""
        self._primed = first

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _AsProcess:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        primed = self._primed
        if primed is not _NOTHING:
            self._primed = _NOTHING
            return primed  # the task starts waiting on what the first step waits on
        return self._step(self._send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        return self._step(self._throw, val if val is not None else typ)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def _step(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        job = self.job
        dispatcher = job.client.dispatcher
        running = _per_thread.running
        previous = running.process
        running.process = job.client
        dispatcher.in_callback = True
        try:
            return fn(arg)
        except StopIteration:
            raise
        except BaseException as exc:  # noqa: BLE001 - the callback failed: wsx reports it
            if must_propagate(exc):
                raise
            job._error = exc
            raise StopIteration(None) from None
        finally:
            dispatcher.in_callback = False
            running.process = previous
