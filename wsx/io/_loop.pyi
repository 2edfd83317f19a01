# Type stub for the compiled wsx.io._loop extension (source: _loop.pyx).
from collections.abc import Callable
from typing import Any

def run_epoll(loop: Any, fire: Callable[[Any], None]) -> None: ...
