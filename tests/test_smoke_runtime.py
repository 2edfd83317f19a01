import time

import wsx
from conftest import accept_response, read_request, server_frame


class Collect(wsx.WebSocket):
    def handle_frame(self, frame, state):
        state.append(frame)
        return ("ok", state)


def test_echo_roundtrip(echo_server):
    c = wsx.start_link(echo_server.url, Collect, [])
    wsx.send_frame(c, ("text", "Hello"))
    wsx.send_frame(c, ("binary", b"\x00\x01"))
    deadline = time.time() + 5
    while len(wsx.sys.get_state(c)) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert wsx.sys.get_state(c) == [("text", "Hello"), ("binary", b"\x00\x01")]
    assert wsx.stop(c)
    assert c.exit_reason == "normal"


def test_raw_server_remote_closed(raw_server):
    def handler(sock):
        sock.sendall(accept_response(read_request(sock)) + server_frame(1, b"hi"))

    server = raw_server(handler)
    statuses = []

    class M(Collect):
        def handle_disconnect(self, status, state):
            statuses.append(status.reason)
            return ("ok", state)

    c = wsx.start(server.url, M, [])
    assert c.join(5)
    assert statuses == [("remote", "closed")]
    assert c.exit_reason == ("remote", "closed")
