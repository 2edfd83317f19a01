"""The echo server of the end-to-end and scale benchmarks: picows on uvloop.

Every text or binary frame is sent back as it came (same opcode, same fin
bit, so fragmented messages are echoed as fragments); pings are answered by
picows; a close frame is answered and the connection dropped. One process,
one thread: it is meant to be faster than any client it serves, so that the
client is what a benchmark measures.

    python bench/echo_server_picows.py [--host 127.0.0.1] [--port 0]

prints ``PORT <n>`` on stdout once it listens, then serves until killed
(SIGTERM / SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
import sys

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

try:
    import uvloop
except ImportError:  # still usable (slower) without uvloop
    uvloop = None


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if mt is WSMsgType.BINARY or mt is WSMsgType.TEXT or mt is WSMsgType.CONTINUATION:
            transport.send(mt, frame.get_payload_as_memoryview(), frame.fin)
        elif mt is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(host: str, port: int) -> None:
    server = await ws_create_server(
        lambda _request: Echo(),
        host,
        port,
        max_frame_size=64 * 1024 * 1024,
        backlog=4096,
        websocket_handshake_timeout=30,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="picows echo server (uvloop)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    raise_nofile()
    # picows warns each time a write buffer crosses its high-water mark: with
    # pipelined 256 KiB messages that is expected (the server buffers echoes)
    logging.getLogger("picows").setLevel(logging.ERROR)
    if uvloop is not None:
        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
