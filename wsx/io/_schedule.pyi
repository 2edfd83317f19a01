# Type stub for wsx.io._schedule: wsx/io/schedule.py compiled by Cython.
from .schedule import MAX_WAIT as MAX_WAIT
from .schedule import Schedule as Schedule
