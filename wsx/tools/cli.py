"""The ``wsx`` command: an interactive WebSocket client, and an echo server.

::

    wsx ws://127.0.0.1:8765/            # each line typed is sent as a text frame
    echo hi | wsx ws://127.0.0.1:8765/  # send, print the answers, close (1000), exit 0
    wsx                                 # the same against an embedded echo server
    wsx echo-server --port 8765         # only the echo server (Ctrl-C stops it)

Received frames are printed on stdout, one line each, with their type
(``< text: hello``, ``< binary: 5 bytes: b'hello'``, ``< ping``,
``< close: 1000 'bye'``). Errors and notices go to stderr as one line
starting with ``wsx:``.

Exit status: 0 after a clean close (a close frame with 1000, 1001 or no
code, whichever side started it), 1 when the connection or the handshake
fails or the connection ends otherwise, 2 for bad arguments, 130 when
interrupted twice with Ctrl-C.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import logging
import os
import queue
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .. import __version__
from ..core.conn import Conn
from ..core.frames import DEFAULT_MAX_SIZE
from ..core.handshake import ClientHandshake
from ..errors import ConnError, HandshakeError, WSXError
from ..process.api import WebSocket, cast, start
from ..process.callbacks import DisconnectStatus
from ..process.client import Client
from .echo_server import EchoServer

__all__ = [
    "CLIError",
    "client_parser",
    "describe_close",
    "describe_frame",
    "main",
    "run_client",
    "run_echo_server",
    "server_parser",
]

PROG = "wsx"
DEFAULT_WAIT = 2.0
_PREVIEW = 64  # bytes of a binary payload shown
_WINDOW = 256  # lines handed to the client and not yet sent by it

_USAGE = (
    "wsx [options] [URL]\n"
    "       wsx echo-server [--host HOST] [--port PORT] [-v]"
)

_DESCRIPTION = """\
An interactive WebSocket client. Each line read from stdin is sent as a text
frame (binary with --binary); every frame received is printed on stdout with
its type. With no URL, wsx starts its embedded echo server on 127.0.0.1 and
connects to it. `wsx echo-server` runs only that server.
"""

_EPILOG = f"""\
end of input:
  When stdin ends (Ctrl-D, or the end of a pipe), wsx waits for the answers:
  until it has received as many messages as it sent, or until no message has
  arrived for --wait seconds (default {DEFAULT_WAIT:g}), whichever comes first. Then it
  closes the connection with code 1000 and exits. Ctrl-C closes at once.

exit status:
  0  clean close (code 1000, 1001 or none, from either side)
  1  the connection or the handshake failed, or the connection ended otherwise
  2  bad arguments
  130  interrupted (a second Ctrl-C while closing)

examples:
  wsx                                      round trip with the embedded echo server
  echo hello | wsx ws://127.0.0.1:8765/    send one message, print the answer
  wsx -H 'Authorization: Bearer T' --subprotocol chat wss://example.test/ws
  wsx echo-server --port 8765              serve ws://127.0.0.1:8765/ until Ctrl-C
"""


class CLIError(Exception):
    """A problem to report as one ``wsx: ...`` line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# ------------------------------------------------------------------ arguments
def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return value


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is not in 0-65535")
    return value


def client_parser() -> argparse.ArgumentParser:
    """The argument parser of ``wsx [options] [URL]``."""
    parser = argparse.ArgumentParser(
        prog=PROG, usage=_USAGE, description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", metavar="URL",
                        help="ws:// or wss:// URL (default: the embedded echo server)")
    parser.add_argument("-H", "--header", action="append", type=_header, default=[],
                        metavar="'NAME: VALUE'",
                        help="extra header for the upgrade request (repeatable)")
    parser.add_argument("-s", "--subprotocol", action="append", default=[], metavar="NAME",
                        help="offer this subprotocol (repeatable, in order of preference)")
    parser.add_argument("--origin", help="the Origin header")
    parser.add_argument("-k", "--insecure", action="store_true",
                        help="wss://: do not verify the server's certificate and host name")
    parser.add_argument("--cafile", metavar="FILE",
                        help="wss://: verify the server's certificate against the CA "
                             "certificates in FILE (PEM) instead of the system's (which "
                             "also honour the SSL_CERT_FILE and SSL_CERT_DIR variables)")
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument("--proxy", metavar="URL",
                       help="connect through this proxy: http://[user:pass@]host:port "
                            "(CONNECT), socks5:// or socks5h://")
    proxy.add_argument("--env-proxy", action="store_true",
                       help="use the proxy of the environment (https_proxy for wss://, "
                            "http_proxy for ws://, all_proxy; no_proxy exempts hosts); "
                            "without it the environment is ignored")
    parser.add_argument("--no-compress", action="store_true",
                        help="do not offer permessage-deflate compression")
    parser.add_argument("-b", "--binary", action="store_true",
                        help="send each line as a binary frame (its bytes, without the newline)")
    parser.add_argument("-w", "--wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS",
                        help="after the end of stdin, wait at most this long without a new "
                             f"message for the answers (default {DEFAULT_WAIT:g}; see below)")
    parser.add_argument("--max-size", type=_size, default=DEFAULT_MAX_SIZE, metavar="BYTES",
                        help="largest message accepted; 0 for no limit (default 16 MiB)")
    parser.add_argument("--connect-timeout", type=_positive_seconds, default=6.0,
                        metavar="SECONDS",
                        help="limit for DNS, TCP and TLS connection setup (default 6)")
    parser.add_argument("--ping-interval", type=_positive_seconds, metavar="SECONDS",
                        help="keepalive: ping the server after this long without traffic "
                             "(default: no pings)")
    parser.add_argument("--trace", action="store_true",
                        help="print the client's *DBG* trace on stderr (wsx.sys.trace)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print connection notices on stderr (on by default on a terminal)")
    parser.add_argument("-V", "--version", action="version", version=f"wsx {__version__}")
    return parser


def server_parser() -> argparse.ArgumentParser:
    """The argument parser of ``wsx echo-server``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} echo-server",
        description="Run wsx's embedded WebSocket echo server until Ctrl-C. It echoes text "
                    "and binary messages, answers pings and close frames, and declines "
                    "extensions.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0,
                        help="TCP port (default 0: a free port, printed at start)")
    parser.add_argument("--subprotocol", action="append", default=[], metavar="NAME",
                        help="accept this subprotocol when a client offers it (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print a line per connection event (connected, closed, ...)")
    return parser


# --------------------------------------------------------------------- output
def _preview(data: bytes) -> str:
    shown = repr(bytes(data[:_PREVIEW]))
    return shown + ("..." if len(data) > _PREVIEW else "")


# Control characters (but tab and newline) shown escaped on a terminal, so that
# a server cannot drive the terminal with escape sequences.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (9, 10)}


def describe_frame(frame: Any, terminal: bool = False) -> str:
    """The line printed for a received frame, such as ``< text: hello``.

    With ``terminal=True``, control characters of a text payload (other than
    tab and newline) are shown as ``\\xNN`` escapes.
    """
    if isinstance(frame, str):  # "ping" / "pong" with an empty payload
        return f"< {frame}"
    kind, payload = frame
    if kind == "text":
        return f"< text: {payload.translate(_CONTROLS) if terminal else payload}"
    return f"< {kind}: {len(payload)} bytes: {_preview(payload)}"


def describe_close(code: int | None, reason: str) -> str:
    """The line printed for the server's close frame."""
    if code is None:
        return "< close: no status code"
    return f"< close: {code} {reason!r}" if reason else f"< close: {code}"


class _Session:
    """What the main thread and the client's callbacks share."""

    def __init__(self, out: TextIO, err: TextIO, verbose: bool) -> None:
        self.out = out
        self.err = err
        self.verbose = verbose
        try:
            self.terminal = out.isatty()
        except (AttributeError, ValueError):
            self.terminal = False
        self.cond = threading.Condition()
        self.sent = 0
        self.received = 0
        self.last_activity = time.monotonic()
        self.reason: Any = None  # the DisconnectStatus reason
        self.output_broken = False
        # Lines go to the client as casts (no round trip per line); this bounds
        # how many are queued on the loop at once.
        self.window = threading.Semaphore(_WINDOW)

    def write(self, line: str, err: bool = False) -> None:
        stream = self.err if err else self.out
        try:
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader of our output went away (``wsx URL | head -1``): close
            # the connection, and write nothing more there (not even at exit).
            self.output_broken = True
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)

    def notice(self, message: str) -> None:
        if self.verbose:
            self.write(f"{PROG}: {message}", err=True)


class _Printer(WebSocket):
    """The callback module: prints every frame, counts messages, closes on request."""

    def handle_connect(self, conn: Conn, state: _Session) -> Any:
        details = []
        if conn.subprotocol:
            details.append(f"subprotocol {conn.subprotocol!r}")
        if conn.extensions:
            details.append("extensions " + ", ".join(name for name, _ in conn.extensions))
        extra = f" ({'; '.join(details)})" if details else ""
        state.notice(f"connected to {conn.url}{extra}")
        return ("ok", state)

    def handle_frame(self, frame: Any, state: _Session) -> Any:
        state.write(describe_frame(frame, state.terminal))
        with state.cond:
            state.received += 1
            state.last_activity = time.monotonic()
            state.cond.notify_all()
        if state.output_broken:
            return ("close", state)
        return ("ok", state)

    def handle_ping(self, frame: Any, state: _Session) -> Any:
        state.write(describe_frame(frame))
        return super().handle_ping(frame, state)

    def handle_pong(self, frame: Any, state: _Session) -> Any:
        state.write(describe_frame(frame))
        return ("ok", state)

    def handle_cast(self, msg: Any, state: _Session) -> Any:
        if msg == "close":
            return ("close", state)
        _send, frame = msg
        state.window.release()
        return ("reply", frame, state)

    def handle_disconnect(self, status: DisconnectStatus, state: _Session) -> Any:
        reason = status.reason
        if type(reason) is tuple and reason[0] == "remote" and reason != ("remote", "closed"):
            if len(reason) == 3:
                state.write(describe_close(reason[1], reason[2]))
            else:
                state.write(describe_close(None, ""))
        with state.cond:
            state.reason = reason
            state.cond.notify_all()
        return ("ok", state)


def _exit_status(reason: Any) -> tuple[int, str | None]:
    """Exit status and error line for how the connection ended."""
    if type(reason) is not tuple:
        return 0, None  # stopped locally ("normal")
    if reason in (("local", "normal"), ("remote", "normal")):
        return 0, None
    if reason == ("remote", "closed"):
        return 1, "the server closed the connection without a close frame"
    if reason[0] == "error":
        return 1, f"connection failed: {reason[1]}"
    if len(reason) == 3:
        side, code, text = reason
        if code in (1000, 1001):
            return 0, None
        who = "the server" if side == "remote" else "wsx"
        detail = f" {text!r}" if text else ""
        return 1, f"{who} closed the connection with code {code}{detail}"
    return 1, f"connection ended: {reason!r}"


# ---------------------------------------------------------------------- stdin
_EOF = object()


def _read_lines(fd: int, lines: queue.Queue[Any]) -> None:
    """Read ``fd`` (stdin) in a daemon thread; queue each line (bytes) then ``_EOF``.

    ``os.read`` is used rather than ``sys.stdin`` so that a thread still
    blocked on a terminal at exit holds no interpreter-level lock.
    """
    buf = bytearray()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            scan = len(buf)  # no newline before: search the new bytes only
            buf += chunk
            pos = 0
            while (nl := buf.find(b"\n", max(pos, scan))) != -1:
                end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
                lines.put(bytes(buf[pos:end]))
                pos = nl + 1
            del buf[:pos]
    except OSError:
        pass
    if buf:
        lines.put(bytes(buf))
    lines.put(_EOF)


def _frame_for(line: bytes, binary: bool) -> Any:
    if binary:
        return ("binary", line)
    return ("text", codecs.decode(line, "utf-8", "replace"))


# ------------------------------------------------------------------- commands
def _conn_from_args(args: argparse.Namespace, url: str) -> Conn:
    options: dict[str, Any] = {
        "extra_headers": args.header,
        "subprotocols": args.subprotocol,
        "origin": args.origin,
        "insecure": args.insecure,
        "compress": not args.no_compress,
        "socket_connect_timeout": args.connect_timeout,
        "max_message_size": args.max_size or None,
    }
    if args.cafile is not None:
        if args.insecure:
            raise CLIError("--cafile and --insecure exclude each other", 2)
        try:
            options["ssl_context"] = ssl.create_default_context(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise CLIError(f"cannot load CA certificates from {args.cafile!r}: "
                           f"{getattr(exc, 'strerror', None) or exc}", 2) from None
    if args.proxy is not None:
        options["proxy"] = args.proxy
    elif args.env_proxy:
        options["proxy"] = True
    if args.ping_interval is not None:
        options["ping_interval"] = args.ping_interval
    try:
        conn = Conn(url, **options)
        # Check the headers, subprotocols and origin now rather than after connecting.
        ClientHandshake(conn.url, origin=conn.origin, subprotocols=conn.subprotocols,
                        extra_headers=conn.extra_headers)
    except (WSXError, ValueError, TypeError) as exc:
        raise CLIError(str(exc), 2) from None
    return conn


def run_client(
    args: argparse.Namespace,
    stdin_fd: int = 0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the client for parsed ``args``; return the exit status."""
    # The command says how the connection ended itself, in one line: the
    # library's crash report (logger "wsx.crash") would say it twice.
    crash_log = logging.getLogger("wsx.crash")
    if not crash_log.handlers:
        crash_log.addHandler(logging.NullHandler())
        crash_log.propagate = False
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        interactive = os.isatty(stdin_fd)
    except OSError:
        interactive = False
    session = _Session(out, err, verbose=args.verbose or interactive)
    server: EchoServer | None = None
    url = args.url
    if url is None:
        server = EchoServer().start()
        url = server.url
        session.write(f"{PROG}: no URL given: started the embedded echo server on {url}",
                      err=True)
    try:
        conn = _conn_from_args(args, url)
        return _session(args, conn, session, stdin_fd, interactive)
    finally:
        if server is not None:
            server.stop()


def _session(args: argparse.Namespace, conn: Conn, session: _Session, stdin_fd: int,
             interactive: bool) -> int:
    target = str(conn.url)
    try:
        client = start(conn, _Printer, session, debug=["trace"] if args.trace else ())
    except ConnError as exc:
        detail = str(exc)
        redundant = f"cannot connect to {conn.url.host_header}: "
        if detail.startswith(redundant):
            detail = detail[len(redundant):]
        raise CLIError(f"cannot connect to {target}: {detail}") from None
    except HandshakeError as exc:
        raise CLIError(f"handshake with {target} failed: {exc}") from None
    except WSXError as exc:
        raise CLIError(f"cannot connect to {target}: {exc}") from None
    if interactive:
        kind = "binary" if args.binary else "text"
        session.notice(f"type a line to send it as a {kind} frame; Ctrl-D closes the "
                       "connection, Ctrl-C too")
    lines: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin_fd, lines), name="wsx-cli-stdin",
                     daemon=True).start()
    try:
        if _pump(client, lines, session, args.binary):
            _wait_for_answers(client, session, args.wait)
        _close(client, conn, session)
    except KeyboardInterrupt:
        try:
            _close(client, conn, session)
        except KeyboardInterrupt:
            return 130
    with session.cond:
        reason = session.reason if session.reason is not None else client.exit_reason
    status, message = _exit_status(reason)
    if message is not None:
        session.write(f"{PROG}: {message}", err=True)
    elif status == 0:
        session.notice("connection closed")
    return status


def _pump(client: Client, lines: queue.Queue[Any], session: _Session, binary: bool) -> bool:
    """Send the lines of stdin until it ends (True) or the connection does (False)."""
    while True:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if not client.alive or session.reason is not None:
                return False
            continue
        if line is _EOF:
            with session.cond:
                session.last_activity = time.monotonic()
            return True
        frame = _frame_for(line, binary)
        while not session.window.acquire(timeout=0.1):
            if not client.alive or session.reason is not None:
                return False  # the connection is ending: its reason is reported
        cast(client, ("send", frame))
        with session.cond:
            session.sent += 1
            session.last_activity = time.monotonic()


def _wait_for_answers(client: Client, session: _Session, wait: float) -> None:
    """Wait until ``received >= sent`` or ``wait`` seconds pass without a message."""
    with session.cond:
        while client.alive and session.reason is None and session.received < session.sent:
            remaining = wait - (time.monotonic() - session.last_activity)
            if remaining <= 0:
                return
            session.cond.wait(min(remaining, 0.1))


def _close(client: Client, conn: Conn, session: _Session) -> None:
    """Close with code 1000 (unless already closed) and wait for the client's end."""
    if client.alive and session.reason is None:
        cast(client, "close")
    if not client.join(conn.close_timeout + 2.0):
        raise CLIError(f"the connection to {str(conn.url)} did not close within "
                       f"{conn.close_timeout + 2.0:g} s")


def run_echo_server(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the echo server for parsed ``args`` until Ctrl-C; return the exit status."""
    out = out or sys.stdout
    def log(line: str) -> None:
        print(line, file=out, flush=True)

    server = EchoServer(args.host, args.port, subprotocols=args.subprotocol,
                        log=log if args.verbose else None)
    try:
        server.start()
    except OSError as exc:
        raise CLIError(str(exc.strerror or exc)) from None
    wildcard = {"": " (every interface)", "0.0.0.0": " (every IPv4 interface)",
                "::": " (every IPv6 interface)"}.get(args.host, "")
    print(f"listening on {server.url}{wildcard}", file=out, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wsx`` command and ``python -m wsx``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        if args_list[:1] == ["echo-server"]:
            return run_echo_server(server_parser().parse_args(args_list[1:]))
        return run_client(client_parser().parse_args(args_list))
    except CLIError as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr, flush=True)
        return exc.status
    except KeyboardInterrupt:
        return 130
