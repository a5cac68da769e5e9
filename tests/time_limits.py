"""A time limit for tests of inputs that once hung: a hang fails the test instead of stopping the suite."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise ``TimeoutError`` in the block after ``seconds`` (SIGALRM: the main thread of a Unix process).

    Elsewhere (another thread, Windows) the block runs without a limit.

    Example:
        >>> with time_limit(5):
        ...     pass
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
