# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""The compiled twins of :meth:`wsx.io.loop.Loop.run` for epoll (Linux) and of
:class:`wsx.io.handoff.Signal`.

``run_epoll(loop)`` runs the loop of ``Loop.run`` (``Loop._run`` in
Python): wait for readiness, call the reader and writer callbacks of the
ready descriptors, queue the timers that are due (the loop's own
``_queue_due``, the one rule for timers), run the ready callbacks, until
``loop._stopping`` is set. It differs only in how: ``epoll_wait`` is
called directly (with the GIL released) on the loop's epoll object into an
array of events, instead of building a list of tuples per wake-up through
``select.epoll.poll``. Registration stays with ``select.epoll`` in
``wsx/io/loop.py``: both use the same kernel object, whose events carry the
descriptor (``data.fd``) as ``select.epoll.register`` sets it.

Like the Python loop it is I/O readiness only: it knows nothing about
WebSocket.
"""

from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport (
    PY_LOCK_ACQUIRED,
    WAIT_LOCK,
    PyLockStatus,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from libc.errno cimport EINTR, errno
from libc.math cimport ceil
from libc.string cimport strerror

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


def run_epoll(loop):
    """Run ``loop`` (a ``wsx.io.loop.Loop`` using epoll) until it is stopped.

    The iteration of ``Loop._run``, with its rules taken from the loop: how
    long to wait (``_next_timeout``), what is due (``_queue_due``), what a
    failing callback does (``_callback_failed``); only the wait and the
    calls are compiled.
    """
    cdef int epfd = loop._epoll.fileno()
    cdef dict handlers = loop._handlers
    cdef list timers = loop._timers
    ready = loop._ready
    popleft = ready.popleft
    cdef epoll_event events[MAX_EVENTS]
    cdef int n, i, ms, k, todo
    cdef unsigned int ev
    cdef double wait
    while not loop._stopping:
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
        if loop.on_wake is not None:
            loop._woken()
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
        if timers and (<tuple>timers[0])[0] <= monotonic():
            loop._queue_due()
        todo = len(ready)
        for k in range(todo):
            callback, args = popleft()
            try:
                callback(*args)
            except BaseException as exc:  # see wsx._guard
                loop._callback_failed(callback, args, exc)


cdef extern from "pythread.h" nogil:
    ctypedef long long PY_TIMEOUT_T
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, PY_TIMEOUT_T us,
                                             int intr_flag)


cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_send "send" (int fd, const void* buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef class Signal:
    """The compiled twin of :class:`wsx.io.handoff.Signal` (see there).

    The difference is how: :meth:`set` releases the waiter, and :meth:`wait`
    writes the loop's wake-up byte and then blocks, without holding the GIL,
    so that the thread woken finds the GIL free.
    """

    cdef PyThread_type_lock _lock
    cdef bint _locked  # the lock is held (by its creator, or by the waiter once woken)
    cdef bint _set
    cdef bint _got

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate a lock")
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        self._locked = True

    def __dealloc__(self):
        if self._lock != NULL:
            if self._locked:
                PyThread_release_lock(self._lock)
            PyThread_free_lock(self._lock)

    def set(self):
        """Release the waiter (any thread; later calls do nothing)."""
        if self._set:
            return
        self._set = True
        self._locked = False
        with nogil:
            PyThread_release_lock(self._lock)

    def is_set(self):
        """True once :meth:`set` was called."""
        return self._set

    def wait(self, double timeout, loop=None):
        """Wait at most ``timeout`` seconds (0: do not block); True once set.

        With ``loop``, wake it first (unless a wake-up is pending already).
        One thread waits on a signal.
        """
        cdef int fd = -1
        cdef PyLockStatus got
        cdef PY_TIMEOUT_T us = <PY_TIMEOUT_T>(timeout * 1e6) if timeout > 0 else 0
        if self._got:
            return True
        if loop is not None and not loop.wake_pending:  # its declared interface (HostLoop)
            fd = loop.wake_fd
            if fd >= 0:
                loop.wake_pending = True
            else:
                loop.wake()
        with nogil:
            if fd >= 0:
                # EAGAIN: a wake-up byte is waiting already; any other error
                # means a closed loop, which the waiter's own checks see.
                c_send(fd, b"\0", 1, MSG_DONTWAIT | MSG_NOSIGNAL)
            got = PyThread_acquire_lock_timed(self._lock, us, 0)
        if got == PY_LOCK_ACQUIRED:
            self._got = True
            self._locked = True
        return self._got
