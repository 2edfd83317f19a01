"""The I/O layer: the event loop, opening connections, and the connected socket.

``loop`` (readiness, timers, wake-ups; its iteration is ``schedule``,
compiled twin ``_schedule``), ``connector`` (DNS, TCP, proxy tunnel and TLS
without blocking the loop) and ``transport`` (the connected socket: the one
place that writes to it, the write buffer, corking, backpressure, sends from
other threads). Nothing here
knows about callback modules.
"""
