# C fields and C-level methods of wsx.core.protocol.Protocol when that source
# is compiled as wsx.core._protocol (see wsx/_twins.py). The compiled read
# path (wsx/process/_reader.pyx) calls reads_plain / receive_frames /
# receive_failed without attribute lookups (it reads no private field); the
# transport calls send, send_close, answer_close and data_to_send.

cimport cython

from wsx.core._codec cimport encode_data


cdef class Protocol:
    cdef public object side
    cdef public bint _mask_out
    cdef public object state
    cdef public object max_message_size
    cdef public object extensions
    cdef public bint _plain
    cdef public object _parser
    cdef public bytes _out
    cdef public list _more
    cdef public object _close_owed
    cdef public object close_received
    cdef public object close_sent
    cdef public object error
    cdef public int _msg_opcode
    cdef public int _msg_rsv
    cdef public bytearray _msg_data
    cdef public Py_ssize_t _msg_frames
    cdef public object _decoder
    cdef public Py_ssize_t _validated
    cdef public int _send_opcode

    cpdef bint reads_plain(self)
    @cython.locals(data=bytes, more=list)
    cpdef bytes data_to_send(self)
    cdef _buffer(self, bytes data)
    @cython.locals(shape=tuple)
    cpdef send(self, frame)
    cpdef bytes _encode(self, frame)
    cpdef bint send_close(self, code=*, reason=*) except -1
    cpdef bint answer_close(self) except -1
    cpdef list receive_data(self, data)
    cpdef list receive_frames(self, list frames)
    cpdef list receive_failed(self, exc)
    cdef _check_size(self, Py_ssize_t size)
