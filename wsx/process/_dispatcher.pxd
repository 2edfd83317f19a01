# C fields and C-level methods of wsx.process.dispatcher.Dispatcher when that
# source is compiled as wsx.process._dispatcher (see wsx/_twins.py). The
# compiled read path (wsx/process/_reader.pyx) reads these fields and calls
# frame() and dispatch() without attribute lookups.

cimport cython

from wsx.core._protocol cimport Protocol
from wsx.io._transport cimport Transport


cdef class Dispatcher:
    cdef public object client
    cdef public object cb
    cdef public object state
    cdef public Transport transport
    cdef public Protocol protocol
    cdef public object dbg
    cdef public object keepalive
    cdef public object inbox
    cdef public bint in_callback
    cdef public bint open
    cdef public bint hold
    cdef object _frame_cb
    cdef object _handle_frame
    cdef public object crashed_in

    cpdef dispatch(self, protocol, list events)
    cpdef handle_event(self, event)
    cpdef bint frame(self, event) except -1
    cpdef bint call(self, str name, arg) except -1
    cdef bint _run(self, str name, fn, arg, bint acts=*) except -1
    @cython.locals(shape=tuple, n=Py_ssize_t)
    cpdef bint apply(self, str name, result, bint acts=*) except -1
    cpdef reply(self, str name, frame)
    @cython.locals(transport=Transport, protocol=Protocol)
    cpdef bint send_direct(self, frame) except -1
