# C fields and C-level methods of wsx.io.schedule.Schedule when that source is
# compiled as wsx.io._schedule (see wsx/_twins.py): the loop's iteration,
# compiled as it is written.

cimport cython


cdef class Schedule:
    cdef public object io
    cdef public object name
    cdef public dict handlers
    cdef public object ready
    cdef public list timers
    cdef public Py_ssize_t cancelled
    cdef public object seq
    cdef public bint stopping

    cpdef push(self, double when, timer)
    cpdef Py_ssize_t live_timers(self)
    cpdef timer_cancelled(self)
    @cython.locals(entry=tuple)
    cpdef double wait_time(self)
    cpdef queue_due(self)
    cpdef clear(self)
    @cython.locals(handlers=dict, timers=list, entry=list, events=list, mask=long,
                   rbits=long, wbits=long, _i=Py_ssize_t)
    cpdef run(self, loop)
    cdef _call(self, callback, args)
    cpdef failed(self, callback, args, exc)
