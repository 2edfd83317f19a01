# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""``epoll_wait(2)`` for the loop's readiness backend (Linux), without ``select.epoll.poll``.

:class:`EpollWait` is the compiled twin of ``select.epoll.poll`` as
:class:`wsx.io.readiness.Readiness` uses it: its ``wait(timeout)`` (a bound
method: called without building an argument tuple; seconds,
rounded up to milliseconds; negative: no limit) returns ``[(fd, events)]``
for the ready descriptors, at most 256 a call (the others come in the next
one). It waits without the GIL into an array of its own, where
``select.epoll.poll`` parses its arguments, converts the timeout through
Python's clock, allocates a buffer for 1023 events and builds each pair
with ``Py_BuildValue`` on every call. An interrupted wait runs the signal
handlers (``KeyboardInterrupt`` raises) and returns no event: the loop
computes its timeout again. Registration stays with ``select.epoll``: both
use the same kernel object. It decides nothing: what a wait returns is the
loop's to handle (``wsx/io/schedule.py``).
"""

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EINTR, errno
from libc.math cimport ceil
from libc.string cimport strerror


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd

    cdef struct epoll_event:
        unsigned int events
        epoll_data_t data

    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)


cdef enum:
    MAX_EVENTS = 256  # more ready descriptors come in the next wait


cdef class EpollWait:
    """``EpollWait(epfd).wait(timeout)``: ``select.epoll(...).poll(timeout)`` for ``epfd``."""

    cdef int epfd
    cdef epoll_event events[MAX_EVENTS]

    def __init__(self, int epfd):
        self.epfd = epfd

    def wait(self, double timeout):
        cdef int ms, n, i, err = 0
        cdef double wait
        if timeout != timeout:
            raise ValueError("the timeout of a wait cannot be NaN")
        if timeout < 0:
            ms = -1
        else:
            wait = ceil(timeout * 1000.0)  # as select.epoll: never early
            # The loop waits a day at most (schedule.MAX_WAIT); this bounds
            # any other caller to what epoll_wait takes.
            ms = 2147483647 if wait > 2147483647.0 else <int>wait
        with nogil:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, ms)
            if n < 0:
                err = errno
        if n < 0:
            if err != EINTR:
                raise OSError(err, strerror(err).decode("utf-8", "replace"))
            PyErr_CheckSignals()  # e.g. KeyboardInterrupt when run in the main thread
            return []
        return [(self.events[i].data.fd, self.events[i].events) for i in range(n)]
