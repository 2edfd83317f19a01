# Declarations of wsx/io/_syscalls.pyx for the compiled transport.

cdef class Sender:
    cdef int fd
    cpdef Py_ssize_t send(self, data) except -1
