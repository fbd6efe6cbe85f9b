"""Test-only fault injection: a run sends itself a signal at a named moment.

``install(moment, sig, setattr)`` wraps the library function that marks the moment so that
the process signals itself there, once. The tests call it in-process with pytest's
``monkeypatch.setattr``, or run this file as a script, which installs the fault and then
runs the real command line in a process of its own (for SIGTERM and SIGKILL):

    python tests/inject.py MOMENT SIGNAL run dataset=synthetic ...

The moments are marked at the seams the training code calls through its modules (data
batches, the metrics log, torch.save, summary.json), not inside the epoch loop, so the
sequential loop and the population engine are interrupted at the same moments.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from regbench.data import batching
from regbench.store import metrics, runs
from regbench.training import loop, models, session

# The moment an epoch is interrupted in, by the number of the epoch it belongs to.
TARGET_EPOCH = 2
MOMENTS = {
    "before_training": "Hydra has made the run folder, no training code has run yet",
    "startup": "after config.yaml is written, while the model is built (no epoch yet)",
    "first_epoch": "during epoch 1, before its second training batch",
    "mid_run": f"during epoch {TARGET_EPOCH}, before its second training batch",
    "after_row": f"epoch {TARGET_EPOCH}'s metrics row is on disk, its checkpoint is not",
    "checkpoint_write": f"inside epoch {TARGET_EPOCH}'s checkpoint write, half of it written",
    "before_summary": "after the last epoch's row and checkpoint, as the test pass begins",
    "summary_write": "as the final summary.json is written, the test pass done",
}

Setter = Callable[[Any, str, Any], None]


def install(moment: str, sig: int, set_attr: Setter = setattr) -> None:
    """Make this process send itself `sig` at `moment` (once)."""
    fired: list[bool] = []

    def fire() -> None:
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), sig)

    if moment == "before_training":
        _fire_before(loop, "train", fire, set_attr)
    elif moment == "startup":
        _fire_before(models, "build", fire, set_attr)
    elif moment in ("first_epoch", "mid_run"):
        _at_second_batch(1 if moment == "first_epoch" else TARGET_EPOCH, fire, set_attr)
    elif moment == "after_row":
        append = metrics.MetricsLog.append

        def append_then_fire(self: metrics.MetricsLog, row: metrics.Row) -> None:
            append(self, row)
            if row["epoch"] == TARGET_EPOCH:
                fire()

        set_attr(metrics.MetricsLog, "append", append_then_fire)
    elif moment == "checkpoint_write":
        save = torch.save

        def save_in_halves(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            if not (isinstance(obj, dict) and obj.get("epoch") == TARGET_EPOCH) or fired:
                save(obj, f, *args, **kwargs)
                return
            buffer = io.BytesIO()
            save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[:len(data) // 2])
            f.flush()
            fire()
            f.write(data[len(data) // 2:])

        set_attr(torch, "save", save_in_halves)
    elif moment == "before_summary":
        test = session.Session.test

        def fire_then_test(self: session.Session) -> Any:
            fire()
            return test(self)

        set_attr(session.Session, "test", fire_then_test)
    elif moment == "summary_write":
        write_json = runs.write_json

        def fire_then_write(path: Path, obj: dict[str, Any]) -> None:
            if path.name == runs.SUMMARY_FILE and obj.get("status") != "running":
                fire()
            write_json(path, obj)

        set_attr(runs, "write_json", fire_then_write)
    else:
        raise ValueError(f"unknown moment {moment!r}; known: {', '.join(MOMENTS)}")



def _fire_before(owner: Any, name: str, fire: Callable[[], None], set_attr: Setter) -> None:
    """Make owner.name fire first, then do what it did."""
    original = getattr(owner, name)

    def fire_then_call(*args: Any, **kwargs: Any) -> Any:
        fire()
        return original(*args, **kwargs)

    set_attr(owner, name, fire_then_call)

def _at_second_batch(epoch: int, fire: Callable[[], None], set_attr: Setter) -> None:
    """Fire before the second training batch of the given epoch, sequential or population.

    A training epoch is one call of ``batching.batches(shuffle=True)`` for a run, or of
    ``batching.member_batches`` for a population; the calls are counted.
    """
    calls: list[int] = []

    def counted(batches: Iterator[Any]) -> Iterator[Any]:
        calls.append(1)
        for i, batch in enumerate(batches):
            if len(calls) == epoch and i == 1:
                fire()
            yield batch

    plain, members = batching.batches, batching.member_batches

    def train_batches(*args: Any, **kwargs: Any) -> Iterator[Any]:
        inner = plain(*args, **kwargs)
        return counted(inner) if kwargs.get("shuffle") else inner

    set_attr(batching, "batches", train_batches)
    set_attr(batching, "member_batches", lambda *a, **k: counted(members(*a, **k)))


if __name__ == "__main__":
    moment, name, *args = sys.argv[1:]
    install(moment, signal.Signals[name])
    from regbench.cli import main

    sys.argv = ["regbench", *args]
    main()
