"""What wsx does when code it runs for the user raises.

wsx runs the user's code on its loop threads and supervisor threads:
callbacks, timers, supervisor start functions, telemetry handlers. When that
code raises, it failed, whatever it raised: ``Exception``, ``SystemExit``, or
any other ``BaseException`` (``asyncio.CancelledError`` from an
``asyncio.run()`` inside a callback, a ``KeyboardInterrupt`` raised by code,
``GeneratorExit``). Its client crashes (close 1011, ``terminate(("error",
exc))``), its supervisor child fails to start, its telemetry handler is
detached; the loop thread, the other clients on it and the supervisor go on.

One exception reaches the code that runs wsx: a ``KeyboardInterrupt`` on the
main thread. Python delivers Ctrl-C only there, so it can only come from a
user pressing Ctrl-C while a loop runs in the main thread
(``wsx.Loop.run()``): the callback's client crashes as above, then the
``KeyboardInterrupt`` leaves ``Loop.run()`` so that Ctrl-C still stops the
program (the clients on that loop stay as they are until it runs again). In
``handle_disconnect`` and ``terminate``, which run while the client is being
torn down, it is that callback's failure only. Loop threads wsx starts are
never the main thread.
"""

from __future__ import annotations

import threading

__all__ = ["must_propagate"]


def must_propagate(exc: BaseException) -> bool:
    """True if ``exc``, raised by user code, must go on up (Ctrl-C on the main thread)."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    return threading.current_thread() is threading.main_thread()
