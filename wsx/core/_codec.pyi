# Type stub for the compiled wsx.core._codec extension (source: _codec.pyx).
from collections.abc import Callable
from typing import Any

from typing_extensions import Buffer

def _bind(
    frame_type: type, check_header: Callable[..., Any], encode_py: Callable[..., bytes],
    default_max: int, byte_payload: Callable[..., Any],
) -> None: ...

class MaskKeySource:
    def __init__(self, batch: int = 1024) -> None: ...
    def __call__(self) -> bytes: ...

default_keys: MaskKeySource

class FrameParser:
    max_frame_size: int | None
    max_message_size: int | None
    allowed_rsv: int
    def __init__(
        self,
        max_frame_size: int | None = ...,
        max_message_size: int | None = ...,
        allowed_rsv: int = 0,
        masked: bool = False,
    ) -> None: ...
    @property
    def masked(self) -> bool: ...
    @property
    def buffered(self) -> int: ...
    def pending_header(self) -> tuple[int, int] | None: ...
    def pending_bytes(self, skip: int = 0) -> bytes: ...
    def feed(self, data: Buffer) -> list[Any]: ...

def encode_frame(
    opcode: int,
    payload: Buffer = b"",
    fin: bool = True,
    rsv: int = 0,
    mask_key: bytes | None = None,
    masked: bool = True,
) -> bytes: ...

def encode_data(opcode: int, payload: bytes, masked: bool = True) -> bytes: ...
