"""``async def`` callbacks: a client that awaits its callback before its next event.

On a client hosted by an asyncio loop (:func:`wsx.aio.start_link`) any
callback may be ``async def``. Its coroutine runs as an asyncio task
(:class:`AsyncCallback`); until it finishes the client is *busy*: it holds
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

    __slots__ = ("name", "client", "finish", "fail", "task", "abandoned", "_error", "_then")

    def __init__(self, client: Any, name: str, awaitable: Any,
                 finish: Callable[[Any], Any], fail: Callable[[BaseException], Any]) -> None:
        self.name = name
        self.client = client
        self.finish = finish
        self.fail = fail
        self.abandoned = False
        self._error: BaseException | None = None
        self._then: list[Callable[[], Any]] = []
        aloop = getattr(client.loop, "aloop", None)
        if aloop is None:
            if hasattr(awaitable, "close"):
                awaitable.close()  # no "never awaited" warning: it is reported here
            raise AsyncNotSupportedError(
                f"{name} of {client.module!r} returned an awaitable (async def): async "
                f"callbacks run only on a client hosted by an asyncio loop "
                f"(wsx.aio.start_link / wsx.aio.start), not on {client.loop!r}")
        self.task = aloop.create_task(_AsProcess(self, awaitable))
        self.task.add_done_callback(self._done)

    def __repr__(self) -> str:
        return f"<wsx.AsyncCallback {self.name} of {self.client!r}>"

    def then(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once the result is applied (not if it crashed or was abandoned)."""
        self._then.append(callback)

    def abandon(self) -> None:
        """Cancel the task and drop its result (the connection it was for has ended)."""
        if not self.abandoned:
            self.abandoned = True
            self.task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        import asyncio  # loaded already: the task ran on it

        if self.abandoned:
            return
        error = self._error
        if error is None and task.cancelled():
            error = asyncio.CancelledError()
        then: list[Callable[[], Any]] = []
        try:
            if error is not None:
                if isinstance(error, asyncio.CancelledError):
                    error = _cancelled(self.name, error)
                self.fail(error)
            elif self.finish(task.result()):
                then = self._then
        finally:
            # Then what was held meanwhile, in order (wsx.process.holds).
            self.client.holds.idle(self, then)


def _cancelled(name: str, error: BaseException) -> BaseException:
    import asyncio

    exc = asyncio.CancelledError(f"the task of the async callback {name} was cancelled")
    exc.__cause__ = error
    return exc


class _AsProcess(Coroutine[Any, Any, Any]):
    """Steps a callback's coroutine as the client's process; keeps its errors for wsx.

    Whatever the coroutine raises (but what must propagate, see
    :mod:`wsx._guard`) ends this wrapper normally, the error kept in the
    :class:`AsyncCallback`: the loop's exception handler never sees it.
    """

    __slots__ = ("job", "inner", "_send", "_throw")

    def __init__(self, job: AsyncCallback, awaitable: Any) -> None:
        self.job = job
        inner = awaitable.__await__()
        self.inner = inner
        self._send = inner.send
        self._throw = inner.throw

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _AsProcess:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
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
