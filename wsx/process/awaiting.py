"""``async def`` callbacks: a client that awaits its callback before its next event.

On a client hosted by an asyncio loop (:func:`wsx.aio.start_link`) any
callback may be ``async def``. Its coroutine's first step runs at once, as a
plain callback would (:func:`first_step`): one that finishes without waiting
for anything (``await queue.put(x)`` on a queue with room) costs no task and
no hold. One that waits goes on as an asyncio task (:class:`AsyncCallback`);
until it finishes the client is *busy*: it holds its frames and messages, in
order, and stops reading its socket (the server feels backpressure, as with
:func:`wsx.sys.suspend`), while other clients and tasks on the loop run.
When the coroutine returns, its result is applied exactly as a plain
callback's (``("ok", state)``, ``("reply", frame, state)``, ``("close",
...)``; a bad shape crashes), then what was held is handled. A coroutine
that raises, or whose task is cancelled by anyone but wsx, crashes the
client (close 1011, ``terminate(("error", exc))``); nothing of it reaches
the loop's exception handler.

Each step of the coroutine runs as the client's process (``wsx.self()``
is the client, and a ``wsx.send_frame`` to itself raises
:class:`~wsx.errors.CallingSelfError`, as from a plain callback).

When the connection ends while a callback awaits (keepalive timeout,
broken socket, close timeout), wsx cancels the task and drops its result:
the connection it was for is gone. A :func:`wsx.stop` waits for it.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .._guard import must_propagate
from .base import _per_thread

if TYPE_CHECKING:
    import asyncio

__all__ = ["DONE", "FAILED", "WAITS", "AsyncCallback", "AsyncNotSupportedError",
           "first_step", "is_awaitable"]

#: What :func:`first_step` found: the result, what it raised, or what it waits on.
DONE, FAILED, WAITS = "done", "failed", "waits"

_Coroutine = types.CoroutineType


class AsyncNotSupportedError(TypeError):
    """An ``async def`` callback on a client whose loop is not an asyncio loop."""


def is_awaitable(result: Any) -> bool:
    """True for what an ``async def`` callback returns (a coroutine, or any awaitable)."""
    return type(result) is _Coroutine or hasattr(result, "__await__")


def first_step(client: Any, name: str, awaitable: Any) -> tuple[str, Any]:
    """Run the first step of the callback ``name``'s awaitable, as the client's process.

    ``(DONE, result)``; ``(FAILED, exc)``; or ``(WAITS, (steps, yielded))``
    for :class:`AsyncCallback`. Raises :class:`AsyncNotSupportedError` (the
    awaitable closed, unrun) when the client's loop is not an asyncio loop.
    """
    if not hasattr(client.loop, "aloop"):
        if hasattr(awaitable, "close"):
            awaitable.close()  # no "never awaited" warning: it is reported here
        raise AsyncNotSupportedError(
            f"{name} of {client.module!r} returned an awaitable (async def): async "
            f"callbacks run only on a client hosted by an asyncio loop "
            f"(wsx.aio.start_link / wsx.aio.start), not on {client.loop!r}")
    steps = awaitable if type(awaitable) is _Coroutine else awaitable.__await__()
    # As _as_process, inline: this is every async callback's cost.
    dispatcher = client.dispatcher
    running = _per_thread.running
    previous = running.process
    running.process = client
    dispatcher.in_callback = True
    try:
        yielded = steps.send(None)
    except StopIteration as stop:
        return DONE, stop.value
    except BaseException as exc:  # noqa: BLE001 - the callback failed: wsx reports it
        return FAILED, _described(name, exc)
    finally:
        dispatcher.in_callback = False
        running.process = previous
    return WAITS, (steps, yielded)


def _as_process(client: Any, fn: Callable[[Any], Any], arg: Any) -> Any:
    """``fn(arg)``: one step of a callback's coroutine, run as the client's process."""
    dispatcher = client.dispatcher
    running = _per_thread.running
    previous = running.process
    running.process = client
    dispatcher.in_callback = True
    try:
        return fn(arg)
    finally:
        dispatcher.in_callback = False
        running.process = previous


def _described(name: str, exc: BaseException) -> BaseException:
    """A cancellation says which callback's task was cancelled; other errors stay."""
    import asyncio  # loaded: only asyncio hosts run coroutines

    if not isinstance(exc, asyncio.CancelledError):
        return exc
    error = asyncio.CancelledError(f"the task of the async callback {name} was cancelled")
    error.__cause__ = exc
    return error


class AsyncCallback:
    """An ``async def`` callback that waits: its task, and what to do when it is done.

    ``waiting`` is what :func:`first_step` returned with ``WAITS``.
    ``finish(result)`` runs on the loop thread with what the coroutine
    returned and says whether the result was applied; ``fail(exc)`` with
    what it raised (``asyncio.CancelledError`` when its task was cancelled
    by someone else). Neither runs once :meth:`abandon` was called. Then
    ``client.holds.idle`` releases the client.
    """

    __slots__ = ("name", "client", "finish", "fail", "task", "abandoned", "_error", "_then")

    def __init__(self, client: Any, name: str, waiting: tuple[Any, Any],
                 finish: Callable[[Any], Any], fail: Callable[[BaseException], Any]) -> None:
        self.name = name
        self.client = client
        self.finish = finish
        self.fail = fail
        self.abandoned = False
        self._error: BaseException | None = None
        self._then: list[Callable[[], Any]] = []
        steps, yielded = waiting
        self.task: asyncio.Task[Any] = client.loop.aloop.create_task(
            _AsProcess(self, steps, yielded))
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
        if self.abandoned:
            return
        error = self._error
        if error is None and task.cancelled():
            import asyncio

            error = asyncio.CancelledError()
        applied = False
        try:
            if error is not None:
                self.fail(_described(self.name, error))
            else:
                applied = bool(self.finish(task.result()))
        finally:
            # Then what was held meanwhile, in order (wsx.process.holds).
            self.client.holds.idle(self, self._then if applied else ())


class _AsProcess(Coroutine[Any, Any, Any]):
    """What the task runs: the callback's coroutine from its second step on.

    Steps it as the client's process. Whatever the coroutine raises (but
    what must propagate, see :mod:`wsx._guard`) ends this wrapper normally,
    the error kept in the :class:`AsyncCallback`: the loop's exception
    handler never sees it.
    """

    __slots__ = ("job", "steps", "_primed", "_primed_set")

    def __init__(self, job: AsyncCallback, steps: Any, yielded: Any) -> None:
        self.job = job
        self.steps = steps
        self._primed: Any = yielded  # what the first step waits on
        self._primed_set = True

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _AsProcess:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        if self._primed_set:
            # The task's first step: it waits on what the first step yielded.
            self._primed_set = False
            primed, self._primed = self._primed, None
            return primed
        return self._step(self.steps.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._primed_set = False  # cancelled before its first step: it waits no more
        self._primed = None
        return self._step(self.steps.throw, val if val is not None else typ)

    def close(self) -> None:
        close = getattr(self.steps, "close", None)
        if close is not None:
            close()

    def _step(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        try:
            return _as_process(self.job.client, fn, arg)
        except StopIteration:
            raise
        except BaseException as exc:  # noqa: BLE001 - the callback failed: wsx reports it
            self.job._error = exc
            if must_propagate(exc):
                raise
            raise StopIteration(None) from None
