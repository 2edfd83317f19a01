# Declarations of wsx/io/_syscalls.pyx for the compiled transport.

cdef class RawSocket:
    cdef int fd
    cpdef Py_ssize_t send(self, data) except -1
    cpdef Py_ssize_t recv_into(self, buf) except -1
    cdef Py_ssize_t _recv(self, char* buf, Py_ssize_t size) except -1
    cdef Py_ssize_t _send(self, const char* buf, Py_ssize_t size) except -1
