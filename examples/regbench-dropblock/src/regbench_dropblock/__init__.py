"""DropBlock for regbench: importing the package registers the regularizer and its preset
(reg=dropblock); the layer itself is regbench_dropblock.layer."""

from regbench_dropblock.dropblock import DropBlock, DropBlockConfig, DropBlockKeys

__all__ = ["DropBlock", "DropBlockConfig", "DropBlockKeys"]
