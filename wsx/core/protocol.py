"""Sans-I/O WebSocket connection state machine, for either side, after the handshake.

:class:`Protocol` turns received bytes into events and user frames into bytes
to send. It knows nothing about sockets, threads or clocks: the connection
process feeds it what the socket read and writes what it returns. Its
``side`` (:class:`~wsx.core.side.Side`) decides masking, in and out; every
other rule (the parser's, UTF-8, closing, limits) is the same for both sides.

Events returned by :meth:`Protocol.receive_data` use the public frame shapes
of wsx (the same tuples a callback module receives):

* ``("text", str)`` and ``("binary", bytes)``: a complete message;
* ``"ping"`` / ``("ping", bytes)`` and ``"pong"`` / ``("pong", bytes)``
  (the bare string when the payload is empty);
* ``("close", code, reason)``: the peer's close frame (``code`` is ``None``
  when the frame had no status). A close frame is owed to the peer: once
  the events before it are handled, :meth:`Protocol.answer_close` buffers it;
* ``("error", FrameError)``: the peer broke the protocol; a close frame with
  the error's code is owed (:meth:`Protocol.answer_close` again) and
  nothing more will be received.

Output: every frame the protocol produces (:meth:`Protocol.send`,
:meth:`Protocol.send_close`, :meth:`Protocol.answer_close`) is buffered;
:meth:`Protocol.data_to_send` takes what is buffered, for the transport to
write. The close owed to the peer waits for :meth:`Protocol.answer_close`
so that the replies to the events before it go out first.

States: ``"open"`` → ``"closing"`` (we sent a close frame, waiting for the
peer's) → ``"closed"`` (both close frames exchanged, or the connection
failed). After ``"closed"``, a client waits for the server to close TCP
(RFC 6455 7.1.1); a server closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import CloseCode, FrameEncodeError, FrameError, InvalidFrameError, NotConnectedError
from .extensions import Extension
from .frames import (
    DEFAULT_MAX_SIZE,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameParser,
    byte_payload,
    encode_close,
    encode_data,
    encode_frame,
    parse_close,
)
from .side import Side
from .state import ProtocolState
from .utf8 import Utf8Decoder

__all__ = ["Protocol", "ProtocolState", "Event", "OPEN", "CLOSING", "CLOSED", "frame_to_wire"]

# One definition, outside this module: compiled as wsx.core._protocol, a
# class defined here would be a second class, with members of its own.
OPEN, CLOSING, CLOSED = ProtocolState.OPEN, ProtocolState.CLOSING, ProtocolState.CLOSED

Event = str | tuple[Any, ...]

_BYTES_TYPES = (bytes, bytearray, memoryview)
#: A fragmented message may have one frame per FRAME_COST bytes of
#: ``max_message_size``: a message of endless empty fragments fails with 1009.
FRAME_COST = 16
_DATA_OPCODES = {"text": OP_TEXT, "binary": OP_BINARY}
_CONTROL_OPCODES = {"ping": OP_PING, "pong": OP_PONG}


def _payload_bytes(frame: Any, kind: str, payload: Any) -> bytes | bytearray | memoryview:
    """Check a user payload: str for text (encoded to UTF-8), bytes-like otherwise."""
    if kind == "text":
        if isinstance(payload, str):
            return payload.encode("utf-8")
        if isinstance(payload, _BYTES_TYPES):
            try:
                str(payload, "utf-8")
            except UnicodeDecodeError as exc:
                raise FrameEncodeError(
                    f"text payload is not valid UTF-8 ({exc.reason} at byte {exc.start})", frame
                ) from None
            return byte_payload(payload, frame)
        raise InvalidFrameError(frame, f"a text payload must be str, not {type(payload).__name__}")
    if isinstance(payload, _BYTES_TYPES):
        return byte_payload(payload, frame)
    if isinstance(payload, str) and kind in _CONTROL_OPCODES:
        return payload.encode("utf-8")
    raise InvalidFrameError(
        frame, f"a {kind} payload must be bytes-like, not {type(payload).__name__}"
    )


def frame_to_wire(frame: Any) -> tuple[int, bool, bytes | bytearray | memoryview, str | None]:
    """Translate a public frame tuple into ``(opcode, fin, payload, fragment_kind)``.

    ``fragment_kind`` is ``"fragment"``, ``"continuation"`` or ``"finish"`` for
    the pieces of a message sent in several frames, else ``None``. Raises
    :class:`InvalidFrameError` for a shape wsx does not know and
    :class:`FrameEncodeError` for a str that cannot be encoded as UTF-8
    (a lone surrogate).
    """
    try:
        return _to_wire(frame)
    except UnicodeEncodeError as exc:
        raise FrameEncodeError(
            f"payload cannot be encoded as UTF-8: {exc.reason} at index {exc.start}", frame
        ) from None


def _to_wire(frame: Any) -> tuple[int, bool, bytes | bytearray | memoryview, str | None]:
    if isinstance(frame, str):
        if frame in _CONTROL_OPCODES:
            return _CONTROL_OPCODES[frame], True, b"", None
        raise InvalidFrameError(frame, 'expected "ping", "pong" or a tuple such as ("text", str)')
    if not isinstance(frame, tuple) or not frame:
        raise InvalidFrameError(frame, 'expected a tuple such as ("text", str)')
    kind = frame[0]
    n = len(frame)
    if n == 2:
        payload = frame[1]
        if kind in _DATA_OPCODES:
            return _DATA_OPCODES[kind], True, _payload_bytes(frame, kind, payload), None
        if kind in _CONTROL_OPCODES:
            return _CONTROL_OPCODES[kind], True, _payload_bytes(frame, kind, payload), None
        if kind == "continuation" or kind == "finish":
            if not isinstance(payload, (str, *_BYTES_TYPES)):
                raise InvalidFrameError(frame, f"bad {kind} payload type {type(payload).__name__}")
            if isinstance(payload, str):
                return OP_CONTINUATION, kind == "finish", payload.encode("utf-8"), kind
            piece = byte_payload(payload, frame)
            return OP_CONTINUATION, kind == "finish", piece, kind
    elif n == 3 and kind == "fragment":
        sub = frame[1]
        if sub not in _DATA_OPCODES:
            raise InvalidFrameError(frame, f'fragment type must be "text" or "binary", not {sub!r}')
        payload = frame[2]
        if sub == "text" and isinstance(payload, str):
            data: bytes | bytearray | memoryview = payload.encode("utf-8")
        else:
            data = _payload_bytes(frame, "binary", payload)
        return _DATA_OPCODES[sub], False, data, "fragment"
    raise InvalidFrameError(frame, "unknown frame type")


class Protocol:
    """The state of one WebSocket connection after a successful handshake.

    ``max_message_size`` bounds a received message (and, unless
    ``max_frame_size`` is given, a received frame); ``None`` means unlimited.
    ``extensions`` are the negotiated extensions, in the order the server
    listed them. ``side`` is the end this protocol works for: a client
    (the default) masks the frames it sends and takes unmasked ones, a
    server the opposite.
    """

    def __init__(
        self,
        *,
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        max_frame_size: int | None = None,
        extensions: Sequence[Extension] = (),
        side: Side = Side.CLIENT,
    ) -> None:
        if not isinstance(side, Side):
            raise TypeError(f"side must be Side.CLIENT or Side.SERVER, not {side!r}")
        self.side = side
        self._mask_out = side.masks  # the frames this side sends are masked
        self.state = OPEN
        self.max_message_size = max_message_size
        self.extensions = list(extensions)
        # No extension transforms payloads: the common frames take fast paths.
        self._plain = not self.extensions
        rsv = 0
        wire = max_message_size  # the largest message on the wire
        for ext in self.extensions:
            rsv |= ext.rsv_mask
            wire_size = getattr(ext, "wire_size", None)  # optional: none changes no size
            if wire is not None and wire_size is not None:
                wire = wire_size(wire)
        self._parser = FrameParser(
            max_frame_size=wire if max_frame_size is None else max_frame_size,
            max_message_size=wire,
            allowed_rsv=rsv,
            masked=not side.masks,  # what the other side sends
        )
        # Output not taken yet (data_to_send): the first frame, then the
        # others. One frame is the usual case: it takes no list.
        self._out = b""
        self._more: list[bytes] = []
        # Close frame owed to the peer (after its close or a protocol error),
        # buffered by answer_close.
        self._close_owed: tuple[int | None, str] | None = None
        #: ``(code, reason)`` of the close frame received, if any.
        self.close_received: tuple[int | None, str] | None = None
        #: ``(code, reason)`` of the close frame sent, if any.
        self.close_sent: tuple[int | None, str] | None = None
        #: The protocol error that failed the connection, if any.
        self.error: FrameError | None = None
        # Message being received: opcode, its bytes so far (decoded by the
        # extensions; text checked as UTF-8 as it arrives), the text decoder.
        # One buffer, not a list of fragments: a message takes about its size
        # in memory however many frames it comes in.
        self._msg_opcode = 0
        # RSV bits of the message's first frame (set: an extension transforms
        # the payload, so its continuation frames must not be validated raw).
        self._msg_rsv = 0
        self._msg_data = bytearray()
        self._msg_frames = 0
        self._decoder: Utf8Decoder | None = None
        self._validated = 0  # bytes of the incomplete frame already decoded
        # Opcode of the message being sent in fragments (0: none).
        self._send_opcode = 0

    def reads_plain(self) -> bool:
        """True in the usual state for reading: whole messages can be taken as they come.

        Open, no error, no close received, no extension transforming
        payloads, no text frame partly validated: the compiled read path
        (``wsx.process._reader``) takes whole messages from the parser then.
        """
        return (self._plain and self.state is OPEN and self.error is None
                and self.close_received is None and not self._validated)

    def close_owed(self) -> bool:
        """True when a close frame is owed to the peer (see :meth:`answer_close`)."""
        return self._close_owed is not None

    @property
    def parser(self) -> Any:
        """The frame parser (for a caller that looks at frames before :meth:`receive_frames`)."""
        return self._parser

    # ---------------------------------------------------------------- output
    def data_to_send(self) -> bytes:
        """Take the bytes buffered for sending (``b""``: none), in the order produced.

        A caller sharing the protocol between threads serializes the calls
        that buffer output and this one (wsx's transport: its write lock).
        """
        data, more = self._out, self._more
        self._out = b""
        if more:
            self._more = []
            return b"".join([data, *more])
        return data

    def _buffer(self, data: bytes) -> None:
        if self._out:
            self._more.append(data)
        else:
            self._out = data

    def send(self, frame: Any) -> None:
        """Encode a public frame tuple and buffer it for sending (see :meth:`data_to_send`).

        Raises :class:`NotConnectedError` unless the connection is open,
        :class:`InvalidFrameError` for an unknown shape and
        :class:`FrameEncodeError` for a payload that breaks a rule (control
        payload over 125 bytes, a continuation with no fragmented message
        started, a new message while a fragmented one is being sent);
        nothing is buffered then.
        """
        if self.state is not OPEN:
            raise NotConnectedError(self.state.value)
        if self._plain and not self._send_opcode and type(frame) is tuple:
            # Fast path for the usual ("binary", bytes) / ("text", str) frames;
            # anything else (or a str that cannot be encoded) takes the full
            # path below, which explains the problem.
            shape = frame
            if len(shape) == 2:
                kind = shape[0]
                payload_ = shape[1]
                if kind == "binary":
                    if type(payload_) is bytes:
                        self._buffer(encode_data(OP_BINARY, payload_, self._mask_out))
                        return
                elif kind == "text" and type(payload_) is str:
                    try:
                        data = payload_.encode("utf-8")
                    except UnicodeEncodeError:
                        pass
                    else:
                        self._buffer(encode_data(OP_TEXT, data, self._mask_out))
                        return
        self._buffer(self._encode(frame))

    def _encode(self, frame: Any) -> bytes:
        """The bytes of ``frame`` (:meth:`send`'s general path; checks the fragment rules)."""
        opcode, fin, payload, piece = frame_to_wire(frame)
        if opcode >= 8:
            return encode_frame(opcode, payload, fin, masked=self._mask_out)
        if piece is None or piece == "fragment":
            if self._send_opcode:
                raise FrameEncodeError(
                    "a fragmented message is being sent: finish it with "
                    '("continuation", data) / ("finish", data) first',
                    frame,
                )
            sending = 0 if fin else opcode
        else:
            if not self._send_opcode:
                raise FrameEncodeError(
                    f"{piece} frame with no fragmented message started "
                    '(start one with ("fragment", "text"|"binary", data))',
                    frame,
                )
            sending = 0 if fin else self._send_opcode
        rsv = 0
        for ext in self.extensions:
            rsv, payload = ext.encode(opcode, fin, rsv, bytes(payload))
        data = encode_frame(opcode, payload, fin, rsv, masked=self._mask_out)
        self._send_opcode = sending  # the frame is encoded: the message goes on
        return data

    def send_close(self, code: int | None = CloseCode.NORMAL, reason: str = "") -> bool:
        """Start the closing handshake: buffer a close frame with ``code`` and ``reason``.

        False (nothing buffered) when a close frame was already sent, or the
        connection is closed. After the peer's close or error (a close owed),
        this close is the answer: the connection is then closed. Raises
        :class:`FrameEncodeError` for a code or reason a close frame cannot
        carry.
        """
        if self.state is not OPEN:
            return False
        data = encode_frame(OP_CLOSE, encode_close(code, reason), masked=self._mask_out)
        self._close_owed = None
        self.close_sent = (code, reason)
        self.state = CLOSED if self._input_closed else CLOSING
        self._buffer(data)
        return True

    def answer_close(self) -> bool:
        """Buffer the close frame owed to the peer; False when none is owed.

        After a ``("close", ...)`` event it echoes the peer's status code
        (RFC 6455 5.5.1; an empty close for a close without one); after an
        ``("error", ...)`` event it carries the error's code. Call it once
        the events before that one are handled, so that their replies go out
        first. The connection is closed then.
        """
        owed = self._close_owed
        if owed is None:
            return False
        self._buffer(encode_frame(OP_CLOSE, encode_close(*owed), masked=self._mask_out))
        self._close_owed = None
        self.close_sent = owed
        self.state = CLOSED
        return True

    # ----------------------------------------------------------------- input
    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process received bytes; return the events they complete."""
        if self._input_closed or self.state is CLOSED:
            return []
        try:
            frames = self._parser.feed(data)
        except FrameError as exc:
            return self.receive_failed(exc)
        return self.receive_frames(frames)

    def receive_frames(self, frames: list[Any]) -> list[Event]:
        """The events of ``frames`` the parser returned (the second half of :meth:`receive_data`).

        The compiled read path (``wsx.process._reader``) parses and handles whole
        unfragmented messages itself and passes the other frames here.
        """
        events: list[Event] = []
        if frames:
            self._process(frames, events)
        if self._parser.pending_header() is not None:
            self._check_partial_text(events)
        return events

    def receive_failed(self, exc: FrameError) -> list[Event]:
        """The events of a feed the parser failed: the frames before the error, then the error."""
        events: list[Event] = []
        self._process(exc.frames, events)
        self._fail(exc, events)
        return events

    def receive_eof(self) -> None:
        """The peer closed the TCP connection."""
        self.state = CLOSED

    @property
    def _input_closed(self) -> bool:
        return self.error is not None or self.close_received is not None

    def _fail(self, exc: FrameError, events: list[Event]) -> None:
        if self._input_closed:
            return
        self.error = exc
        if self.state is OPEN:
            self._close_owed = (exc.code, "")
        else:
            self.state = CLOSED
        events.append(("error", exc))

    def _process(self, frames: list[Any], events: list[Event]) -> None:
        plain = self._plain
        for opcode, fin, rsv, payload in frames:
            if self.error is not None or self.close_received is not None:
                return
            if fin and plain and not self._validated:
                # Fast path: a whole unfragmented message, no extension.
                if opcode == OP_BINARY:
                    events.append(("binary", payload))
                    continue
                if opcode == OP_TEXT:
                    try:
                        events.append(("text", payload.decode("utf-8")))
                    except UnicodeDecodeError as exc:
                        self._fail(_invalid_utf8(exc), events)
                        return
                    continue
            try:
                if opcode >= 8:
                    self._control(opcode, payload, events)
                else:
                    self._data(opcode, fin, rsv, payload, events)
            except FrameError as exc:
                self._fail(exc, events)
                return

    def _control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            events.append(("ping", payload) if payload else "ping")
        elif opcode == OP_PONG:
            events.append(("pong", payload) if payload else "pong")
        else:
            code, reason = parse_close(payload)
            self.close_received = (code, reason)
            if self.state is OPEN:
                # Echo the status code (RFC 6455 5.5.1); no status: empty close.
                self._close_owed = (code, "")
            else:
                self.state = CLOSED
            events.append(("close", code, reason))

    def _data(self, opcode: int, fin: bool, rsv: int, payload: bytes, events: list[Event]) -> None:
        if opcode != OP_CONTINUATION:
            self._msg_rsv = rsv
            self._msg_frames = 0
        self._msg_frames += 1
        if self.extensions:
            limit = self.max_message_size
            for ext in reversed(self.extensions):
                rsv, payload = ext.decode(opcode, fin, rsv, payload, limit)
        if opcode != OP_CONTINUATION:
            self._msg_opcode = opcode
            if fin and not self._validated:
                # Fast path: a whole message in one frame.
                if opcode == OP_TEXT:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise _invalid_utf8(exc) from None
                    self._check_size(len(payload))
                    events.append(("text", text))
                else:
                    self._check_size(len(payload))
                    events.append(("binary", payload))
                self._msg_opcode = 0
                return
        data = self._msg_data
        if self._msg_opcode == OP_TEXT:
            decoder = self._decoder
            if decoder is None:
                decoder = self._decoder = Utf8Decoder()
            # The bytes _check_partial_text validated are in data already.
            fresh = payload[self._validated :] if self._validated else payload
            self._validated = 0
            try:
                if fin:
                    decoder.finish(fresh)
                else:
                    decoder.decode(fresh)
            except UnicodeDecodeError as exc:
                raise _invalid_utf8(exc) from None
            self._check_size(len(data) + len(fresh))
            data += fresh
            if fin:
                events.append(("text", data.decode("utf-8")))
        else:
            self._check_size(len(data) + len(payload))
            data += payload
            if fin:
                events.append(("binary", bytes(data)))
        if fin:
            self._msg_data = bytearray()
            self._msg_opcode = 0
            self._msg_rsv = 0

    def _check_size(self, size: int) -> None:
        """Fail with 1009 for a message over ``max_message_size`` (``size`` bytes so far).

        The parser bounds each wire frame (an extension may let it exceed the
        limit: ``Extension.wire_size``); the message is bounded here, after its
        UTF-8, at one frame per FRAME_COST bytes of the limit at most.
        """
        limit = self.max_message_size
        if limit is None:
            return
        if size > limit:
            raise FrameError(CloseCode.MESSAGE_TOO_BIG,
                             f"message of at least {size} bytes exceeds the limit of {limit}")
        if self._msg_frames > 1 and self._msg_frames * FRAME_COST > limit:
            raise FrameError(
                CloseCode.MESSAGE_TOO_BIG,
                f"message of {self._msg_frames} frames exceeds the limit of {limit} bytes "
                f"(a message may have one frame per {FRAME_COST} bytes of the limit)")

    def _check_partial_text(self, events: list[Event]) -> None:
        """Decode the part of a text frame received so far, to fail fast."""
        if self.error is not None or self.close_received is not None:
            return
        header = self._parser.pending_header()
        if header is None:
            return
        opcode, rsv = header
        if rsv:
            return  # compressed: validated after decompression
        if opcode == OP_TEXT:
            self._msg_opcode = OP_TEXT
        elif opcode != OP_CONTINUATION or self._msg_opcode != OP_TEXT or self._msg_rsv:
            # A continuation of a message whose first frame had RSV bits
            # (e.g. permessage-deflate sets RSV1 on the first frame only):
            # its bytes are transformed, validated after decoding.
            return
        data = self._parser.pending_bytes(self._validated)
        if not data:
            return
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = Utf8Decoder()
        try:
            decoder.decode(data)
        except UnicodeDecodeError as exc:
            self._fail(_invalid_utf8(exc), events)
            return
        self._msg_data += data
        self._validated += len(data)


def _invalid_utf8(exc: UnicodeDecodeError) -> FrameError:
    bad = exc.object[exc.start : exc.start + 4]
    return FrameError(
        CloseCode.INVALID_DATA, f"text message is not valid UTF-8: {exc.reason} ({bytes(bad)!r})"
    )
