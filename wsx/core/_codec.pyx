# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""RFC 6455 frame codec, compiled: the hot paths of :mod:`wsx.core.frames`.

``FrameParser``, ``encode_frame``, ``encode_data`` and ``MaskKeySource``
here have the API, results and errors of the pure-Python ones in
``wsx/core/frames.py``, which picks them when this extension is built (and
``WSX_NO_EXTENSIONS`` is not set). Both parse either direction: a client's
parser takes unmasked frames, a server's (``masked=True``) masked ones.

What they do differently, for speed:

* the parser reads frames straight from the bytes it is fed and buffers
  only an incomplete tail (the pure-Python parser appends every chunk to its
  buffer first);
* frame headers are checked inline; only a header that breaks a rule (or
  that the fast check does not cover) goes to the Python checker
  ``wsx.core.frames.check_header``, so the rules and their error messages live in
  one place;
* a masked frame's payload is unmasked as it is copied into the bytes
  object it is returned as (in place, for a payload received into that
  object as it arrived);
* ``encode_frame`` writes header, masking key and masked payload into one
  new ``bytes`` object, with keys taken from the process's one
  ``MaskKeySource`` (``default_keys``), read from ``os.urandom`` 4 KiB at
  a time.

Nothing here touches a socket: like ``wsx.core.frames`` it is sans-I/O.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from wsx._mask cimport _xor_copy, _xor_inplace

import os

from wsx.errors import FrameError

# Bound by wsx.core.frames at import (see _bind): the Frame named tuple, the
# Python header checker (rules and messages), the pure-Python encoder (its
# errors) and the default size limit.
cdef object _Frame = tuple
cdef object _check_header = None
cdef object _encode_py = None
cdef object _byte_payload = None
cdef object _default_max = 16 * 1024 * 1024
cdef object _tuple_new = tuple.__new__

# Payloads at least this long are masked with the GIL released.
DEF NOGIL_THRESHOLD = 262144
# An incomplete frame payload up to this size is received straight into the
# bytes object it will be (allocated once its header is in): one copy, one
# allocation. Longer ones (only with a raised max_message_size) are gathered
# in a growing buffer instead, so that a header alone cannot make the client
# allocate more than this.
DEF PREALLOC_MAX = 4 * 1024 * 1024

_DEFAULT = object()


def _bind(frame_type, check_header, encode_py, default_max, byte_payload):
    """Connect this module to ``wsx.core.frames`` (called once, by that module)."""
    global _Frame, _check_header, _encode_py, _default_max, _byte_payload
    _byte_payload = byte_payload
    _Frame = frame_type
    _check_header = check_header
    _encode_py = encode_py
    _default_max = default_max


cdef inline long long _limit(object value, str name) except -2:
    if value is None:
        return -1
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int or None, not {value!r}")
    return value


cdef class FrameParser:
    """Incremental frame parser, compiled (``masked=True``: a server's, for client frames).

    Same API and behaviour as the pure-Python ``wsx.core.frames.FrameParser``:
    :meth:`feed` returns the complete frames, a broken header raises
    ``FrameError`` carrying the frames completed before it as ``exc.frames``.
    """

    # Attributes and C-level methods: declared in _codec.pxd.

    def __init__(self, max_frame_size=_DEFAULT, max_message_size=_DEFAULT, int allowed_rsv=0,
                 bint masked=False):
        self._buf = bytearray()
        self._masked = masked
        self.max_frame_size = _default_max if max_frame_size is _DEFAULT else max_frame_size
        self.max_message_size = _default_max if max_message_size is _DEFAULT else max_message_size
        self._allowed_rsv = allowed_rsv
        self._fragmented = False
        self._message_len = 0
        self._p = False
        self._pbytes = None

    @property
    def max_frame_size(self):
        """Largest frame accepted (bytes), or ``None`` for no limit."""
        return None if self._max_frame < 0 else self._max_frame

    @max_frame_size.setter
    def max_frame_size(self, value):
        self._max_frame = _limit(value, "max_frame_size")

    @property
    def max_message_size(self):
        """Largest message accepted (bytes), or ``None`` for no limit."""
        return None if self._max_message < 0 else self._max_message

    @max_message_size.setter
    def max_message_size(self, value):
        self._max_message = _limit(value, "max_message_size")

    @property
    def allowed_rsv(self):
        """RSV bits (as in the first header byte) that negotiated extensions claim."""
        return self._allowed_rsv

    @allowed_rsv.setter
    def allowed_rsv(self, int value):
        self._allowed_rsv = value

    @property
    def masked(self):
        """True for a server's parser: every frame must be masked, payloads are unmasked."""
        return self._masked

    @property
    def buffered(self):
        """Number of received bytes not yet returned as frames."""
        if self._pbytes is not None:
            return self._p_hlen + self._pfill
        return PyByteArray_GET_SIZE(self._buf)

    def pending_header(self):
        """``(opcode, rsv)`` of a frame whose payload is still arriving, else ``None``."""
        if not self._p:
            return None
        return (self._p_opcode, self._p_rsv)

    def pending_bytes(self, Py_ssize_t skip=0):
        """The payload received so far of the incomplete frame, less its first ``skip`` bytes."""
        if not self._p:
            return b""
        cdef bytes out
        if self._pbytes is not None:
            if skip >= self._pfill:
                return b""
            return self._payload(PyBytes_AS_STRING(self._pbytes) + skip, self._pfill - skip,
                                 skip)
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self._buf)
        cdef Py_ssize_t start = self._p_start + skip
        cdef Py_ssize_t stop = size
        if <uint64_t>(size - self._p_start) > self._p_length:
            stop = self._p_start + <Py_ssize_t>self._p_length
        if start >= stop:
            return b""
        return self._payload(PyByteArray_AS_STRING(self._buf) + start, stop - start, skip)

    cdef bytes _payload(self, const char* src, Py_ssize_t n, Py_ssize_t offset):
        """A new bytes object of the ``n`` payload bytes at ``src`` (from ``offset`` on), unmasked.

        Never unmasks in place an object made from bytes: CPython shares the
        one-byte ones.
        """
        if not self._masked:
            return PyBytes_FromStringAndSize(src, n)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
        _xor_copy(<const unsigned char*>src, <unsigned char*>PyBytes_AS_STRING(out), n,
                  self._p_key, offset & 3)
        return out

    def feed(self, data):
        """Add received bytes; return the frames they complete (possibly none)."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self.feed_at(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef bint partial_text(self):
        """True while a frame that is not binary (text, continuation) is partly received."""
        return self._p and self._p_opcode != 2

    cdef list feed_at(self, const char* base, Py_ssize_t size):
        """:meth:`feed` for ``size`` bytes at ``base`` (the read path of wsx.process._reader)."""
        cdef list frames = []
        cdef Py_ssize_t pos, off = 0, take
        try:
            if self._pbytes is not None:
                # The rest of a payload being received in place.
                take = <Py_ssize_t>self._p_length - self._pfill
                if take > size:
                    take = size
                memcpy(PyBytes_AS_STRING(self._pbytes) + self._pfill, base, take)
                self._pfill += take
                off = take
                if self._pfill < <Py_ssize_t>self._p_length:
                    return frames
                if self._masked:  # a bytes object of its own (made with no content)
                    _xor_inplace(<unsigned char*>PyBytes_AS_STRING(self._pbytes), self._pfill,
                                 self._p_key, 0)
                frames.append(_tuple_new(
                    _Frame, (self._p_opcode, self._p_fin, self._p_rsv, self._pbytes)))
                self._pbytes = None
                self._p = False
            if PyByteArray_GET_SIZE(self._buf) == 0:
                # Usual case: nothing buffered, parse the new bytes in place
                # and keep only what remains of an incomplete frame.
                pos = off + self._parse(<const unsigned char*>base + off, size - off, frames)
                if self._p:
                    self._p_start += off  # from base + off to base
                if pos < size and not self._receive_in_place(base, pos, size):
                    self._buf[:] = PyBytes_FromStringAndSize(base + pos, size - pos)
                    if self._p:
                        self._p_start -= pos
            else:
                self._buf += PyBytes_FromStringAndSize(base + off, size - off)
                base = PyByteArray_AS_STRING(self._buf)
                pos = self._parse(<const unsigned char*>base, PyByteArray_GET_SIZE(self._buf),
                                  frames)
                if self._receive_in_place(base, pos, PyByteArray_GET_SIZE(self._buf)):
                    del self._buf[:]
                elif pos:
                    del self._buf[:pos]
                    if self._p:
                        self._p_start -= pos
        except FrameError as exc:
            exc.frames = frames
            raise
        return frames

    cdef bint _receive_in_place(self, const char* base, Py_ssize_t pos, Py_ssize_t end):
        """Start receiving the incomplete frame at ``base[pos:end]`` into its payload object.

        Only for a frame whose header is checked and whose payload is at most
        PREALLOC_MAX bytes; returns False (nothing done) otherwise.
        """
        if not self._p or self._p_length > PREALLOC_MAX:
            return False
        cdef Py_ssize_t have = end - self._p_start
        self._pbytes = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>self._p_length)
        memcpy(PyBytes_AS_STRING(self._pbytes), base + self._p_start, have)
        self._pfill = have
        self._p_hlen = self._p_start - pos
        return True

    cdef Py_ssize_t _parse(self, const unsigned char* p, Py_ssize_t end, list frames) except -1:
        """Parse frames from ``p[0:end]``; return the offset of the first byte not consumed."""
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t start
        cdef uint64_t length
        cdef unsigned int b0, b1
        cdef int i
        cdef object payload
        while True:
            if self._p:
                start = self._p_start
                length = self._p_length
            else:
                if end - pos < 2:
                    break
                b0 = p[pos]
                b1 = p[pos + 1]
                length = b1 & 0x7F
                start = pos + 2
                if length == 126:
                    if end - pos < 4:
                        break
                    length = (<uint64_t>p[pos + 2] << 8) | p[pos + 3]
                    start = pos + 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    length = 0
                    for i in range(8):
                        length = (length << 8) | p[pos + 2 + i]
                    start = pos + 10
                if self._masked and b1 & 0x80:
                    if end - start < 4:
                        break  # the masking key is not all in: check the header later
                    memcpy(self._p_key, p + start, 4)
                    start += 4
                self._header(b0, b1, length)
                self._p = True
                self._p_start = start
                self._p_length = length
            if length > <uint64_t>(end - start):
                break
            self._p = False
            payload = self._payload(<const char*>p + start, <Py_ssize_t>length, 0)
            frames.append(_tuple_new(_Frame, (self._p_opcode, self._p_fin, self._p_rsv, payload)))
            pos = start + <Py_ssize_t>length
        return pos

    cdef int _header(self, unsigned int b0, unsigned int b1, uint64_t length) except -1:
        """Check one header; set the ``_p_*`` fields or raise ``FrameError``."""
        cdef int opcode = b0 & 0x0F
        cdef int rsv = b0 & 0x70
        cdef bint fin = (b0 & 0x80) != 0
        cdef uint64_t total
        cdef bint ok = False
        if ((b1 & 0x80) != 0) == self._masked and not (rsv & ~self._allowed_rsv):
            if opcode >= 8:
                ok = opcode <= 0xA and fin and not rsv and length <= 125
            elif (opcode == 1 or opcode == 2) and not self._fragmented or (
                opcode == 0 and self._fragmented
            ):
                total = length + self._message_len if opcode == 0 else length
                ok = (
                    not (length >> 63)
                    and (self._max_frame < 0 or length <= <uint64_t>self._max_frame)
                    and (self._max_message < 0 or total <= <uint64_t>self._max_message)
                )
                if ok:
                    self._fragmented = not fin
                    self._message_len = 0 if fin else total
        if ok:
            self._p_opcode = opcode
            self._p_fin = fin
            self._p_rsv = rsv
            return 0
        # Broken, or outside the fast check: the Python checker raises the
        # right FrameError, or accepts the header and says how.
        result = _check_header(
            b0, b1, length, self._allowed_rsv, self._fragmented, self._message_len,
            self.max_frame_size, self.max_message_size, self._masked,
        )
        self._p_opcode, self._p_fin, self._p_rsv, self._fragmented, self._message_len = result
        return 0


cdef class MaskKeySource:
    """Masking keys read from ``os.urandom`` in batches (``wsx.core.frames.MaskKeySource``)."""

    def __init__(self, Py_ssize_t batch=1024):
        if batch < 1:
            raise ValueError(f"batch must be at least 1 key, not {batch!r}")
        self._batch = batch * 4
        self._pool = b""
        self._pos = 0

    def __call__(self):
        return self.next()

    cdef bytes next(self):
        """The next 4-byte key."""
        if self._pos + 4 > PyBytes_GET_SIZE(self._pool):
            self._pool = os.urandom(self._batch)
            self._pos = 0
        cdef bytes key = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self._pool) + self._pos, 4)
        self._pos += 4
        return key


#: The keys of every frame this process encodes without a given key.
cdef MaskKeySource _keys = MaskKeySource()
default_keys = _keys


def encode_frame(int opcode, payload=b"", bint fin=True, int rsv=0, mask_key=None,
                 bint masked=True):
    """Encode one frame (see ``wsx.core.frames.encode_frame``)."""
    cdef Py_buffer view
    if mask_key is not None and not (type(mask_key) is bytes and PyBytes_GET_SIZE(mask_key) == 4):
        return _encode_py(opcode, payload, fin, rsv, mask_key, masked)
    if type(payload) is not bytes and type(payload) is not bytearray:
        payload = _byte_payload(payload)  # the rule for other buffers (frames.byte_payload)
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if opcode >= 8 and (view.len > 125 or not fin):
            return _encode_py(opcode, payload, fin, rsv, mask_key, masked)  # raises
        return _encode(opcode, <const unsigned char*>view.buf, view.len, fin, rsv, mask_key,
                       masked)
    finally:
        PyBuffer_Release(&view)


cdef bytes _encode(int opcode, const unsigned char* data, Py_ssize_t n, bint fin, int rsv,
                   object mask_key, bint masked):
    """Header (+ key + masked payload) of a frame whose arguments are checked, as one object.

    ``mask_key``: 4 bytes, or None for a key from the pool.
    """
    cdef Py_ssize_t hlen, i
    cdef unsigned char header[14]
    cdef const unsigned char* key
    cdef bytes key_bytes
    cdef bytes out
    cdef unsigned char* dst
    header[0] = (0x80 if fin else 0) | rsv | opcode
    header[1] = 0x80 if masked else 0
    if n < 126:
        header[1] |= n
        hlen = 2
    elif n < 0x10000:
        header[1] |= 126
        header[2] = (n >> 8) & 0xFF
        header[3] = n & 0xFF
        hlen = 4
    else:
        header[1] |= 127
        for i in range(8):
            header[2 + i] = (<uint64_t>n >> (56 - 8 * i)) & 0xFF
        hlen = 10
    if not masked:
        out = PyBytes_FromStringAndSize(NULL, hlen + n)
        dst = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(dst, header, hlen)
        memcpy(dst + hlen, data, n)
        return out
    key_bytes = _keys.next() if mask_key is None else mask_key
    key = <const unsigned char*>PyBytes_AS_STRING(key_bytes)
    out = PyBytes_FromStringAndSize(NULL, hlen + 4 + n)
    dst = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(dst, header, hlen)
    memcpy(dst + hlen, key, 4)
    if n >= NOGIL_THRESHOLD:
        with nogil:
            _xor_copy(data, dst + hlen + 4, n, key, 0)
    else:
        _xor_copy(data, dst + hlen + 4, n, key, 0)
    return out


cpdef bytes encode_data(int opcode, bytes payload, bint masked=True):
    """A whole data frame (``opcode`` 1 or 2, fin, no RSV) carrying ``payload``.

    ``wsx.core.frames.encode_data``: ``encode_frame(opcode, payload,
    masked=masked)`` without the other optional arguments (no keyword
    handling on the send path). ``masked``: a client's frame; False: a server's.
    """
    return _encode(opcode, <const unsigned char*>PyBytes_AS_STRING(payload),
                   PyBytes_GET_SIZE(payload), True, 0, None, masked)
