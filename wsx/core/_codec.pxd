# Declarations of wsx/core/_codec.pyx shared with other compiled wsx modules:
# the compiled read path calls the parser at C level (feed_at, partial_text:
# its interface; the fields are the parser's own), the protocol the encoder.

from libc.stdint cimport uint64_t


cdef class FrameParser:
    cdef bytearray _buf
    cdef long long _max_frame
    cdef long long _max_message
    cdef int _allowed_rsv
    cdef bint _masked
    cdef bint _fragmented
    cdef uint64_t _message_len
    # Header of the frame whose payload is incomplete (``_p``): its payload
    # starts at ``_p_start`` in ``_buf``, or is being received into ``_pbytes``
    # (``_pfill`` bytes so far; ``_p_hlen`` header bytes came before them).
    cdef object _pbytes
    cdef Py_ssize_t _pfill
    cdef Py_ssize_t _p_hlen
    cdef bint _p
    cdef int _p_opcode
    cdef bint _p_fin
    cdef int _p_rsv
    cdef Py_ssize_t _p_start
    cdef uint64_t _p_length
    cdef unsigned char _p_key[4]  # masking key of the pending frame (masked mode)

    cdef list feed_at(self, const char* base, Py_ssize_t size)
    cdef bint partial_text(self)
    cdef bytes _payload(self, const char* src, Py_ssize_t n, Py_ssize_t offset)
    cdef bint _receive_in_place(self, const char* base, Py_ssize_t pos, Py_ssize_t end)
    cdef Py_ssize_t _parse(self, const unsigned char* p, Py_ssize_t end, list frames) except -1
    cdef int _header(self, unsigned int b0, unsigned int b1, uint64_t length) except -1


cdef class MaskKeySource:
    cdef bytes _pool
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _batch
    cdef bytes next(self)


cpdef bytes encode_data(int opcode, bytes payload, bint masked=*)
