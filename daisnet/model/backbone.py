"""The depth-aware feature backbone (§3.5): ResNet-FPN whose first convolution takes C channels."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops import misc as misc_nn_ops

from daisnet import torch_files
from daisnet.errors import InputError
from daisnet.model.config import ModelConfig, backbone_channels

_RESNETS = {18: resnet.resnet18, 34: resnet.resnet34, 50: resnet.resnet50, 101: resnet.resnet101}
_TORCHVISION_FILES = {
    18: "resnet18-f37072fd.pth", 34: "resnet34-b627a593.pth", 50: "resnet50-0676ba61.pth",
    101: "resnet101-63fe2227.pth",
}


def widen_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of `conv` for `in_channels` inputs whose filters repeat the RGB ones (§3.5, §4.2).

    Channel c of the new filter bank is channel c mod 3 of the pretrained one: "for an input channel
    count of 9, the pretrained weights will be repeated three times". With the extra channels at
    zero, the widened convolution gives exactly the original's output.
    """
    wide = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        repeats = -(-in_channels // conv.in_channels)
        wide.weight.copy_(conv.weight.repeat(1, repeats, 1, 1)[:, :in_channels])
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    return wide


def imagenet_state_dict(config: ModelConfig) -> dict[str, torch.Tensor]:
    """The ImageNet ResNet weights from a local file; a clear error says where to put them."""
    path = Path(config.imagenet_path.format(depth=config.backbone_depth))
    if not path.is_file():
        raise InputError(
            f"ImageNet weights not found. Put torchvision's {_TORCHVISION_FILES[config.backbone_depth]} "
            f"(ResNet-{config.backbone_depth} IMAGENET1K_V1) at this path, or set model.weights: random",
            path=path,
        )
    return torch_files.load(path)  # a file carrying code, or not a checkpoint: one line naming it


def head_norm_layer(config: ModelConfig) -> type[nn.Module] | None:
    """The normalization of the FPN and mask-head convolutions (`model.head_norm`).

    `batch`: trainable BatchNorm, as torchvision's Mask R-CNN v2 heads. Measured no better from
    random weights in a 15-minute CPU run (docs/model.md, run E5), hence `none` by default.
    """
    return nn.BatchNorm2d if config.head_norm == "batch" else None


def build_backbone(config: ModelConfig, load_pretrained: bool = True) -> BackboneWithFPN:
    """ResNet-FPN with C input channels.

    `load_pretrained=False` builds the same architecture without reading the ImageNet file (for
    loading a trained checkpoint over it).

    With random weights the BatchNorm layers are trainable: torchvision's frozen BatchNorm leaves a
    randomly initialized network unnormalized (measured: it does not learn in 15 CPU minutes).
    """
    pretrained = config.weights == "imagenet"
    norm_layer = misc_nn_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    net = _RESNETS[config.backbone_depth](weights=None, norm_layer=norm_layer)
    if pretrained and load_pretrained:
        state = imagenet_state_dict(config)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing:
            raise InputError(f"ImageNet file lacks {missing[0]} (and {len(missing) - 1} more): "
                             f"is it a ResNet-{config.backbone_depth}?", path=config.imagenet_path)
    channels = backbone_channels(config)
    if channels != 3:
        if pretrained:
            net.conv1 = widen_first_conv(net.conv1, channels)
        else:
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    trainable = config.trainable_layers if pretrained else 5
    norm = head_norm_layer(config)
    backbone = _resnet_fpn_extractor(net, trainable, norm_layer=norm)
    if config.fpn_channels != backbone.out_channels:
        # torchvision fixes 256; fewer channels make every RoI head cheaper on a CPU (docs/model.md).
        fpn = backbone.fpn
        in_channels = [block[0].in_channels for block in fpn.inner_blocks]
        backbone.fpn = FeaturePyramidNetwork(in_channels, config.fpn_channels, extra_blocks=fpn.extra_blocks,
                                             norm_layer=norm)
        backbone.out_channels = config.fpn_channels
    if pretrained and channels != 3 and trainable < 5:
        # A widened conv1 has new inputs to learn even when the pretrained stem is frozen.
        backbone.body.conv1.weight.requires_grad_(True)
    return backbone
