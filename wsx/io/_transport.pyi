# Type stub for wsx.io._transport: wsx/io/transport.py compiled by Cython.
from .transport import WOULD_BLOCK as WOULD_BLOCK
from .transport import Transport as Transport
