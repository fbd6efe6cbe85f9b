"""Plugins: a user's own parts, written with regbench.plugin only, picked up without edits.

Each plugin here is a module written into a scratch folder outside the package. The
in-process tests put the registries back afterwards (``isolated``), so that no other test
sees a plugin's keys.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cli, run_cli

WRECK = '''
"""A regularizer whose batch hook destroys the images: nothing can be learnt from them."""
from dataclasses import dataclass

from regbench.plugin import Regularizer, check, register_regularizer


@dataclass
class WreckKeys:
    wreck: float = 0.0  # share of each training image replaced by noise; 0: off


@register_regularizer
@dataclass
class Wreck(Regularizer):
    name = "wreck"
    keys = WreckKeys
    share: float

    @classmethod
    def check(cls, reg):
        check(0.0 <= reg.wreck <= 1.0, "reg.wreck", reg.wreck, "a share in [0, 1]")

    @classmethod
    def from_config(cls, reg, epochs):
        return cls(reg.wreck) if reg.wreck > 0 else None

    def batch(self, x, y):
        import torch
        return (1 - self.share) * x + self.share * torch.randn_like(x), y
'''

LAYERED = '''
"""A layer of one's own at the head, claiming the population may train it."""
from dataclasses import dataclass

from regbench.plugin import Regularizer, register_regularizer


@dataclass
class NoisyKeys:
    noisy: float = 0.0


@register_regularizer
@dataclass
class Noisy(Regularizer):
    name = "noisy"
    keys = NoisyKeys
    std: float

    @classmethod
    def from_config(cls, reg, epochs):
        return cls(reg.noisy) if reg.noisy > 0 else None

    def sites(self):
        return {"fc.post": f"reg.noisy={self.std}"}

    def layers(self, site):
        from torch import nn
        return [nn.Dropout(self.std)] if site.name == "fc.post" else []
'''

PARTS = '''
"""A model and a data set of one's own."""
from dataclasses import dataclass

import numpy as np

from regbench.plugin import ModelConfig, Site, check, register_dataset, register_model


@dataclass
class MLPConfig(ModelConfig):
    name: str = "tiny_mlp"
    hidden: int = 16

    def check(self, shape):
        check(self.hidden >= 1, "model.hidden", self.hidden, "an integer >= 1")


@register_model("tiny_mlp", MLPConfig, sites=("fc.post",))
def tiny_mlp(cfg, layers, in_channels, image_size, num_classes=10):
    from torch import nn
    n = in_channels * image_size[0] * image_size[1]
    return nn.Sequential(nn.Flatten(), nn.Linear(n, cfg.hidden), nn.ReLU(),
                         *layers(Site("fc", "post", cfg.hidden)), nn.Linear(cfg.hidden, num_classes))


@register_dataset("stripes", shape=(1, 8, 8), classes=2, source="two kinds of stripes")
def stripes(cfg):
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    x = np.zeros((200, 1, 8, 8), dtype=np.uint8)
    x[y == 0, :, ::2, :] = 200
    x[y == 1, :, :, ::2] = 200
    return np.clip(x + rng.integers(0, 40, x.shape), 0, 255).astype(np.uint8), y.astype(np.int64)
'''


def write_plugin(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch folder on sys.path for plugin modules; every registry is put back after."""
    from regbench.data.datasets import DATASET_INFO
    from regbench.training import plugins, schema
    from regbench.training.models import MODELS
    from regbench.training.regularizers import REGISTRY

    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    saved = [(d, dict(d)) for d in (REGISTRY, MODELS, DATASET_INFO, plugins.LOADED)]
    before = set(sys.modules)
    yield folder
    for registry, content in saved:
        registry.clear()
        registry.update(content)  # type: ignore[arg-type]
    for name in set(sys.modules) - before:
        if name in ("wreck", "parts", "broken", "clash", "layered"):
            del sys.modules[name]
    schema.refresh()


def test_a_plugin_regularizer_is_an_ordinary_key(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plugin(isolated, "wreck", WRECK)
    assert cli("config", "reg.wreck=0.5", env={"REGBENCH_PLUGINS": "wreck"}) == 0
    assert "  wreck: 0.5" in capsys.readouterr().out
    from regbench.errors import ConfigError
    from regbench.launch.composition import compose

    _, cfg = compose(["reg.wreck=1.0"])
    assert cfg.reg.wreck == 1.0
    with pytest.raises(ConfigError, match=r"reg\.wreck=1\.5 is not allowed: a share in \[0, 1\]"):
        compose(["reg.wreck=1.5"])  # the plugin's own check
    with pytest.raises(ConfigError, match=r"reg\.wreck='lots' is not allowed: expected a number"):
        compose(["reg.wreck=lots"])  # the schema's type, as for a built-in key


def test_plugin_keys_are_in_run_help(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plugin(isolated, "wreck", WRECK)
    assert cli("run", "--plugin", "wreck", "-h") == 0
    assert "wreck" in capsys.readouterr().out.split("Regularizer keys")[1]


def test_a_batch_hook_keeps_a_run_out_of_a_population(isolated: Path) -> None:
    from regbench.launch.composition import compose
    from regbench.training import plugins, population

    write_plugin(isolated, "wreck", WRECK)
    plugins.load(["wreck"])
    _, cfg = compose(["reg.wreck=1.0"])
    assert population.unsupported(cfg) == "reg.wreck=1.0"
    _, off = compose([])
    assert population.unsupported(off) is None


@pytest.mark.parametrize("text,expected", [
    (None, "plugin no_such_plugin cannot be imported: No module named 'no_such_plugin' (looked in "),
    ("raise RuntimeError('needs a GPU driver')",
     "plugin broken cannot be imported: RuntimeError: needs a GPU driver"),
    ("from regbench.plugin import Regularizer, register_regularizer\nfrom dataclasses import dataclass\n"
     "@dataclass\nclass K:\n    l2: float = 0.0\n@register_regularizer\nclass C(Regularizer):\n"
     "    name = 'clash'\n    keys = K\n", "plugin clash: reg.l2 is declared by penalty and clash"),
])
def test_a_plugin_that_cannot_be_imported_is_one_line(isolated: Path, capsys: pytest.CaptureFixture[str],
                                                      text: str | None, expected: str) -> None:
    name = "no_such_plugin" if text is None else ("broken" if "raise" in text else "clash")
    if text is not None:
        write_plugin(isolated, name, text)
    assert cli("config", "--plugin", name) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and name in err
    assert "Traceback" not in err


def test_a_plugin_model_and_data_set(isolated: Path) -> None:
    import torch

    from regbench.data import batching
    from regbench.errors import ConfigError
    from regbench.launch.composition import compose
    from regbench.training import models, plugins

    write_plugin(isolated, "parts", PARTS)
    plugins.load(["parts"])
    _, cfg = compose(["model=tiny_mlp", "model.hidden=8", "dataset=stripes", "reg.dropout.fc=0.5"])
    assert (cfg.model.hidden, cfg.dataset.name) == (8, "stripes")
    data = batching.load(cfg.dataset)
    assert (data.in_channels, data.image_size, data.num_classes) == (1, (8, 8), 2)
    net = models.build(cfg.model, cfg.reg, data.in_channels, data.image_size, data.num_classes)
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 2)
    with pytest.raises(ConfigError, match="reg.batchnorm=True is not allowed with model=tiny_mlp"):
        compose(["model=tiny_mlp", "reg.batchnorm=true"])  # it offers no conv.norm site


@pytest.mark.slow
def test_sweep_workers_and_resume_import_the_plugin(tmp_path: Path) -> None:
    """joblib's worker processes import the plugin named by --plugin; resume imports it again."""
    scratch = tmp_path / "scratch"
    write_plugin(scratch, "wreck", WRECK)
    common = ["dataset=synthetic", "trainer.epochs=1", "model.channels=[8]", "model.hidden=16",
              f"output.root={tmp_path / 'results'}", "experiment=pl"]
    env = {"PYTHONPATH": str(scratch)}
    done = run_cli("sweep", "--plugin", "wreck", "reg.wreck=0.0,1.0", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2", *common, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    [sweep_dir] = (tmp_path / "results" / "pl" / "sweeps").iterdir()
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    assert {"module": "wreck", "version": None} in plan["plugins"]
    for job in ("0", "1"):
        assert json.loads((sweep_dir / job / "summary.json").read_text())["status"] == "completed"
    assert json.loads((sweep_dir / "1" / "summary.json").read_text())["config"]["reg.wreck"] == 1.0
    # a run left unfinished resumes with its plugin imported from its summary alone
    run = sweep_dir / "1"
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    resumed = run_cli("resume", str(run), cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    again = run_cli("sweep", "--resume", str(sweep_dir), cwd=tmp_path, env=env)
    assert again.returncode == 0 and "2 of 2 jobs finished" in again.stdout, again.stderr


JITTER = '''
"""A layer of a class of its own at the head: it draws random numbers in its forward."""
from dataclasses import dataclass

import torch
from torch import nn

from regbench.plugin import Regularizer, register_regularizer


class Jitter(nn.Module):
    def __init__(self, std):
        super().__init__()
        self.std = std

    def forward(self, x):
        return x + self.std * torch.randn_like(x) if self.training else x


@dataclass
class JitterKeys:
    jitter: float = 0.0


@register_regularizer
@dataclass
class JitterReg(Regularizer):
    name = "jitter"
    keys = JitterKeys
    std: float

    @classmethod
    def from_config(cls, reg, epochs):
        return cls(reg.jitter) if reg.jitter > 0 else None

    def sites(self):
        return {"fc.post": f"reg.jitter={self.std}"}

    def layers(self, site):
        return [Jitter(self.std)] if site.name == "fc.post" else []
'''


def test_a_plugin_layer_runs_per_member_only_when_the_population_knows_it(isolated: Path) -> None:
    from regbench.launch.composition import compose
    from regbench.training import plugins, population

    write_plugin(isolated, "layered", LAYERED)
    write_plugin(isolated, "jitter", JITTER)
    plugins.load(["layered", "jitter"])
    _, cfg = compose(["reg.noisy=0.2"])
    assert population.unsupported(cfg) is None  # nn.Dropout: each member draws its own masks
    _, cfg = compose(["reg.jitter=0.2"])
    assert population.unsupported(cfg) == "reg.jitter=0.2"  # a class of its own: sequential


@pytest.mark.slow
def test_a_plugin_that_destroys_the_images_stops_learning_in_a_population_sweep(tmp_path: Path) -> None:
    """The issue's check: a plugin module outside the repository, through REGBENCH_PLUGINS,
    is in `regbench config`; in a population sweep it is refused per member with the
    population's one-line reason, its jobs train sequentially with the hook applied and
    learn nothing, while the others learn."""
    write_plugin(tmp_path / "scratch", "wreck", WRECK)
    env = {"REGBENCH_PLUGINS": "wreck", "PYTHONPATH": str(tmp_path / "scratch")}
    shown = run_cli("config", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and "  wreck: 0.0" in shown.stdout
    done = run_cli("sweep", "hydra/launcher=population", "reg.wreck=0.0,1.0", "seed=0,1",
                   "dataset=synthetic", "model.channels=[8,16]", "model.hidden=32",
                   "trainer.epochs=3", "experiment=pop", f"output.root={tmp_path / 'results'}",
                   cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "2 of 4 jobs train on their own" in done.stderr and "reg.wreck=1.0" in done.stderr
    [sweep_dir] = (tmp_path / "results" / "pop" / "sweeps").iterdir()
    acc = {}
    for job in sorted(sweep_dir.glob("[0-9]*")):
        summary = json.loads((job / "summary.json").read_text())
        assert {"module": "wreck", "version": None} in summary["plugins"]
        acc.setdefault(summary["config"]["reg.wreck"], []).append(summary["best"]["val_acc"])
    assert min(acc[0.0]) > 0.6 and max(acc[1.0]) < 0.25  # chance is 0.1


def test_a_run_folder_s_config_imports_the_plugins_its_run_recorded(isolated: Path, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from regbench.launch.composition import compose

    write_plugin(isolated, "wreck", WRECK)
    run = tmp_path / "run"
    run.mkdir()
    _, default = compose([])
    config = OmegaConf.create(OmegaConf.to_container(OmegaConf.structured(default)))
    config.reg.wreck = 0.5  # as config.yaml of a run trained with the plugin holds it
    (run / "config.yaml").write_text(OmegaConf.to_yaml(config))
    (run / "summary.json").write_text(json.dumps({"status": "completed",
                                                  "plugins": [{"module": "wreck", "version": None}]}))
    _, cfg = compose([], ["--config-path", str(run), "--config-name", "config"])
    assert cfg.reg.wreck == 0.5
