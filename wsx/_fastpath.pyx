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

from wsx._codec cimport FrameParser, encode_data

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


cdef class FastReader:
    """Reader of one client's socket (see the module docstring). Called by the loop.

    The client's and the protocol's plain attributes are read and written
    through their instance dictionaries (``c`` and ``p`` below): the same
    attributes, without the generic attribute lookup. What cannot change
    during a connection is kept here, taken again when the socket (``_sock``)
    or the protocol (``_protocol``) is a new one.
    """

    cdef object client
    cdef dict c  # client.__dict__
    cdef object view  # the loop's read buffer (a memoryview), shared by its clients
    cdef bytearray buf  # the bytearray under it (exported: its size cannot change)
    # Per socket: set by Client._connect / _teardown before the socket is.
    cdef object sock
    cdef int fd
    cdef bint secure  # TLS: read and written through the SSLSocket
    cdef bytearray wbuf
    cdef object wlock
    cdef object acquire, release  # wlock's
    # Per protocol: set by Client._on_open with the protocol.
    cdef object protocol
    cdef dict p  # protocol.__dict__
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
        self.c = client.__dict__
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
        self.wlock = self.acquire = self.release = None
        self.cb = self.handle_frame = None
        self.protocol = None
        self.p = None
        self.parser = None

    def __call__(self):
        cdef object client = self.client
        cdef dict c = self.c
        cdef dict p
        cdef object sock, protocol
        cdef char* data
        cdef Py_ssize_t n
        while True:
            sock = c["_sock"]
            protocol = c["_protocol"]
            if sock is None or protocol is None:
                break
            if sock is not self.sock:
                self.fd = sock.fileno()
                self.secure = c["_secure"]
                self.wbuf = c["_wbuf"]
                self.wlock = c["_wlock"]
                self.acquire = self.wlock.acquire
                self.release = self.wlock.release
                self.sock = sock
            if protocol is not self.protocol:
                self.p = protocol.__dict__
                parser = self.p["_parser"]
                self.parser = parser if type(parser) is FrameParser else None
                self.plain = self.p["_plain"]
                self.write_limit = c["_write_limit"]
                self.cb = None  # handle_frame is looked up again for each connection
                self.protocol = protocol
            p = self.p
            if (
                c["_dbg"] is not None
                or c["_read_paused"]
                or c["_suspended"]
                or c["_terminated"]
                or c["_cork"] is not None
                or c["_inbox"]
                or _telemetry
                or not self.plain
                or self.parser is None
                or p["state"] is not OPEN
                or p["error"] is not None
                or p["close_received"] is not None
                or p["_validated"]
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
                client._lost(sock, c["_close_reason"] or ("remote", "closed"))
                return
            c["_alive"] = True
            self._received(client, c, protocol, data, n)
            # Data already decrypted by TLS does not wake the selector again.
            if not (self.secure and sock is c["_sock"] and sock.pending()):
                return
        client._on_readable()  # not the usual case: the Python path decides

    cdef int _received(self, client, dict c, protocol, const char* data,
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
            c["_cork"] = []  # the replies to this read go out in one write
        try:
            self._frames(client, c, protocol, self.p, parser, frames, count)
        finally:
            if count > 1:
                client._uncork()
        return 0

    cdef int _frames(self, client, dict c, protocol, dict p, FrameParser parser, list frames,
                     Py_ssize_t count) except -1:
        cdef Py_ssize_t i
        cdef tuple frame
        cdef int opcode
        for i in range(count):
            frame = <tuple>frames[i]
            opcode = frame[0]
            event = None
            if frame[1] and (
                i == 0  # checked by __call__
                or not (c["_suspended"] or c["_terminated"] or c["_dbg"] is not None
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
            self._callback(client, c, event)
        if parser._p and parser._p_opcode != 2:
            client._dispatch(protocol, protocol.receive_frames([]))
        elif p["_out"] or p["_close_to_send"] is not None:
            client._flush_protocol(protocol)
        return 0

    cdef int _callback(self, client, dict c, event) except -1:
        """``Client._callback("handle_frame", event)``: 1, or 0 if the client crashed."""
        cb = c["_cb"]
        if cb is not self.cb:  # a new connection's, or wsx.sys.change_code
            self.handle_frame = cb.handle_frame
            self.cb = cb
        c["_in_callback"] = True
        current = _current
        previous = getattr(current, "process", None)
        current.process = client
        try:
            result = self.handle_frame(event, c["_state"])
        except (Exception, SystemExit) as exc:
            client._crash("handle_frame", exc)
            return 0
        finally:
            c["_in_callback"] = False
            current.process = previous
        if type(result) is tuple:
            n = len(<tuple>result)
            if n == 2 and result[0] == "ok":
                c["_state"] = result[1]
                return 1
            if n == 3 and result[0] == "reply":
                c["_state"] = result[2]
                try:
                    self._reply(client, c, result[1])
                except Exception as exc:
                    client._crash("handle_frame", exc)
                    return 0
                return 1
        return 1 if client._apply("handle_frame", result) else 0

    cdef int _reply(self, client, dict c, frame) except -1:
        """``Client._reply("handle_frame", frame)``, encoding plain frames here."""
        protocol = c["_protocol"]
        cdef bytes data = None
        if (
            type(frame) is tuple
            and len(<tuple>frame) == 2
            and protocol is self.protocol
            and c["_dbg"] is None
            and not _telemetry
            and c["connection_state"] == "open"
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
        if data is None or not self._write(client, c, data):
            client._reply("handle_frame", frame)
        return 0

    cdef bint _write(self, client, dict c, bytes data) except -1:
        """``Client._write_frame``, the system call made here (plain TCP); 0: not done.

        What ``Protocol.send`` checks (the connection is open, no fragmented
        message is being sent) is checked under the write lock, with the
        write: another thread's ``send_frame`` cannot come in between.
        """
        sock = c["_sock"]
        if sock is not self.sock or self.secure:
            return 0  # TLS: the SSLSocket writes
        cdef dict p = self.p
        cdef bytearray wbuf = self.wbuf
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t sent = -1
        cdef int err = 0
        self.acquire()
        try:
            if p["state"] is not OPEN or p["_send_opcode"]:
                return 0  # the Python path refuses it, and says why
            cork = c["_cork"]
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
        if PyByteArray_GET_SIZE(wbuf) > self.write_limit and not c["_read_paused"]:
            client._pause_reading()
        return 1
