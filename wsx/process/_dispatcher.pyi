# Type stub for wsx.process._dispatcher: wsx/process/dispatcher.py compiled by Cython.
from .dispatcher import Dispatcher as Dispatcher
from .dispatcher import frame_size as frame_size
from .dispatcher import short as short
