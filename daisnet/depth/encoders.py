"""BTS encoders: torchvision backbones that return the five skip features of the BTS decoder.

The official release wraps a torchvision model as `encoder.base_model`; its checkpoints therefore
hold torchvision's own parameter names under that prefix (shared/reference/bts_official_state_dict.tsv).
We keep the same wrapping, including modules the forward never uses (ResNet's `fc`), so that a
released checkpoint loads with `strict=True` and no renaming step.

Skip features, from stride 2 to stride 32:
- ResNet: after `relu`, `layer1`, `layer2`, `layer3`, `layer4`.
- DenseNet-161 (`densenet161().features`): after `relu0`, `pool0`, `transition1`, `transition2`, `norm5`.
  `norm5` comes before DenseNet's final ReLU; the decoder applies that ReLU itself.

Weights are never downloaded (the pipeline has no network access): the backbone is built with
`weights=None`; ImageNet weights, when a user has them, are loaded from a path by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision import models


@dataclass(frozen=True)
class EncoderSpec:
    """How to build a backbone and where its skip features are taken."""

    build: Callable[[], nn.Module]
    skip_names: tuple[str, ...]
    skip_channels: tuple[int, ...]
    # Children of the backbone that are kept for checkpoint compatibility but never run.
    unused: tuple[str, ...] = ()


_RESNET_SKIPS = ("relu", "layer1", "layer2", "layer3", "layer4")

ENCODERS: dict[str, EncoderSpec] = {
    "resnet18_bts": EncoderSpec(
        lambda: models.resnet18(weights=None), _RESNET_SKIPS, (64, 64, 128, 256, 512), ("avgpool", "fc")
    ),
    "resnet34_bts": EncoderSpec(
        lambda: models.resnet34(weights=None), _RESNET_SKIPS, (64, 64, 128, 256, 512), ("avgpool", "fc")
    ),
    "resnet50_bts": EncoderSpec(
        lambda: models.resnet50(weights=None), _RESNET_SKIPS, (64, 256, 512, 1024, 2048), ("avgpool", "fc")
    ),
    "densenet161_bts": EncoderSpec(
        lambda: models.densenet161(weights=None).features,
        ("relu0", "pool0", "transition1", "transition2", "norm5"),
        (96, 96, 192, 384, 2208),
    ),
}


class BtsEncoder(nn.Module):
    """A torchvision backbone run child by child, collecting the BTS skip features."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown BTS encoder {name!r}; choose one of {sorted(ENCODERS)}")
        spec = ENCODERS[name]
        self.name = name
        self.base_model = spec.build()
        self.skip_names = spec.skip_names
        self.skip_channels = spec.skip_channels
        self._unused = frozenset(spec.unused)
        children = {n for n, _ in self.base_model.named_children()}
        missing = set(self.skip_names) - children
        if missing:  # a torchvision change would otherwise fail silently at forward time
            raise RuntimeError(f"{name}: backbone has no children {sorted(missing)}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips: list[torch.Tensor] = []
        last = self.skip_names[-1]
        for child_name, child in self.base_model.named_children():
            if child_name in self._unused:
                continue
            x = child(x)
            if child_name in self.skip_names:
                skips.append(x)
                if child_name == last:
                    break
        return skips
