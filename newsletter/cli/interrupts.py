"""Ctrl-C and SIGTERM for long-running commands: the first asks to stop, the second stops now."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, say: Callable[[str], None], message: str) -> Iterator[None]:
    """While inside, SIGINT or SIGTERM sets `stop` (after saying `message`); a second one
    raises KeyboardInterrupt.

    Setting a flag rather than raising keeps bookkeeping exact: an exception could land
    between taking a result off a queue and recording it.
    """

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        say(message)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
