# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""The compiled twin of :meth:`wsx.io.loop.Loop.run` for epoll (Linux).

``run_epoll(loop, fire)`` runs the loop of ``Loop.run`` (``Loop._run`` in
Python): wait for readiness, call the reader and writer callbacks of the
ready descriptors, queue the timers that are due, run the ready callbacks,
until ``loop._stopping`` is set. It differs only in how: ``epoll_wait`` is
called directly (with the GIL released) on the loop's epoll object into an
array of events, instead of building a list of tuples per wake-up through
``select.epoll.poll``. Registration stays with ``select.epoll`` in
``wsx/loop.py``: both use the same kernel object, whose events carry the
descriptor (``data.fd``) as ``select.epoll.register`` sets it.

Like the Python loop it is I/O readiness only: it knows nothing about
WebSocket.
"""

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EINTR, errno
from libc.math cimport ceil
from libc.string cimport strerror

from heapq import heappop
from time import monotonic


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd

    cdef struct epoll_event:
        unsigned int events
        epoll_data_t data

    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    int EPOLLIN
    int EPOLLOUT


DEF MAX_EVENTS = 256  # more ready descriptors come in the next wait


def run_epoll(loop, fire):
    """Run ``loop`` (a ``wsx.io.loop.Loop`` using epoll) until it is stopped.

    ``fire`` is ``wsx.io.loop._fire``, queued (with the timer) for each timer due.
    """
    cdef dict d = loop.__dict__
    cdef int epfd = d["_epoll"].fileno()
    cdef dict handlers = d["_handlers"]
    cdef list timers = d["_timers"]
    ready = d["_ready"]
    popleft = ready.popleft
    cdef epoll_event events[MAX_EVENTS]
    cdef int n, i, ms, k, todo
    cdef unsigned int ev
    cdef double wait
    while not d["_stopping"]:
        if ready:
            ms = 0
        elif timers:
            # The next *live* deadline: a cancelled timer wakes nobody.
            timeout = loop._next_timeout()
            if timeout is None:
                ms = -1
            else:
                wait = ceil(<double>timeout * 1000.0)  # as select.epoll: never early
                ms = 2147483647 if wait > 2147483647.0 else <int>wait
        else:
            ms = -1
        with nogil:
            n = epoll_wait(epfd, events, MAX_EVENTS, ms)
        if n < 0:
            if errno != EINTR:
                raise OSError(errno, strerror(errno).decode("utf-8", "replace"))
            PyErr_CheckSignals()  # e.g. KeyboardInterrupt when run in the main thread
            n = 0
        for i in range(n):
            ev = events[i].events
            entry = handlers.get(events[i].data.fd)
            if entry is None:
                continue
            if ev & ~EPOLLOUT:  # readable, or an error / hang-up (wakes both)
                callback = (<list>entry)[1]
                if callback is not None:
                    try:
                        callback()
                    except BaseException as exc:  # see wsx._guard
                        loop._callback_failed(callback, (), exc)
            if ev & ~EPOLLIN:
                # The reader may have unregistered the file: look again.
                entry = handlers.get(events[i].data.fd)
                callback = (<list>entry)[2] if entry is not None else None
                if callback is not None:
                    try:
                        callback()
                    except BaseException as exc:  # see wsx._guard
                        loop._callback_failed(callback, (), exc)
        if timers:
            now = monotonic()
            while timers and timers[0][0] <= now:
                timer = heappop(timers)[2]
                if timer.cancelled:
                    loop._cancelled_timers -= 1
                else:
                    timer._loop = None  # out of the heap: cancel() counts nothing
                    # Queue the timer, not its callback: cancel() must still
                    # work until it runs.
                    ready.append((fire, (timer,)))
        todo = len(ready)
        for k in range(todo):
            callback, args = popleft()
            try:
                callback(*args)
            except BaseException as exc:  # see wsx._guard
                loop._callback_failed(callback, args, exc)
