# Type stub for the compiled wsx._fastpath extension (source: _fastpath.pyx).
from typing import Any

class ClientFields:
    _sock: Any
    _protocol: Any
    _cb: Any
    _state: Any
    _dbg: Any
    _cork: Any
    _inbox: Any
    _wbuf: Any
    _wlock: Any
    _write_limit: Any
    _close_reason: Any
    connection_state: Any
    _secure: bool
    _read_paused: bool
    _suspended: bool
    _terminated: bool
    _in_callback: bool
    _alive: bool

class FastReader:
    def __init__(self, client: Any) -> None: ...
    def __call__(self) -> None: ...
    def forget(self) -> None: ...
