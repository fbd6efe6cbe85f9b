"""run.log: what happened in a run (its model, parameter groups, errors with tracebacks).

Several runs can train in one process (a population). Each run's log handler keeps the
records made while that run is the current one (``run_context``) and the records that
belong to no run in particular, so every run.log holds its own run's lines only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from regbench.store.runs import LOG_FILE

LOGGER = "regbench"
_current: ContextVar[Path | None] = ContextVar("regbench_run", default=None)


@contextmanager
def run_context(run_dir: Path) -> Iterator[None]:
    """Within the block, regbench's log records belong to run_dir."""
    token = _current.set(run_dir)
    try:
        yield
    finally:
        _current.reset(token)


class _OwnRun(logging.Filter):
    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get()
        return current is None or current == self.run_dir


@contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """Send regbench's log records of this run (and of no run in particular) to its run.log."""
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(_OwnRun(run_dir))
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
