"""Memory of a client under a fragment flood (hardening issue): RSS in MiB.

A raw TCP server on 127.0.0.1 sends a 1-byte non-final text frame, then
``--frames`` empty continuation frames (2 bytes each on the wire), then the
final frame; or, with ``--message``, one message of ``--size`` bytes in
2-byte fragments. One wsx client reads it with the default options
(``max_message_size`` 16 MiB). Printed: bytes on the wire, how the client
ended, its peak RSS above the RSS before the flood (``VmHWM`` from
/proc/self/status after resetting it, Linux 4.0 or later), and that as a
multiple of the message size.

    python bench/flood_bench.py                    # 8M empty fragments (16 MB)
    python bench/flood_bench.py --message --size 6000000

Run the installed build from outside the repository (see bench/README.md).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from typing import Any

import wsx

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _frame(opcode: int, payload: bytes, fin: bool) -> bytes:
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


def _accept(request: bytes) -> bytes:
    import base64
    import hashlib

    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest()).decode()
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()


class Client(wsx.WebSocket):
    def handle_frame(self, frame: Any, state: Any) -> Any:
        state["frames"].append(len(frame[1]))
        return ("ok", state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8_000_000)
    parser.add_argument("--message", action="store_true")
    parser.add_argument("--size", type=int, default=6_000_000)
    args = parser.parse_args()
    if args.message:
        body = b"ab" * (args.size // 2)
        wire = b"".join(_frame(1 if i == 0 else 0, body[i:i + 2], i + 2 >= len(body))
                        for i in range(0, len(body), 2))
        size = len(body)
    else:
        wire = (_frame(1, b"x", False) + _frame(0, b"", False) * args.frames
                + _frame(0, b"y", True))
        size = 2
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        sock.sendall(_accept(sock.recv(65536)))
        try:
            sock.sendall(wire)
        except OSError:
            pass
        done.wait(120)
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    state: dict[str, Any] = {"frames": []}
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS starts again from the current RSS
    base = _status_kib("VmRSS")
    started = time.monotonic()
    client = wsx.start(f"ws://127.0.0.1:{listener.getsockname()[1]}/", Client, state)
    deadline = time.monotonic() + 300
    while client.alive and not state["frames"] and time.monotonic() < deadline:
        time.sleep(0.01)
    seconds = time.monotonic() - started
    peak = (_status_kib("VmHWM") - base) / 1024
    ending = f"a message of {state['frames'][0]} bytes" if state["frames"] else \
        f"exit {client.exit_reason!r}"
    print(f"implementation {wsx.implementation}; {len(wire) / 1e6:.1f} MB on the wire; "
          f"{ending} after {seconds:.1f} s")
    print(f"peak RSS above the start: {peak:.1f} MiB ({peak * 2**20 / max(size, 1):.1f}x the "
          f"message of {size} bytes)")
    done.set()
    wsx.stop(client, timeout=2)


if __name__ == "__main__":
    main()
