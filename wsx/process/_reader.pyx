# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The compiled read path of a connection: one C call per readable socket.

The loop calls a client's reader when its socket is readable. The Python
read path (:class:`wsx.process.reader.Reader`) reads, feeds the protocol and
hands the events to the dispatcher. :class:`FastReader` does the usual case
in one compiled function:

* an open connection (read by its transport, ``Transport.recv_into``:
  ``recv(2)`` for plain TCP, the ``SSLSocket`` for TLS), without extension,
  trace or telemetry handler, not paused, suspended or closing;
* whole unfragmented text or binary messages, each handed to
  ``Dispatcher.frame`` (the callback, its result, its reply: the dispatcher's
  one definition, compiled).

It talks to four declared interfaces only: the transport's C fields
(``wsx/io/_transport.pxd``), the dispatcher's (``_dispatcher.pxd``), the
protocol's (``wsx/core/_protocol.pxd``: ``reads_plain``,
``receive_frames``, ``receive_failed``) and the parser's ``feed_at`` and
``partial_text`` (``wsx/core/_codec.pxd``): no private field of another
class.
Anything else goes back to the Python code, which stays the one definition
of the behaviour: the whole read when the connection is not in the usual
state (the Python ``Reader``); from the first frame that is not a whole text
or binary message (a ping, a close, a fragment, invalid UTF-8, a parser
error), the rest of the frames (``Protocol.receive_frames`` /
``receive_failed``, then ``Dispatcher.dispatch``). The results are the same
either way: ``tests/test_read_path_differential.py`` feeds both the same
bytes and compares what the callbacks saw and what was written.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE

from wsx.core._codec cimport FrameParser
from wsx.core._protocol cimport Protocol
from wsx.io._transport cimport Transport
from wsx.process._dispatcher cimport Dispatcher

from wsx.errors import ConnError, FrameError
from wsx.telemetry import _handlers

# wsx.telemetry's handler table (changed in place, never rebound): empty when
# no handler is attached.
cdef dict _telemetry = _handlers


cdef class FastReader:
    """The compiled reader of one client (see the module docstring). Called by the loop.

    ``FastReader(reader)`` stands in front of ``reader`` (the client's Python
    :class:`~wsx.process.reader.Reader`), which it calls for anything but
    the usual case. What cannot change during a connection is kept here,
    taken again when the dispatcher's protocol is
    a new one.
    """

    cdef object reader  # the Python read path
    cdef object client
    cdef Transport transport
    cdef Dispatcher dispatcher
    cdef object view  # the loop's read buffer (a memoryview), shared by its clients
    cdef bytearray buf  # the bytearray under it (exported: its size cannot change)
    # Per protocol.
    cdef object protocol
    cdef Protocol p  # the protocol (None: not one this path knows)
    cdef FrameParser parser  # None: the pure-Python parser, not for this path

    def __init__(self, reader):
        self.reader = reader
        self.client = reader.client
        self.transport = reader.transport
        self.dispatcher = reader.dispatcher
        self.view = reader.buffer
        self.buf = self.view.obj
        self.protocol = None

    def forget(self):
        """Let go of the protocol of the connection that ended."""
        self.protocol = None
        self.p = None
        self.parser = None

    def __call__(self):
        cdef Transport transport = self.transport
        cdef Dispatcher dispatcher = self.dispatcher
        cdef Protocol p
        cdef char* data
        cdef Py_ssize_t n
        while True:
            sock = transport.sock
            protocol = dispatcher.protocol
            if sock is None or protocol is None:
                break
            if protocol is not self.protocol:
                self.p = protocol if isinstance(protocol, Protocol) else None
                parser = None if self.p is None else self.p.parser
                self.parser = parser if type(parser) is FrameParser else None
                self.protocol = protocol
            p = self.p
            if (
                transport.read_paused
                or transport.corked is not None
                or dispatcher.hold
                or dispatcher.dbg is not None
                or dispatcher.inbox
                or _telemetry
                or self.parser is None
                or not p.reads_plain()
            ):
                break
            data = PyByteArray_AS_STRING(self.buf)
            try:
                n = transport.recv_into(self.buf)  # the one reader of the socket (io)
            except OSError as exc:
                self.client.connection_lost(sock, ("error", ConnError("connection broken", exc)))
                return
            if n < 0:
                return  # nothing there
            if n == 0:
                self.client.connection_lost(sock, self.client.eof_reason())
                return
            transport.activity = True
            self._received(transport, dispatcher, protocol, data, n)
            # Data already decrypted by TLS does not wake the selector again.
            if not (transport.secure and sock is transport.sock and transport.tls_pending()):
                return
        self.reader()  # not the usual case: the Python path decides

    cdef int _received(self, Transport transport, Dispatcher dispatcher, protocol,
                       const char* data, Py_ssize_t n) except -1:
        cdef FrameParser parser = self.parser
        try:
            frames = parser.feed_at(data, n)
        except FrameError as exc:
            dispatcher.dispatch(protocol, protocol.receive_failed(exc))
            return 0
        cdef Py_ssize_t count = len(frames)
        if count == 0:
            if parser.partial_text():
                # Part of a text frame: validated as it comes (fail fast).
                dispatcher.dispatch(protocol, protocol.receive_frames(frames))
            return 0
        if count == 1:
            self._frames(dispatcher, protocol, parser, frames, 1)
            return 0
        corked = transport.cork()  # the replies to this read go out in one write
        try:
            self._frames(dispatcher, protocol, parser, frames, count)
        finally:
            if corked:
                transport.uncork()
        return 0

    cdef int _frames(self, Dispatcher dispatcher, protocol, FrameParser parser, list frames,
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
                or not (dispatcher.hold or dispatcher.dbg is not None or _telemetry)
            ):
                if opcode == 2:
                    event = ("binary", frame[3])
                elif opcode == 1:
                    try:
                        event = ("text", (<bytes>frame[3]).decode("utf-8"))
                    except UnicodeDecodeError:
                        pass  # the Python path fails the connection with 1007
            if event is None:
                dispatcher.dispatch(protocol, protocol.receive_frames(frames[i:]))
                return 0
            dispatcher.frame(event)
        if parser.partial_text():
            dispatcher.dispatch(protocol, protocol.receive_frames([]))
        return 0
