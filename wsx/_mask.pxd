# Declarations shared with other compiled wsx modules (wsx/core/_codec.pyx uses the
# copy-and-mask kernel to build frames and the in-place one to unmask them).

cdef void _xor_copy(const unsigned char* src, unsigned char* dst, Py_ssize_t n,
                    const unsigned char* key4, Py_ssize_t rot) noexcept nogil
cdef void _xor_inplace(unsigned char* buf, Py_ssize_t n,
                       const unsigned char* key4, Py_ssize_t rot) noexcept nogil
