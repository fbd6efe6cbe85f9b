"""Fixtures; the helpers they use live in helpers.py."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import Drawn, cfg_maker, describe
from regbench.training.schema import RegbenchConfig


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist, each worker's torch (and the regbench processes it starts) uses
    one thread: the workers already share the machine's cores.

    A suite started in the background by a non-interactive shell (`cmd &`, nohup) inherits
    SIGINT as ignored, and so would every regbench process a test starts and then sends
    SIGINT to: Ctrl-C is made to work again here, so that those tests test regbench.
    Installed plugins are imported once, before any test."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # children get SIG_DFL
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
    # Installed plugins (the example in examples/, where CI installs it) are imported as
    # every regbench command imports them: in every test, not from whichever job ran first.
    from regbench.training import plugins

    os.environ.pop(plugins.ENV, None)
    plugins.load()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., RegbenchConfig]:
    """Compose the real config with overrides, writing under tmp_path."""
    return cfg_maker(tmp_path)


def _local(address: Any) -> bool:
    """Whether a socket address stays on this machine (loopback, or a Unix socket path)."""
    if not isinstance(address, tuple):
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name: resolving it would already use the network
        return False


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """regbench's environment variables as the test found them when it ends: a command run
    in-process (CliRunner) may set some for its jobs (REGBENCH_PLUGINS, the sweep's axes),
    and no test, nor a module's fixture set up after it, may depend on another having run
    before it. The user's own REGBENCH_* settings never reach a test."""
    for key in [k for k in os.environ if k.startswith("REGBENCH_")]:
        monkeypatch.delenv(key)
    yield
    for key in [k for k in os.environ if k.startswith("REGBENCH_")]:
        del os.environ[key]  # whatever a command set; monkeypatch then puts the user's back


@pytest.fixture(autouse=True)
def own_logging() -> Iterator[None]:
    """The root and regbench loggers as the test found them when it ends: a command run
    in-process (Hydra, Ray, Optuna, the trackers) may attach a handler to the stream the
    test's capture had open, which is closed by the time a later test logs to it."""
    loggers = [logging.getLogger(), logging.getLogger("regbench")]
    saved = [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        for handler in [h for h in lg.handlers if h not in handlers]:
            lg.removeHandler(handler)
        for handler in [h for h in handlers if h not in lg.handlers]:
            lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every test runs offline, whether or not this machine has a network.

    A connection to anything but this machine fails as it would without a network, and is
    recorded; a test that tried one fails at teardown, unless it asked for the list (this
    fixture's value) and emptied it after checking the attempt it meant to make.
    """
    attempts: list[str] = []
    connect = socket.socket.connect

    def local_only(self: socket.socket, address: Any) -> None:
        if not _local(address):
            attempts.append(repr(address))
            raise OSError(101, "Network is unreachable (the tests run offline)")
        connect(self, address)

    def no_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost") and not _local((host,)):
            attempts.append(repr(host))
            raise socket.gaierror(socket.EAI_NONAME, "no name lookups (the tests run offline)")
        return lookup(host, *args, **kwargs)

    lookup = socket.getaddrinfo
    for proxy in ("http_proxy", "https_proxy", "all_proxy"):  # a proxy on this machine would
        monkeypatch.delenv(proxy, raising=False)                 # carry requests past the guard
        monkeypatch.delenv(proxy.upper(), raising=False)
    monkeypatch.setattr(socket.socket, "connect", local_only)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    yield attempts
    assert not attempts, f"the test tried to reach the network: {attempts}"


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Drawn]:
    """What each figure that regbench saves during the test draws, by file name."""
    from regbench.present import plots

    figures: dict[str, Drawn] = {}
    save = plots.save

    def record(fig: Any, path: Path) -> Path:
        figures[path.name] = describe(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "save", record)
    return figures
