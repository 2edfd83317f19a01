# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""``send(2)`` and ``recv(2)`` on a socket's descriptor, without Python's socket layer.

:class:`RawSocket` is what :class:`wsx.io.transport.Transport` calls to
write to and read from a plain TCP socket when this module is built: the
same results and errors as ``socket.send`` / ``socket.recv_into`` on a
non-blocking socket (the byte count; ``BlockingIOError`` when the socket
would block, the ``OSError`` subclass of the error otherwise), for about a
tenth of their cost per call: no argument parsing, no socket timeout logic,
no GIL release for a call that never waits. ``MSG_NOSIGNAL``: a closed peer
raises ``BrokenPipeError``, never ``SIGPIPE``. It decides nothing:
``Transport._push`` stays the one place that writes, ``Transport.recv_into``
the one place that reads.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
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
    ssize_t c_recv "recv" (int fd, void* buf, size_t n, int flags) nogil


cdef class RawSocket:
    """``RawSocket(sock)``: ``sock.send`` and ``sock.recv_into`` through ``send(2)`` / ``recv(2)``.

    Declared in ``_syscalls.pxd``: the compiled transport calls :meth:`send`
    and :meth:`recv_into` at C level.
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

    cpdef Py_ssize_t recv_into(self, buf) except -1:
        """Read into ``buf`` (a writable buffer, up to its size); the bytes read (0: EOF).

        Raises as ``socket.recv_into`` does (``BlockingIOError``: nothing there).
        """
        cdef Py_buffer view
        if type(buf) is bytearray:  # the compiled read path's: no buffer to take
            return self._recv(PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf))
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            return self._recv(<char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _recv(self, char* buf, Py_ssize_t size) except -1:
        cdef ssize_t n
        while True:
            n = c_recv(self.fd, buf, <size_t>size, 0)
            if n >= 0:
                return n
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
                return -1

    cdef Py_ssize_t _send(self, const char* buf, Py_ssize_t size) except -1:
        cdef ssize_t n
        while True:
            n = c_send(self.fd, buf, <size_t>size, MSG_NOSIGNAL)
            if n >= 0:
                return n
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
                return -1
