"""mixup (Zhang et al. 2018): mixed images, soft targets, and the loss they give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from scipy import stats
from torch import Tensor

from regbench.store import runs
from regbench.training import loop as train
from regbench.training import population
from regbench.training.regularizers import RegConfig, Regularization
from regbench.training.regularizers import mixup as mixup_module
from regbench.training.schema import RegbenchConfig

N = 8  # images per batch; image i is the i-th basis vector, so a mixture shows its parts


def basis_batch() -> tuple[Tensor, Tensor]:
    return torch.eye(N).view(N, 1, 1, N), torch.arange(N)


def test_mixup_loss_is_the_lambda_weighted_cross_entropy_by_hand() -> None:
    torch.manual_seed(0)
    regs = Regularization.from_config(RegConfig(mixup=0.4))
    x, y = basis_batch()
    mixed, soft = regs.batch(x, y)
    weights = mixed.view(N, N)  # row i: how much of each image went into mixed image i
    assert torch.allclose(weights.sum(1), torch.ones(N)) and (weights >= 0).all()
    assert torch.allclose(soft[:, :N], weights) and soft.shape == (N, 10)  # labels mixed alike
    pairs = [i for i in range(N) if weights[i].count_nonzero() == 2]
    assert pairs, "the permutation left every image alone"
    lam = float(weights[pairs[0], pairs[0]])
    assert 0 < lam < 1 and all(float(weights[i, i]) == pytest.approx(lam) for i in pairs)

    logits = torch.randn(N, 10)
    log_p = logits.log_softmax(1)
    by_hand = 0.0
    for i in range(N):  # lam * CE(image i, its label) + (1 - lam) * CE(image i, partner's label)
        by_hand -= sum(float(w) * float(log_p[i, y[j]]) for j, w in enumerate(weights[i]) if w > 0)
    assert float(regs.data_loss(logits, soft)) == pytest.approx(by_hand / N, rel=1e-5)
    smoothed = Regularization.from_config(RegConfig(mixup=0.4, label_smoothing=0.1))
    uniform = -float(log_p.mean(1).mean())  # label smoothing mixes in the uniform target
    assert float(smoothed.data_loss(logits, soft)) == pytest.approx(
        0.9 * by_hand / N + 0.1 * uniform, rel=1e-5)


@pytest.mark.slow
def test_mixing_weight_follows_beta_alpha_alpha() -> None:
    torch.manual_seed(1)
    alpha, lams = 0.5, []
    x, y = basis_batch()
    for _ in range(2000):
        mixed, _ = mixup_module.mix(x, y, alpha, 10)
        weights = mixed.view(N, N)
        i = next((i for i in range(N) if weights[i].count_nonzero() == 2), None)
        if i is not None:
            lams.append(float(weights[i, i]))
    # Kolmogorov-Smirnov against Beta(alpha, alpha): a correct sampler fails 1 run in 1,000
    assert len(lams) > 1900 and stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_mixup_off_and_bad_alpha() -> None:
    x, y = basis_batch()
    out, labels = Regularization.from_config(RegConfig()).batch(x, y)
    assert out is x and labels is y
    with pytest.raises(Exception, match=r"reg.mixup=-0.5 is not allowed"):
        mixup_module.Mixup.check(RegConfig(mixup=-0.5))


@pytest.mark.slow
def test_mixup_trains_on_training_batches_only(make_cfg: Callable[..., RegbenchConfig],
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = mixup_module.mix

    def counted(x: Tensor, y: Tensor, alpha: float, k: int) -> tuple[Tensor, Tensor]:
        seen.append(len(x))
        return real(x, y, alpha, k)

    monkeypatch.setattr(mixup_module, "mix", counted)
    cfg = make_cfg("reg=mixup", "dataset.train_size=100", "trainer.epochs=1", "trainer.batch_size=32")
    result = train.run(cfg, runs.make_run_dir(tmp_path / "results", "mixup"))
    assert result.status == "completed" and result.rows[0]["train_loss_running"] > 0
    assert sum(seen) == 100  # every training image once; the eval passes are not mixed
    assert population.unsupported(cfg) == "reg.mixup=0.2"  # a population trains it on its own
