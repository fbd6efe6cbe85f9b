"""ResNet-20 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, section 4.2): model=resnet20.

A 3x3 conv with 16 filters, then 3 stages of n = 3 basic blocks (two 3x3 convs each) with
16, 32 and 64 filters, where the first conv of stages 2 and 3 halves the feature map with
stride 2; global average pooling and a 10-way linear layer: 6n + 2 = 20 layers, 0.27 M
parameters. Batch norm follows every conv, as in the paper, so the model has no norm site
and refuses reg.batchnorm. Shortcuts are identities, subsampled and zero-padded in
channels where the shape changes (the paper's option A), so they add no parameters;
weights start as in He et al. (ICCV 2015). The paper reaches 8.75% test error with its
flip-and-crop augmentation (reg.augment) at 64k iterations.

Where the dropout options act: reg.dropout.input on the image; reg.dropout.conv inside
each block's residual branch, between its two convs (after the first BN and ReLU, where
wide ResNets put it: Zagoruyko & Komodakis, BMVC 2016), or with
reg.dropout.position=before_bn in front of every batch norm; reg.dropout.fc on the pooled
features before the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regbench.config.schema import check
from regbench.training.models.base import Layers, ModelConfig, register
from regbench.training.regularizers import Site

if TYPE_CHECKING:
    from torch import nn


@dataclass
class ResNet20Config(ModelConfig):
    """Filters per stage and basic blocks per stage (n: the depth is 6n + 2)."""

    name: str = "resnet20"
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    blocks: int = 3

    def check(self, shape: tuple[int, int, int]) -> None:
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels), "model.channels",
              list(self.channels), "a non-empty list of integers >= 1 (filters per stage)")
        check(self.blocks >= 1, "model.blocks", self.blocks,
              "an integer >= 1 (basic blocks per stage; the depth is 6n + 2)")


# Not batched by the population engine: it runs each member's batch norms in float32 (under
# bf16 on CUDA, vmap's batch-norm rule needs one dtype) but reaches only the regularizers'
# layers, and this model's batch norms are its own (layers.runs_per_member finds them).
@register("resnet20", ResNet20Config,
          sites=("input.post", "conv.pre_norm", "conv.post", "fc.pre_norm", "fc.post"))
def resnet20(cfg: ResNet20Config, layers: Layers, in_channels: int, image_size: tuple[int, int],
             num_classes: int = 10) -> nn.Module:
    """Stem conv, stages of basic blocks, global average pooling, linear classifier.

    stem:        conv 3x3 -> [pre_norm] -> BN -> ReLU
    basic block: relu(branch(x) + shortcut(x)), branch: conv 3x3 -> [pre_norm] -> BN -> ReLU
                 -> [post] -> conv 3x3 -> [pre_norm] -> BN (layers.Residual)
    head:        global average pool -> [fc site] -> linear
    """
    from torch import nn

    from regbench.training.layers import GlobalAvgPool, Network, Residual

    def conv3x3(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
        """A 3x3 conv without bias (the batch norm after it has the shift), then the norm."""
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                *layers(Site("conv", "pre_norm", c_out)), nn.BatchNorm2d(c_out)]

    def block(c_in: int, c_out: int, stride: int) -> nn.Module:
        branch = nn.Sequential(*conv3x3(c_in, c_out, stride), nn.ReLU(inplace=True),
                               *layers(Site("conv", "post", c_out)), *conv3x3(c_out, c_out))
        return Residual(branch, stride, extra=c_out - c_in)

    width = cfg.channels[0]
    modules: list[nn.Module] = [*layers(Site("input", "post", in_channels)),
                                *conv3x3(in_channels, width), nn.ReLU(inplace=True)]
    for stage, c_out in enumerate(cfg.channels):
        for b in range(cfg.blocks):
            modules.append(block(width, c_out, 2 if stage > 0 and b == 0 else 1))
            width = c_out
    # the head has no norm: its pre_norm and post slots are one place, before the classifier
    modules += [GlobalAvgPool(), *layers(Site("fc", "pre_norm", width)),
                *layers(Site("fc", "post", width)), nn.Linear(width, num_classes)]
    net = Network("ResNet20", *modules)
    for m in net.modules():  # He et al. (ICCV 2015) initialisation, as the paper
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net
