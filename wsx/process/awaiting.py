"""``async def`` callbacks: a client that awaits its callback before its next event.

On a client hosted by an asyncio loop (:func:`wsx.aio.start_link`) any
callback may be ``async def``. Its coroutine runs as an asyncio task of its
own (:class:`AsyncCallback`), with a copy of the context, so that
``asyncio.timeout``, ``asyncio.current_task`` and context variables behave
as in any task. On Python 3.12 and later the task starts eagerly: a
callback that finishes without waiting for anything (``await queue.put(x)``
on a queue with room) is done before the read path goes on, and costs no
hold. Until the task is done the client is *busy*: it holds its frames and
messages, in order, and stops reading its socket (the server feels
backpressure, as with :func:`wsx.sys.suspend`), while other clients and
tasks on the loop run. When the coroutine returns, its result is applied
exactly as a plain callback's (``("ok", state)``, ``("reply", frame,
state)``, ``("close", ...)``; a bad shape crashes), then what was held is
handled. A coroutine that raises, or whose task is cancelled by anyone but
wsx, crashes the client (close 1011, ``terminate(("error", exc))``);
nothing of it reaches the loop's exception handler.

Each step of the coroutine runs as the client's process (``wsx.self()``
is the client, and a ``wsx.send_frame`` to itself raises
:class:`~wsx.errors.CallingSelfError`, as from a plain callback).

When the connection ends while a callback waits (keepalive timeout, broken
socket, close timeout, a linked process's exit), wsx cancels the task and
drops its result: the connection it was for is gone. The coroutine's
``except`` and ``finally`` blocks run on the loop's next iterations, after
wsx has gone on (``handle_disconnect``). A :func:`wsx.stop` waits for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .._guard import must_propagate
from .base import _per_thread

if TYPE_CHECKING:
    import asyncio

__all__ = ["PENDING", "AsyncCallback", "AsyncNotSupportedError", "is_awaitable"]

#: What a callback runner returns while an async callback waits (``None`` is
#: a value: an exit reason, a state).
PENDING: Any = object()

#: Tasks run their first step at once where asyncio can (``eager_start``, Python 3.12).
EAGER: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class AsyncNotSupportedError(TypeError):
    """An ``async def`` callback on a client whose loop is not an asyncio loop."""


def is_awaitable(result: Any) -> bool:
    """True for what an ``async def`` callback returns (a coroutine, or any awaitable)."""
    return hasattr(result, "__await__")


class AsyncCallback:
    """One ``async def`` callback of a client: its task, and what to do when it is done.

    ``finish(result)`` runs on the loop thread with what the coroutine
    returned and says whether the result was applied; ``fail(exc)`` with
    what it raised (``asyncio.CancelledError`` when its task was cancelled
    by someone else). Neither runs once :meth:`abandon` was called. Made by
    the dispatcher, which then calls :meth:`start`.
    """

    __slots__ = ("name", "client", "finish", "fail", "task", "abandoned", "ok", "_error",
                 "_then")

    def __init__(self, client: Any, name: str, awaitable: Any,
                 finish: Callable[[Any], Any], fail: Callable[[BaseException], Any]) -> None:
        self.name = name
        self.client = client
        self.finish = finish
        self.fail = fail
        self.abandoned = False
        #: What ``finish`` returned (False when it failed), once done.
        self.ok = False
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
        import asyncio  # loaded: the client runs on it

        steps = _AsProcess(self, awaitable)
        self.task: asyncio.Task[Any] = asyncio.Task(steps, loop=aloop, **EAGER)

    def __repr__(self) -> str:
        return f"<wsx.AsyncCallback {self.name} of {self.client!r}>"

    def start(self) -> bool:
        """True if the task is done already (its result applied: see :attr:`ok`);
        False if it waits: the caller holds the client until it is done."""
        if self.task.done():
            self._settle()
            return True
        self.task.add_done_callback(self._done)
        return False

    def then(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once the result is applied (not if it crashed or was abandoned)."""
        self._then.append(callback)

    def abandon(self) -> None:
        """Cancel the task and drop its result (the connection it was for has ended)."""
        if not self.abandoned:
            self.abandoned = True
            try:
                self.task.cancel()
            except RuntimeError:  # its loop is closed: the task never runs again
                pass

    def interrupt(self) -> None:
        """Cancel the task; unlike :meth:`abandon`, ``fail`` then runs with the cancellation."""
        if not self.abandoned:
            self.task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        if self.abandoned:
            return
        try:
            self._settle()
        finally:
            # Then what was held meanwhile, in order (wsx.process.holds).
            self.client.holds.idle(self, self._then if self.ok else ())

    def _settle(self) -> None:
        """Apply what the coroutine returned (``finish``) or raised (``fail``)."""
        import asyncio

        error = self._error
        if error is None and self.task.cancelled():
            error = asyncio.CancelledError()
        if error is None:
            self.ok = bool(self.finish(self.task.result()))
            return
        if isinstance(error, asyncio.CancelledError):
            cancelled = asyncio.CancelledError(
                f"the task of the async callback {self.name} was cancelled")
            cancelled.__cause__ = error
            error = cancelled
        self.fail(error)


class _AsProcess(Coroutine[Any, Any, Any]):
    """What the task runs: the callback's coroutine, stepped as the client's process.

    Whatever the coroutine raises (but what must propagate, see
    :mod:`wsx._guard`) ends this wrapper normally, the error kept in the
    :class:`AsyncCallback`: the loop's exception handler never sees it.
    """

    __slots__ = ("job", "steps")

    def __init__(self, job: AsyncCallback, awaitable: Any) -> None:
        self.job = job
        self.steps = awaitable.__await__()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _AsProcess:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        return self._step(self.steps.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        return self._step(self.steps.throw, val if val is not None else typ)

    def close(self) -> None:
        close = getattr(self.steps, "close", None)
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
            job._error = exc
            if must_propagate(exc):
                raise
            raise StopIteration(None) from None
        finally:
            dispatcher.in_callback = False
            running.process = previous
