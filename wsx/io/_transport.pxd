# C fields and C-level methods of wsx.io.transport.Transport when that source
# is compiled as wsx.io._transport (see wsx/_twins.py). The compiled read path
# (wsx/process/_reader.pyx) and dispatcher read these fields and call these
# methods without attribute lookups.

cimport cython

from wsx.core._protocol cimport Protocol
from wsx.io._syscalls cimport RawSocket


cdef class Transport:
    cdef public object loop
    cdef public object on_lost
    cdef public object note
    cdef public object stats
    cdef public object sock
    cdef object _send  # sock.send
    cdef RawSocket _raw  # send(2) and recv(2) for plain TCP (None: the socket's methods)
    cdef public bint secure
    cdef public bytearray wbuf
    cdef public object lock
    cdef object _acquire, _release  # the lock's methods, looked up once
    cdef public object corked
    cdef public object write_limit
    cdef public bint read_paused
    cdef public bint reading
    cdef public object reader
    cdef public bint activity
    cdef public object waiters
    cdef public object on_drained
    cdef public Py_ssize_t backlog_written

    cpdef bint tls_pending(self) except -1
    @cython.locals(n=Py_ssize_t)
    cpdef Py_ssize_t recv_into(self, buf) except -2
    cpdef bint write(self, data) except -1
    cpdef bint write_close(self, Protocol protocol, code, reason) except -1
    cpdef bint answer_close(self, Protocol protocol) except -1
    cpdef bint write_frame(self, Protocol protocol, frame) except -1
    @cython.locals(n=Py_ssize_t)
    cpdef bint send_direct(self, Protocol protocol, frame) except -1
    @cython.locals(n=Py_ssize_t)
    cdef bint _put(self, data) except -1
    @cython.locals(n=Py_ssize_t)
    cdef Py_ssize_t _push(self, data) except -1
    cpdef bint cork(self) except -1
    cpdef uncork(self)
    cpdef bint over_limit(self) except -1
