# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""RFC 6455 section 5.3 payload masking, compiled.

Every byte ``i`` of a client-to-server payload is XORed with
``key[(i + offset) % 4]``.  This module does it with 64-bit XORs against
the key rotated by ``offset`` and widened to 8 bytes (32 bytes per loop
step, then single words, then a 0..7 byte tail).  Loads and stores go
through ``memcpy``, so unaligned access is defined behaviour, and an
optimising C compiler turns the loop into SIMD code: SSE2 at ``-O3`` on
x86-64, and with GCC on x86-64 Linux also an AVX2 version of the 32-byte
loop, chosen when the module is loaded if the CPU has AVX2.  Buffers of 256 KiB and more are masked with
the GIL released: a buffer held through the buffer protocol stays valid
(a bytearray cannot be resized while it is exported).

The pure-Python twin with the same API and errors is ``wsx._mask_py``;
``wsx.mask`` picks one of them at import time.
"""

from cpython.buffer cimport (
    PyBUF_STRIDES,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from *:
    """
    /* The 32-bytes-per-step loops of _xor_copy / _xor_inplace. With GCC on
     * x86-64 Linux they are compiled twice, for AVX2 and for the baseline
     * (SSE2), and the dynamic loader picks the one the CPU runs (an ifunc):
     * AVX2 XORs 32 bytes per instruction. Elsewhere: one portable version,
     * which the compiler vectorises for its target. */
    #include <stdint.h>
    #include <string.h>
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
        && defined(__linux__) && defined(__GLIBC__)
    #define WSX_MASK_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define WSX_MASK_CLONES
    #endif

    WSX_MASK_CLONES static void
    wsx_xor_quads_copy(const unsigned char* src, unsigned char* dst,
                       Py_ssize_t nquads, uint64_t k64)
    {
        uint64_t w0, w1, w2, w3;
        for (Py_ssize_t b = 0; b < nquads; b++) {
            const unsigned char* s = src + (b << 5);
            unsigned char* d = dst + (b << 5);
            memcpy(&w0, s, 8); memcpy(&w1, s + 8, 8);
            memcpy(&w2, s + 16, 8); memcpy(&w3, s + 24, 8);
            w0 ^= k64; w1 ^= k64; w2 ^= k64; w3 ^= k64;
            memcpy(d, &w0, 8); memcpy(d + 8, &w1, 8);
            memcpy(d + 16, &w2, 8); memcpy(d + 24, &w3, 8);
        }
    }

    WSX_MASK_CLONES static void
    wsx_xor_quads_inplace(unsigned char* buf, Py_ssize_t nquads, uint64_t k64)
    {
        uint64_t w0, w1, w2, w3;
        for (Py_ssize_t b = 0; b < nquads; b++) {
            unsigned char* p = buf + (b << 5);
            memcpy(&w0, p, 8); memcpy(&w1, p + 8, 8);
            memcpy(&w2, p + 16, 8); memcpy(&w3, p + 24, 8);
            w0 ^= k64; w1 ^= k64; w2 ^= k64; w3 ^= k64;
            memcpy(p, &w0, 8); memcpy(p + 8, &w1, 8);
            memcpy(p + 16, &w2, 8); memcpy(p + 24, &w3, 8);
        }
    }
    """
    void wsx_xor_quads_copy(const unsigned char* src, unsigned char* dst,
                            Py_ssize_t nquads, uint64_t k64) nogil
    void wsx_xor_quads_inplace(unsigned char* buf, Py_ssize_t nquads, uint64_t k64) nogil


# Buffers at least this long are masked with the GIL released.  Below it the
# cost of dropping and re-taking the GIL outweighs the work.
cdef Py_ssize_t NOGIL_THRESHOLD = 262144
# Buffers up to this long are masked one word at a time (see _xor_words).
DEF SMALL_MAX = 512


cdef inline void _widen_key(const unsigned char* key4, Py_ssize_t rot,
                            unsigned char* k8, uint64_t* k64) noexcept nogil:
    # k8[j] == key[(j + rot) % 4] for j in 0..7, so byte i of a run that
    # starts at key position ``rot`` is XORed with k8[i % 8].
    k8[0] = key4[rot & 3]
    k8[1] = key4[(rot + 1) & 3]
    k8[2] = key4[(rot + 2) & 3]
    k8[3] = key4[(rot + 3) & 3]
    memcpy(k8 + 4, k8, 4)
    memcpy(k64, k8, 8)


cdef inline void _xor_words(unsigned char* buf, Py_ssize_t n,
                            const unsigned char* key4, Py_ssize_t rot) noexcept nogil:
    """buf[i] ^= key[(i + rot) % 4], one 64-bit word per step: for short buffers.

    Inlined into the caller, with no loop set-up: below SMALL_MAX this beats
    the unrolled kernel below, whose vector prologue and epilogue dominate
    when there are only a few words.
    """
    cdef unsigned char k8[8]
    cdef uint64_t k64, w
    cdef uint32_t k32, h
    cdef Py_ssize_t i = 0
    _widen_key(key4, rot, k8, &k64)
    while i + 8 <= n:
        memcpy(&w, buf + i, 8)
        w = w ^ k64
        memcpy(buf + i, &w, 8)
        i += 8
    if i + 4 <= n:  # i is a multiple of 8: the key starts at k8[0] again
        memcpy(&k32, k8, 4)
        memcpy(&h, buf + i, 4)
        h = h ^ k32
        memcpy(buf + i, &h, 4)
        i += 4
    while i < n:
        buf[i] = buf[i] ^ k8[i & 7]
        i += 1


cdef void _xor_copy(const unsigned char* src, unsigned char* dst, Py_ssize_t n,
                    const unsigned char* key4, Py_ssize_t rot) noexcept nogil:
    """dst[i] = src[i] ^ key[(i + rot) % 4]; src and dst must not overlap."""
    cdef unsigned char k8[8]
    cdef uint64_t k64, w
    cdef Py_ssize_t nquads = n >> 5
    cdef Py_ssize_t nblocks = n >> 3
    cdef Py_ssize_t b, i
    _widen_key(key4, rot, k8, &k64)
    # Main loop: 32 bytes per step (see wsx_xor_quads_copy above).
    wsx_xor_quads_copy(src, dst, nquads, k64)
    # Remaining whole 8-byte words (at most three), then the last 0..7 bytes.
    for b in range(nquads << 2, nblocks):
        memcpy(&w, src + (b << 3), 8)
        w = w ^ k64
        memcpy(dst + (b << 3), &w, 8)
    for i in range(nblocks << 3, n):
        dst[i] = src[i] ^ k8[i & 7]


cdef void _xor_inplace(unsigned char* buf, Py_ssize_t n,
                       const unsigned char* key4, Py_ssize_t rot) noexcept nogil:
    """buf[i] ^= key[(i + rot) % 4].

    A separate kernel from ``_xor_copy`` so that the compiler sees a single
    pointer and vectorises without a runtime aliasing check (which would
    send src == dst down the scalar path).
    """
    cdef unsigned char k8[8]
    cdef uint64_t k64, w
    cdef Py_ssize_t nquads = n >> 5
    cdef Py_ssize_t nblocks = n >> 3
    cdef Py_ssize_t b, i
    _widen_key(key4, rot, k8, &k64)
    wsx_xor_quads_inplace(buf, nquads, k64)
    for b in range(nquads << 2, nblocks):
        memcpy(&w, buf + (b << 3), 8)
        w = w ^ k64
        memcpy(buf + (b << 3), &w, 8)
    for i in range(nblocks << 3, n):
        buf[i] = buf[i] ^ k8[i & 7]


cdef int _get_buffer(object obj, Py_buffer* view, str what) except -1:
    """Acquire a C-contiguous byte view of ``obj`` (released by the caller)."""
    PyObject_GetBuffer(obj, view, PyBUF_STRIDES)
    if not PyBuffer_IsContiguous(view, b'C'):
        PyBuffer_Release(view)
        raise ValueError(f"{what} must be a C-contiguous buffer")
    return 0


cdef int _load_key(object key, unsigned char* out4) except -1:
    """Copy the 4-byte masking key into ``out4``."""
    cdef Py_buffer kv
    if type(key) is bytes and PyBytes_GET_SIZE(key) == 4:
        # The usual case, without the buffer protocol's overhead.
        memcpy(out4, PyBytes_AS_STRING(key), 4)
        return 0
    _get_buffer(key, &kv, "key")
    try:
        if kv.len != 4:
            raise ValueError(f"mask key must be exactly 4 bytes long, got {kv.len}")
        memcpy(out4, kv.buf, 4)
    finally:
        PyBuffer_Release(&kv)
    return 0


def mask(data, key, Py_ssize_t offset=0):
    """Return ``data`` XORed with the 4-byte ``key`` as new ``bytes``.

    ``data`` is any C-contiguous buffer (bytes, bytearray, memoryview, ...).
    Masking starts at key position ``offset % 4``, so a payload can be masked
    chunk by chunk by passing the number of bytes already masked.

    Raises TypeError if ``data`` or ``key`` is not bytes-like, ValueError if
    a buffer is not C-contiguous or ``key`` is not exactly 4 bytes long.
    """
    cdef unsigned char k4[4]
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef Py_ssize_t rot = offset & 3
    cdef bytes out
    cdef unsigned char* dst
    _load_key(key, k4)
    if type(data) is bytes and PyBytes_GET_SIZE(data) < NOGIL_THRESHOLD:
        # Small immutable input: no buffer export needed (the usual case).
        n = PyBytes_GET_SIZE(data)
        out = PyBytes_FromStringAndSize(NULL, n)
        _xor_copy(<const unsigned char*>PyBytes_AS_STRING(data),
                  <unsigned char*>PyBytes_AS_STRING(out), n, k4, rot)
        return out
    _get_buffer(data, &view, "data")
    try:
        n = view.len
        out = PyBytes_FromStringAndSize(NULL, n)
        if n == 0:
            return out
        dst = <unsigned char*>PyBytes_AS_STRING(out)
        if n >= NOGIL_THRESHOLD:
            with nogil:
                _xor_copy(<const unsigned char*>view.buf, dst, n, k4, rot)
        else:
            _xor_copy(<const unsigned char*>view.buf, dst, n, k4, rot)
        return out
    finally:
        PyBuffer_Release(&view)


def mask_inplace(buf, key, Py_ssize_t offset=0):
    """XOR the writable buffer ``buf`` with the 4-byte ``key`` in place.

    ``buf`` is a bytearray, a writable memoryview (a slice of a bytearray at
    any alignment included) or another writable C-contiguous buffer.  Masking
    starts at key position ``offset % 4``.  Returns None.

    Raises TypeError if ``buf`` is read-only or not bytes-like, ValueError if
    it is not C-contiguous or ``key`` is not exactly 4 bytes long.
    """
    if (type(buf) is bytearray and PyByteArray_GET_SIZE(buf) <= SMALL_MAX
            and type(key) is bytes and PyBytes_GET_SIZE(key) == 4):
        # The usual small case: straight to the word loop.
        _xor_words(<unsigned char*>PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf),
                   <const unsigned char*>PyBytes_AS_STRING(key), offset & 3)
    else:
        _mask_inplace(buf, key, offset & 3)


cdef int _mask_inplace(object buf, object key, Py_ssize_t rot) except -1:
    """mask_inplace() for any buffer and key (checked here)."""
    cdef unsigned char k4[4]
    cdef Py_buffer view
    cdef Py_ssize_t n
    _load_key(key, k4)
    if type(buf) is bytearray and PyByteArray_GET_SIZE(buf) < NOGIL_THRESHOLD:
        # Small bytearray: masked under the GIL, so it cannot be resized meanwhile.
        _xor_inplace(<unsigned char*>PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf),
                     k4, rot)
        return 0
    _get_buffer(buf, &view, "buffer")
    try:
        if view.readonly:
            raise TypeError(
                f"mask_inplace() needs a writable buffer, "
                f"got a read-only {type(buf).__name__}"
            )
        n = view.len
        if n >= NOGIL_THRESHOLD:
            with nogil:
                _xor_inplace(<unsigned char*>view.buf, n, k4, rot)
        else:
            _xor_inplace(<unsigned char*>view.buf, n, k4, rot)
    finally:
        PyBuffer_Release(&view)
    return 0


def frame_masked(header, payload, key):
    """Return ``header + mask(payload, key)`` built in one allocation.

    This is the send hot path: a frame header (which, for a client frame,
    ends with the masking key itself) followed by the masked payload.
    """
    cdef unsigned char k4[4]
    cdef Py_buffer hv
    cdef Py_buffer pv
    cdef Py_ssize_t nh, n
    cdef bytes out
    cdef unsigned char* dst
    _load_key(key, k4)
    if (type(header) is bytes and type(payload) is bytes
            and PyBytes_GET_SIZE(payload) < NOGIL_THRESHOLD):
        nh = PyBytes_GET_SIZE(header)
        n = PyBytes_GET_SIZE(payload)
        out = PyBytes_FromStringAndSize(NULL, nh + n)
        dst = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(dst, PyBytes_AS_STRING(header), nh)
        _xor_copy(<const unsigned char*>PyBytes_AS_STRING(payload), dst + nh, n, k4, 0)
        return out
    _get_buffer(header, &hv, "header")
    try:
        _get_buffer(payload, &pv, "payload")
        try:
            nh = hv.len
            n = pv.len
            out = PyBytes_FromStringAndSize(NULL, nh + n)
            if nh + n == 0:
                return out
            dst = <unsigned char*>PyBytes_AS_STRING(out)
            if nh:
                memcpy(dst, hv.buf, nh)
            if n >= NOGIL_THRESHOLD:
                with nogil:
                    _xor_copy(<const unsigned char*>pv.buf, dst + nh, n, k4, 0)
            elif n:
                _xor_copy(<const unsigned char*>pv.buf, dst + nh, n, k4, 0)
            return out
        finally:
            PyBuffer_Release(&pv)
    finally:
        PyBuffer_Release(&hv)
