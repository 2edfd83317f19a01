# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""The compiled twin of :class:`wsx.io.handoff.Signal`.

(The loop's iteration is compiled from its own source,
``wsx/io/schedule.py``, as ``wsx.io._schedule``.)
"""

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


cdef extern from "pythread.h" nogil:
    ctypedef long long PY_TIMEOUT_T
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, PY_TIMEOUT_T us,
                                             int intr_flag)


cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0  /* Python ignores SIGPIPE anyway */
    #endif
    """
    int MSG_DONTWAIT
    int MSG_NOSIGNAL
    ssize_t c_send "send" (int fd, const void* buf, size_t n, int flags) nogil


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
