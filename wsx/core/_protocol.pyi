# Type stub for wsx.core._protocol: wsx/core/protocol.py compiled by Cython.
from .protocol import CLOSED as CLOSED
from .protocol import CLOSING as CLOSING
from .protocol import OPEN as OPEN
from .protocol import Protocol as Protocol
from .protocol import frame_to_wire as frame_to_wire
from .state import ProtocolState as ProtocolState
