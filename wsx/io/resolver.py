"""A loop's DNS: ``getaddrinfo`` off the loop thread, in a small pool of threads.

:meth:`wsx.io.loop.Loop.resolve` hands each lookup to the loop's
:class:`Resolver`. Its threads (at most ``threads``, started with the first
lookup) call ``getaddrinfo`` and pass the answer to ``done``, which the loop
makes post its callback to the loop thread.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Resolver"]


class Resolver:
    """``getaddrinfo`` in a pool of ``threads`` threads, started on first use."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None

    def resolve(self, host: str, port: int,
                done: Callable[[list[Any] | None, BaseException | None], Any],
                name: str) -> None:
        """Look ``host:port`` up on a thread of the pool; ``done(infos, error)`` runs there.

        ``name`` (the loop's) names the pool's threads, ``<name>-dns_0`` and on.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix=f"{name}-dns"
            )

        def work() -> None:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except BaseException as exc:  # noqa: BLE001 - handed to the callback
                done(None, exc)
            else:
                done(infos, None)

        self._executor.submit(work)

    def close(self) -> None:
        """Shut the pool down, if started; not waited for: the lookups queued still run."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
