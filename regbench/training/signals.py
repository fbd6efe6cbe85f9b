"""Signals during training: SIGTERM stops a run as Ctrl-C does, and an epoch's files are
never half written because of either."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the run stops after saving what it has."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM while a run is being set up, before training began: it stops the run as
    Ctrl-C does."""


def take_ctrl_c() -> None:
    """Make SIGINT stop regbench even where it was started with SIGINT ignored.

    A shell script's background job starts with SIGINT ignored, and Python then installs no
    handler of its own, so `kill -INT` would do nothing; with Python's handler back it stops
    the run cleanly, as SIGTERM does.
    """
    try:
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread (regbench called from a library's thread)
        pass


@contextmanager
def _raise_on_sigterm(error: Callable[[int], BaseException]) -> Iterator[None]:
    """Within the block, SIGTERM raises error(signum); outside the main thread (some
    launchers) signals are left alone."""

    def handler(signum: int, _frame: Any) -> None:
        raise error(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_as_interrupt() -> AbstractContextManager[None]:
    """Within the block, SIGTERM raises Terminated (training installs its own handling)."""
    return _raise_on_sigterm(lambda signum: Terminated(signal.Signals(signum).name))


def stop_on_signals() -> AbstractContextManager[None]:
    """Turn SIGTERM (cluster pre-emption) into the same clean stop as Ctrl-C."""
    return _raise_on_sigterm(Interrupted)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so an epoch's files are never half written.

    The handlers are swapped for one that only notes the signal; the noted signal is handed
    to the previous handler when the block ends. (A signal mask would not do: it holds the
    signal for this thread only, and Python runs its handlers in the main thread whichever
    thread, torch's included, the kernel delivered the signal to.)
    """
    noted: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {s: signal.signal(s, lambda signum, _frame: noted.append(signum))
                    for s in signals}
    except ValueError:  # not the main thread (some launchers): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if noted:
            handler = previous[noted[0]]
            if callable(handler):
                handler(noted[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), noted[0])
