"""The readiness backend of a :class:`wsx.io.loop.Loop`: epoll, or selectors.

epoll is used directly where there is one (the selectors module adds a
Python layer per call), else the platform's ``selectors.DefaultSelector``.
``poll(timeout)`` (seconds; negative: no limit) returns ``[(fd, events)]``;
an event is readable when
``events & rbits`` and writable when ``events & wbits`` (epoll: an error or
hang-up wakes both, as selectors does).
"""

from __future__ import annotations

import select
import selectors
from collections.abc import Callable
from typing import Any

from .._twins import compiled

__all__ = ["Readiness"]

# epoll_wait(2) without select.epoll.poll's layer (wsx/io/_epoll.pyx), when built.
_epoll_twin: Any = compiled("wsx.io._epoll") if hasattr(select, "epoll") else None


class Readiness:
    """Which descriptors a loop watches, and the wait for them to be ready."""

    def __init__(self, use_epoll: bool) -> None:
        self.epoll: Any = None
        self.selector: selectors.BaseSelector | None = None
        self.poll: Callable[[float], list[tuple[int, int]]]
        if use_epoll:
            self.epoll = select.epoll()
            self.read_mask, self.write_mask = select.EPOLLIN, select.EPOLLOUT
            self.rbits, self.wbits = ~select.EPOLLOUT, ~select.EPOLLIN
            # Negative: no limit, as here; the compiled twin waits the same way.
            self.poll = (self.epoll.poll if _epoll_twin is None
                         else _epoll_twin.EpollWait(self.epoll.fileno()).wait)
        else:
            self.selector = selectors.DefaultSelector()
            self.read_mask, self.write_mask = selectors.EVENT_READ, selectors.EVENT_WRITE
            self.rbits, self.wbits = selectors.EVENT_READ, selectors.EVENT_WRITE
            self.poll = self._selector_poll

    def register(self, fd: int, mask: int) -> None:
        """Watch ``fd`` for ``mask`` (``read_mask`` and/or ``write_mask``)."""
        if self.epoll is not None:
            self.epoll.register(fd, mask)
        else:
            assert self.selector is not None
            self.selector.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Watch ``fd`` for ``mask`` from now on."""
        if self.epoll is not None:
            self.epoll.modify(fd, mask)
        else:
            assert self.selector is not None
            self.selector.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (a no-op when it is closed or unknown)."""
        try:
            if self.epoll is not None:
                self.epoll.unregister(fd)
            else:
                assert self.selector is not None
                self.selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass  # closed already (epoll forgets a closed fd by itself)

    def close(self) -> None:
        """Release the epoll object or the selector."""
        if self.epoll is not None:
            self.epoll.close()
        if self.selector is not None:
            self.selector.close()

    def _selector_poll(self, timeout: float) -> list[tuple[int, int]]:
        assert self.selector is not None
        wait = None if timeout < 0 else timeout
        return [(key.fd, events) for key, events in self.selector.select(wait)]
