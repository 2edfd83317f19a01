# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The compiled read path of :class:`wsx.client.Client`: one C call per readable socket.

The loop calls a client's reader when its socket is readable. In Python
(``Client._on_readable``) that reader goes through about fifteen method calls
for each message: receive, parse, turn frames into events, run the callback,
look at its result, encode the reply, write it. :class:`FastReader` does the
same for the usual case in one compiled function, with the callback module's
``handle_frame`` as the only Python code it runs:

* a plain ``ws://`` connection, open, without extension, trace or telemetry
  handler, not paused, suspended or closing;
* whole unfragmented text or binary messages (``handle_frame``);
* callback results ``("ok", state)`` and ``("reply", ("text"|"binary", data),
  state)``.

Anything else goes back to the Python code, which stays the one definition of
the behaviour: the whole read when the connection is not in the usual state
(``Client._on_readable``); from the first frame that is not a whole text or
binary message (a ping, a close, a fragment, invalid UTF-8, a parser error),
the rest of the frames (``Protocol.receive_frames`` / ``receive_failed``, then
``Client._dispatch``); any other callback result (``Client._apply``), and a
reply that is not a plain text or binary frame (``Client._reply``). The
results are the same either way (the test suite runs both, the Python path
with ``WSX_NO_EXTENSIONS=1``): same events in the same order, replies to the
messages of one read written together, same errors and close codes.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport strerror

from wsx._codec cimport FrameParser, ProtocolFields, encode_data

import ssl

from wsx.errors import ConnError, FrameError
from wsx.process import _current
from wsx.protocol import OPEN
from wsx.telemetry import _handlers

cdef extern from *:
    """
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0  /* Python ignores SIGPIPE anyway */
    #endif
    """
    int EWOULDBLOCK
    int MSG_NOSIGNAL
    ssize_t c_recv "recv" (int fd, void* buf, size_t n, int flags) nogil
    ssize_t c_send "send" (int fd, const void* buf, size_t n, int flags) nogil

# wsx.telemetry's handler table (changed in place, never rebound): empty when
# no handler is attached.
cdef dict _telemetry = _handlers

cdef tuple _WOULD_BLOCK = (
    BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


cdef object _os_error(int err):
    return OSError(err, strerror(err).decode("utf-8", "replace"))


cdef class ClientFields:
    """The attributes of :class:`wsx.client.Client` read on every message, as C fields.

    ``Client`` derives from it when this module is built (else from a plain
    twin in ``client.py``): the Python code reads and writes them as usual
    attributes, :class:`FastReader` as fields of a struct instead of looking
    each one up in the instance dictionary. What they mean is documented in
    ``Client.__init__``.
    """

    cdef public object _sock
    cdef public object _protocol
    cdef public object _cb
    cdef public object _state
    cdef public object _dbg
    cdef public object _cork
    cdef public object _inbox
    cdef public object _wbuf
    cdef public object _wlock
    cdef public object _write_limit
    cdef public object _close_reason
    cdef public object connection_state
    cdef public bint _secure
    cdef public bint _read_paused
    cdef public bint _suspended
    cdef public bint _terminated
    cdef public bint _in_callback
    cdef public bint _alive


cdef class FastReader:
    """Reader of one client's socket (see the module docstring). Called by the loop.

    The client's and the protocol's attributes it needs are C fields
    (:class:`ClientFields`, ``wsx._codec.ProtocolFields``), read and written
    without an attribute lookup. What cannot change during a connection is
    kept here, taken again when the socket (``_sock``) or the protocol
    (``_protocol``) is a new one.
    """

    cdef ClientFields client
    cdef object view  # the loop's read buffer (a memoryview), shared by its clients
    cdef bytearray buf  # the bytearray under it (exported: its size cannot change)
    # Per socket: set by Client._connect / _teardown before the socket is.
    cdef object sock
    cdef int fd
    cdef bint secure  # TLS: read and written through the SSLSocket
    cdef bytearray wbuf
    cdef object acquire, release  # the client's write lock's (_wlock)
    # Per protocol: set by Client._on_open with the protocol.
    cdef object protocol
    cdef ProtocolFields p  # the protocol (None: not one this path knows)
    cdef FrameParser parser  # None: the pure-Python parser, not for this path
    cdef bint plain
    cdef object write_limit  # an int (any size)
    # The callback module of the connection (or of wsx.sys.change_code), and
    # its handle_frame method, looked up once (a bound method is a new object
    # per lookup).
    cdef object cb
    cdef object handle_frame

    def __init__(self, client):
        self.client = client
        self.view = client.loop.read_buffer
        self.buf = self.view.obj
        self.sock = None
        self.fd = -1
        self.protocol = None

    def forget(self):
        """Drop the socket and protocol kept from the connection (Client._teardown)."""
        self.sock = None
        self.fd = -1
        self.wbuf = None
        self.acquire = self.release = None
        self.cb = self.handle_frame = None
        self.protocol = None
        self.p = None
        self.parser = None

    def __call__(self):
        cdef ClientFields client = self.client
        cdef ProtocolFields p
        cdef object sock, protocol
        cdef char* data
        cdef Py_ssize_t n
        while True:
            sock = client._sock
            protocol = client._protocol
            if sock is None or protocol is None:
                break
            if sock is not self.sock:
                self.fd = sock.fileno()
                self.secure = client._secure
                self.wbuf = client._wbuf
                self.acquire = client._wlock.acquire
                self.release = client._wlock.release
                self.sock = sock
            if protocol is not self.protocol:
                self.p = protocol if isinstance(protocol, ProtocolFields) else None
                parser = None if self.p is None else self.p._parser
                self.parser = parser if type(parser) is FrameParser else None
                self.plain = self.p is not None and self.p._plain
                self.write_limit = client._write_limit
                self.cb = None  # handle_frame is looked up again for each connection
                self.protocol = protocol
            p = self.p
            if (
                client._dbg is not None
                or client._read_paused
                or client._suspended
                or client._terminated
                or client._cork is not None
                or client._inbox
                or _telemetry
                or not self.plain
                or self.parser is None
                or p.state is not OPEN
                or p.error is not None
                or p.close_received is not None
                or p._validated
            ):
                break
            data = PyByteArray_AS_STRING(self.buf)
            if self.secure:
                try:
                    n = sock.recv_into(self.view)
                except _WOULD_BLOCK:
                    return
                except OSError as exc:
                    client._lost(sock, ("error", ConnError("connection broken", exc)))
                    return
            else:
                while True:
                    n = c_recv(self.fd, data, PyByteArray_GET_SIZE(self.buf), 0)
                    if n >= 0 or errno != EINTR:
                        break
                if n < 0:
                    err = errno
                    if err == EAGAIN or err == EWOULDBLOCK:
                        return
                    client._lost(sock, ("error", ConnError("connection broken", _os_error(err))))
                    return
            if n == 0:
                client._lost(sock, client._close_reason or ("remote", "closed"))
                return
            client._alive = True
            self._received(client, protocol, data, n)
            # Data already decrypted by TLS does not wake the selector again.
            if not (self.secure and sock is client._sock and sock.pending()):
                return
        client._on_readable()  # not the usual case: the Python path decides

    cdef int _received(self, ClientFields client, protocol, const char* data,
                       Py_ssize_t n) except -1:
        cdef FrameParser parser = self.parser
        try:
            frames = parser._feed(data, n)
        except FrameError as exc:
            client._dispatch(protocol, protocol.receive_failed(exc))
            return 0
        cdef Py_ssize_t count = len(frames)
        if count == 0:
            if parser._p and parser._p_opcode != 2:
                # Part of a text frame: validated as it comes (fail fast).
                client._dispatch(protocol, protocol.receive_frames(frames))
            return 0
        if count > 1:
            client._cork = []  # the replies to this read go out in one write
        try:
            self._frames(client, protocol, self.p, parser, frames, count)
        finally:
            if count > 1:
                client._uncork()
        return 0

    cdef int _frames(self, ClientFields client, protocol, ProtocolFields p,
                     FrameParser parser, list frames, Py_ssize_t count) except -1:
        cdef Py_ssize_t i
        cdef tuple frame
        cdef int opcode
        for i in range(count):
            frame = <tuple>frames[i]
            opcode = frame[0]
            event = None
            if frame[1] and (
                i == 0  # checked by __call__
                or not (client._suspended or client._terminated or client._dbg is not None
                        or _telemetry)
            ):
                if opcode == 2:
                    event = ("binary", frame[3])
                elif opcode == 1:
                    try:
                        event = ("text", (<bytes>frame[3]).decode("utf-8"))
                    except UnicodeDecodeError:
                        pass  # the Python path fails the connection with 1007
            if event is None:
                client._dispatch(protocol, protocol.receive_frames(frames[i:]))
                return 0
            self._callback(client, event)
        if parser._p and parser._p_opcode != 2:
            client._dispatch(protocol, protocol.receive_frames([]))
        elif p._out or p._close_to_send is not None:
            client._flush_protocol(protocol)
        return 0

    cdef int _callback(self, ClientFields client, event) except -1:
        """``Client._callback("handle_frame", event)``: 1, or 0 if the client crashed."""
        cb = client._cb
        if cb is not self.cb:  # a new connection's, or wsx.sys.change_code
            self.handle_frame = cb.handle_frame
            self.cb = cb
        client._in_callback = True
        current = _current
        previous = getattr(current, "process", None)
        current.process = client
        try:
            result = self.handle_frame(event, client._state)
        except (Exception, SystemExit) as exc:
            client._crash("handle_frame", exc)
            return 0
        finally:
            client._in_callback = False
            current.process = previous
        if type(result) is tuple:
            n = len(<tuple>result)
            if n == 2 and result[0] == "ok":
                client._state = result[1]
                return 1
            if n == 3 and result[0] == "reply":
                client._state = result[2]
                try:
                    self._reply(client, result[1])
                except Exception as exc:
                    client._crash("handle_frame", exc)
                    return 0
                return 1
        return 1 if client._apply("handle_frame", result) else 0

    cdef int _reply(self, ClientFields client, frame) except -1:
        """``Client._reply("handle_frame", frame)``, encoding plain frames here."""
        protocol = client._protocol
        cdef bytes data = None
        if (
            type(frame) is tuple
            and len(<tuple>frame) == 2
            and protocol is self.protocol
            and protocol is not None
            and client._dbg is None
            and not _telemetry
            and client.connection_state == "open"
        ):
            kind = frame[0]
            payload = frame[1]
            if type(payload) is bytes and kind == "binary":
                data = encode_data(2, payload)
            elif type(payload) is str and kind == "text":
                try:
                    data = encode_data(1, (<str>payload).encode("utf-8"))
                except UnicodeEncodeError:
                    pass  # the Python path explains it
        if data is None or not self._write(client, data):
            client._reply("handle_frame", frame)
        return 0

    cdef bint _write(self, ClientFields client, bytes data) except -1:
        """``Client._write_frame``, the system call made here (plain TCP); 0: not done.

        What ``Protocol.send`` checks (the connection is open, no fragmented
        message is being sent) is checked under the write lock, with the
        write: another thread's ``send_frame`` cannot come in between.
        """
        sock = client._sock
        cdef ProtocolFields p = self.p
        if sock is None or sock is not self.sock or self.secure or p is None:
            return 0  # TLS (the SSLSocket writes), or the connection ended
        cdef bytearray wbuf = self.wbuf
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t sent = -1
        cdef int err = 0
        self.acquire()
        try:
            if p.state is not OPEN or p._send_opcode:
                return 0  # the Python path refuses it, and says why
            cork = client._cork
            if cork is not None:
                cork.append(data)  # the replies to this read go out together
                return 1
            if PyByteArray_GET_SIZE(wbuf):
                wbuf += data  # behind what is pending
            else:
                while True:
                    sent = c_send(self.fd, PyBytes_AS_STRING(data), size, MSG_NOSIGNAL)
                    if sent >= 0 or errno != EINTR:
                        break
                if sent < 0:
                    err = errno
                    if err == EAGAIN or err == EWOULDBLOCK:
                        err = 0
                        sent = 0
                if 0 <= sent < size:
                    wbuf += memoryview(data)[sent:]
        finally:
            self.release()
        if err:
            client.loop.call_soon(
                client._lost, sock, ("error", ConnError("connection broken", _os_error(err))))
            return 1
        if 0 <= sent < size:
            client.loop.add_writer(sock, client._on_writable)
        if PyByteArray_GET_SIZE(wbuf) > self.write_limit and not client._read_paused:
            client._pause_reading()
        return 1
