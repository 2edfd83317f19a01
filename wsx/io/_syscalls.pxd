# Declarations of wsx/io/_syscalls.pyx for the compiled transport.

cdef class Sender:
    cdef int fd
    cpdef Py_ssize_t send(self, data) except -1
    cdef Py_ssize_t _send(self, const char* buf, Py_ssize_t size) except -1
