"""The connected socket of one client: the only code that writes to it.

A :class:`Transport` holds the socket of the current connection (plain TCP or
an ``SSLSocket``) and everything about moving bytes through it:

* **writing**: the protocol buffers every frame it produces (data, control,
  close); the transport asks for one and writes what was buffered
  (``protocol.data_to_send()``) under one hold of the write lock:
  :meth:`Transport.write_frame` (a frame), :meth:`Transport.write_close`
  (our close), :meth:`Transport.answer_close` (the close owed to the peer),
  :meth:`Transport.send_direct` (a frame, on another thread). No frame of
  another thread comes between a frame's encoding and its write.
  (:meth:`Transport.write` takes the upgrade request's bytes, which are no
  frame.) What the socket does not take at once waits in the write buffer,
  which :meth:`Transport.on_writable` drains. :meth:`Transport._push` is
  the one call in wsx that writes to a connected client's socket;
* **corking**: between :meth:`Transport.cork` and :meth:`Transport.uncork`
  writes are gathered and go out as one (the replies to one read);
* **backpressure**: while the write buffer holds more than ``write_limit``
  bytes, reading stops (so replies and pongs cannot grow it) and senders from
  other threads are parked (:meth:`Transport.park`) until it drains;
* **writes from other threads**: :meth:`Transport.send_direct` encodes and
  writes a frame on the calling thread when nothing is pending, under the
  same write lock, so frames never interleave;
* **reading**: whether the socket is watched for reading (the owner wants to
  read and backpressure allows it), and :meth:`Transport.recv_into`.

It knows nothing about callback modules: what a frame is, it asks the
protocol (``protocol.send``, ``protocol.data_to_send``); what to do when the
connection breaks, it tells its owner (``on_lost(sock, reason)``). When wsx
is built, this very source is compiled by Cython into ``wsx.io._transport`` (C fields declared in
``_transport.pxd``), used unless ``WSX_NO_EXTENSIONS`` is set.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._twins import compiled
from ..errors import ConnError

if TYPE_CHECKING:  # (a module name: the compiled twin has its own Protocol)
    from ..core import protocol as wsproto
    from .hostloop import HostLoop

# send(2) and recv(2) without Python's socket layer, for plain TCP (see _syscalls.pyx).
_syscalls: Any = compiled("wsx.io._syscalls")

__all__ = ["Transport", "WOULD_BLOCK"]

#: What a non-blocking socket raises when it cannot go on now.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Transport:
    """The socket of one client's current connection; see the module documentation.

    ``on_lost(sock, reason)`` is called on the loop thread when a write finds
    the connection broken; ``note(kind, pending)`` (optional) hears about
    backpressure (``"read_paused"``, ``"read_resumed"``). Loop thread only,
    except :meth:`send_direct`.
    """

    def __init__(self, loop: HostLoop, on_lost: Callable[[Any, Any], None]) -> None:
        self.loop = loop
        self.on_lost = on_lost
        self.note: Callable[[str, int], None] | None = None
        #: Debug statistics (``bytes_in``, ``bytes_out``) to count into, or None.
        self.stats: dict[str, Any] | None = None
        self.sock: socket.socket | None = None  # an ssl.SSLSocket for TLS
        self._send: Callable[[Any], int] | None = None  # sock.send
        self._raw: Any = None  # its compiled twin for plain TCP, when built
        self.secure = False
        self.wbuf = bytearray()
        # Held while writing to the socket or to wbuf: on the loop thread, and
        # by send_direct on other threads.
        self.lock = threading.Lock()
        self._acquire = self.lock.acquire
        self._release = self.lock.release
        #: Writes gathered between cork() and uncork(), else None.
        self.corked: list[Any] | None = None
        #: Pending output over which reading pauses; None: no backpressure
        #: (during the handshake).
        self.write_limit: int | None = None
        self.read_paused = False
        #: The owner wants to read (the connection is up and not suspended).
        self.reading = False
        self.reader: Callable[[], Any] | None = None
        #: Bytes moved (received, or a backlog written) since the keepalive
        #: last looked: a sign of life from the peer.
        self.activity = False
        #: Parked senders (objects with run() and fail()), in order.
        self.waiters: deque[Any] = deque()
        #: Called once when the write buffer has drained (then reset to None).
        self.on_drained: Callable[[], None] | None = None
        #: Bytes of the backlog written so far: its progress while it drains.
        self.backlog_written = 0

    # ------------------------------------------------------------ the socket
    def attach(self, sock: socket.socket) -> None:
        """Take the socket of a new connection (``write_limit`` off until :meth:`limit`).

        The socket, its senders and the write buffer change under the write
        lock, as in :meth:`close`: a :meth:`send_direct` of another thread
        that holds it writes to the socket it checked, never to this one.
        """
        secure = isinstance(sock, ssl.SSLSocket)
        raw = None if secure or _syscalls is None else _syscalls.RawSocket(sock)
        self._acquire()
        try:
            self.sock = sock
            self.secure = secure
            self._send = sock.send
            self._raw = raw
            self.wbuf = bytearray()
        finally:
            self._release()
        self.write_limit = None
        self.read_paused = False
        self.activity = False
        self.on_drained = None
        self.backlog_written = 0

    def limit(self, write_limit: int) -> None:
        """Apply backpressure from now on (the connection is open)."""
        self.write_limit = write_limit

    def close(self) -> int:
        """Write what is corked, then drop and close the socket; parked senders fail.

        Returns the bytes of output dropped: accepted for writing, never written.
        """
        self.uncork()
        self.reading = False
        self.read_paused = False
        self.reader = None
        self.on_drained = None
        self.fail_waiters()
        # Under the write lock: a send_direct encoding a frame on another
        # thread (masking a large one lets go of the GIL) finishes with the
        # socket it checked before that socket goes. One that takes the lock
        # later finds no socket, or the next connection's socket with its
        # frame's protocol closed (the owner closes it before reconnecting),
        # which refuses to encode it: a frame never crosses into another
        # connection.
        self._acquire()
        try:
            sock, self.sock = self.sock, None
            dropped = len(self.wbuf) if sock is not None else 0
            self._send = self._raw = None
            self.wbuf = bytearray()
        finally:
            self._release()
        if sock is not None:
            self.loop.remove_all(sock)
            try:
                sock.close()
            except OSError:
                pass
        return dropped

    def recv_into(self, buf: bytearray | memoryview) -> int:
        """Read into ``buf``: the byte count (0: the peer closed), -1 if nothing is there.

        The one place that reads a connection's socket (the read paths and
        the upgrade call it). Raises ``OSError`` when the connection is broken.
        """
        sock = self.sock
        assert sock is not None, "recv_into with no connection"
        try:
            if self._raw is not None:
                n: int = self._raw.recv_into(buf)
            else:
                n = sock.recv_into(buf)
        except WOULD_BLOCK:
            return -1
        if self.stats is not None:
            self.stats["bytes_in"] += n
        return n

    # --------------------------------------------------------------- reading
    def start_reading(self, reader: Callable[[], Any]) -> None:
        """Call ``reader`` whenever the socket is readable (and backpressure allows)."""
        self.reader = reader
        self.reading = True
        self._watch()

    def stop_reading(self) -> None:
        """Stop watching the socket for reading (e.g. while suspended)."""
        self.reading = False
        if self.sock is not None:
            self.loop.remove_reader(self.sock)

    def _watch(self) -> None:
        sock = self.sock
        if sock is None or not self.reading or self.read_paused or self.reader is None:
            return
        self.loop.add_reader(sock, self.reader)
        if self.secure and self.tls_pending():
            # Bytes TLS already decrypted do not wake the selector.
            self.loop.call_soon(self.read_now, sock)

    def tls_pending(self) -> bool:
        """True when TLS holds decrypted bytes of the socket: they do not wake the selector.

        A reader reads again while this holds (plain TCP: never).
        """
        sock = self.sock
        return self.secure and isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    def read_now(self, sock: Any) -> None:
        """Call the reader now if ``sock`` is still the socket and reading is on."""
        if sock is self.sock and self.reading and not self.read_paused and self.reader is not None:
            self.reader()

    # --------------------------------------------------------------- writing
    def write(self, data: Any) -> bool:
        """Write bytes that are not frames (the upgrade request) now, or queue them.

        False if there is no connection.
        """
        self._acquire()
        try:
            return self._put(data)
        finally:
            self._release()

    def write_frame(self, protocol: wsproto.Protocol, frame: Any) -> bool:
        """``protocol.send(frame)``, then write what it buffered, under one hold of the lock.

        A frame another thread writes meanwhile (:meth:`send_direct`) goes
        out before or after it, never between its encoding and its write:
        that would put a message inside the other thread's fragmented one.
        Raises what ``protocol.send`` raises for a bad frame. False if there
        is no connection.
        """
        self._acquire()
        try:
            protocol.send(frame)
            return self._put(protocol.data_to_send())
        finally:
            self._release()

    def write_close(self, protocol: wsproto.Protocol, code: int | None, reason: str) -> bool:
        """``protocol.send_close(code, reason)`` and its write, under one hold of the lock.

        No frame of another thread can follow our close. False when none was
        buffered (one was sent already) or there is no connection; raises
        what ``send_close`` raises for a code or reason it cannot carry.
        """
        self._acquire()
        try:
            return protocol.send_close(code, reason) and self._put(protocol.data_to_send())
        finally:
            self._release()

    def answer_close(self, protocol: wsproto.Protocol) -> bool:
        """``protocol.answer_close()`` (the close owed to the peer) and its write, locked.

        False when none is owed or there is no connection.
        """
        self._acquire()
        try:
            return protocol.answer_close() and self._put(protocol.data_to_send())
        finally:
            self._release()

    def _put(self, data: Any) -> bool:
        # The lock is held; loop thread.
        sock = self.sock
        if sock is None:
            return False
        corked = self.corked
        if corked is not None:
            corked.append(data)
            return True
        wbuf = self.wbuf
        if wbuf:
            wbuf += data
        else:
            try:
                n = self._push(data)
            except OSError as exc:
                self.loop.call_soon(self.on_lost, sock,
                                    ("error", ConnError("connection broken", exc)))
                return False
            if n < len(data):
                wbuf += memoryview(data)[n:]
                self.loop.add_writer(sock, self.on_writable)
        limit = self.write_limit
        if limit is not None and len(wbuf) > limit and not self.read_paused:
            self._pause()
        return True

    def _push(self, data: Any) -> int:
        """The one call that writes to the socket: the bytes it took (0: it would block).

        Raises ``OSError`` when the connection is broken.
        """
        try:
            if self._raw is not None:
                n: int = self._raw.send(data)
            else:
                n = self._send(data)  # type: ignore[misc]
        except WOULD_BLOCK:
            return 0
        if self.stats is not None:
            self.stats["bytes_out"] += n
        return n

    def cork(self) -> bool:
        """Gather writes until :meth:`uncork`; False if already corked (nothing to undo)."""
        if self.corked is not None:
            return False
        self.corked = []
        return True

    def uncork(self) -> None:
        """Write what was gathered since :meth:`cork`, as one."""
        if self.corked is None:
            return
        with self.lock:
            gathered = self.corked
            self.corked = None
            if gathered:
                self._put(gathered[0] if len(gathered) == 1 else b"".join(gathered))

    def on_writable(self) -> None:
        """The socket takes data again: write the backlog; below the limit, resume."""
        sock = self.sock
        if sock is None:
            return
        with self.lock:
            wbuf = self.wbuf
            try:
                n = self._push(wbuf)
            except OSError as exc:
                error: BaseException | None = exc
            else:
                error = None
                if n:
                    del wbuf[:n]
                    self.backlog_written += n
        if error is not None:
            self.on_lost(sock, ("error", ConnError("connection broken", error)))
            return
        if n:
            self.activity = True  # the peer is taking our data: a sign of life
        if not wbuf:
            self.loop.remove_writer(sock)
            drained = self.on_drained
            if drained is not None:
                self.on_drained = None
                drained()
        if not self.over_limit():
            if self.waiters:
                self.release_waiters()
            if self.read_paused and not self.over_limit():
                self.read_paused = False
                if self.note is not None:
                    self.note("read_resumed", len(self.wbuf))
                self._watch()

    def _pause(self) -> None:
        """Backpressure: the output is over ``write_limit``, stop reading until it drains."""
        self.read_paused = True
        self.loop.remove_reader(self.sock)
        if self.note is not None:
            self.note("read_paused", len(self.wbuf))

    def over_limit(self) -> bool:
        """True while the pending output is over ``write_limit``."""
        limit = self.write_limit
        return limit is not None and len(self.wbuf) > limit

    # ------------------------------------------------- other threads' sends
    def send_direct(self, protocol: wsproto.Protocol, frame: Any) -> bool:
        """Encode and write ``frame`` on the calling thread; False if it must go via the loop.

        Only for plain TCP with nothing pending, parked or corked (the loop
        writes those first); TLS never (an ``SSLSocket`` must not write on
        one thread while the loop reads on another). What the socket does not
        take at once waits in the write buffer, written by the loop. Raises
        what ``protocol.send`` raises, and ``OSError`` for a broken
        connection (its owner is told too).
        """
        if self.secure:
            return False
        self._acquire()
        try:
            sock = self.sock
            if sock is None or self.wbuf or self.waiters or self.corked is not None:
                return False
            protocol.send(frame)
            data = protocol.data_to_send()
            try:
                n = self._push(data)
            except OSError as exc:
                broken: BaseException | None = exc
            else:
                broken = None
                if n < len(data):
                    self.wbuf += memoryview(data)[n:]
        finally:
            self._release()
        # The loop is told after the lock is released: a post may end the
        # client at once (its loop found closed), which takes the lock.
        if broken is not None:
            self.loop.call_soon_threadsafe(
                self.on_lost, sock, ("error", ConnError("connection broken", broken)))
            raise broken
        if n < len(data):
            self.loop.call_soon_threadsafe(self._arm_writer, sock)
        return True

    def _arm_writer(self, sock: Any) -> None:
        """Loop side of :meth:`send_direct`: write what the socket did not take at once."""
        if sock is not self.sock or not self.wbuf:
            return
        self.loop.add_writer(sock, self.on_writable)
        if self.over_limit() and not self.read_paused:
            self._pause()

    def park(self, waiter: Any) -> None:
        """Hold a sender (``waiter.run()`` later) until the output drains to the limit."""
        self.waiters.append(waiter)

    def must_park(self) -> bool:
        """True when a new sender must wait: over the limit, or others wait before it."""
        return bool(self.waiters) or self.over_limit()

    def release_waiters(self, all_: bool = False) -> None:
        """Run parked senders while the output is within the limit (``all_``: every one)."""
        waiters = self.waiters
        while waiters and (all_ or not self.over_limit()):
            waiters.popleft().run()

    def fail_waiters(self) -> None:
        """The connection ended: every parked sender fails (``waiter.fail()``)."""
        waiters = self.waiters
        while waiters:
            waiters.popleft().fail()

    def unpark(self, waiter: Any) -> bool:
        """Drop a parked sender; False if it is not parked (it ran or failed already)."""
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return False
        return True
