# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""``send(2)`` on a socket's descriptor, without Python's socket layer.

:class:`Sender` is what :class:`wsx.io.transport.Transport` calls to write
to a plain TCP socket when this module is built: the same result and errors
as ``socket.send`` on a non-blocking socket (the byte count;
``BlockingIOError`` when the socket would block, the ``OSError`` subclass of
the error otherwise), for about a tenth of its cost per call: no argument
parsing, no socket timeout logic, no GIL release for a write that never
waits. ``MSG_NOSIGNAL``: a closed peer raises ``BrokenPipeError``, never
``SIGPIPE``. It decides nothing: ``Transport._push`` stays the one place
that writes.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_SetFromErrno
from libc.errno cimport EINTR, errno

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0  /* Python ignores SIGPIPE anyway */
    #endif
    """
    int MSG_NOSIGNAL
    ssize_t c_send "send" (int fd, const void* buf, size_t n, int flags) nogil


cdef class Sender:
    """``Sender(sock).send(data)``: ``sock.send(data)`` through ``send(2)`` on its descriptor.

    Declared in ``_syscalls.pxd``: the compiled transport calls :meth:`send`
    at C level.
    """

    def __init__(self, sock):
        self.fd = sock.fileno()

    def __call__(self, data):
        return self.send(data)

    cpdef Py_ssize_t send(self, data) except -1:
        """Write ``data``; the bytes written. Raises as ``socket.send`` does."""
        cdef Py_buffer view
        if type(data) is bytes:  # the usual case: an encoded frame, no buffer to take
            return self._send(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._send(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _send(self, const char* buf, Py_ssize_t size) except -1:
        cdef ssize_t n
        while True:
            n = c_send(self.fd, buf, <size_t>size, MSG_NOSIGNAL)
            if n >= 0:
                return n
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
                return -1
