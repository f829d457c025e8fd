"""Mixed precision (`train.amp`): what must stay float32 when the network runs under autocast.

Under `torch.autocast` convolutions and linear layers compute in bfloat16 or float16, and their
outputs keep that type. Three kinds of value must not: box geometry (bfloat16 has an 8-bit
mantissa: a coordinate near 640 px is off by up to 2 px), the logits that losses are computed from
(detectron2 and torchvision's reference scripts compute losses in float32), and anchors, which
torchvision makes in the feature maps' type. So the heads' predictors hand their outputs back as
float32 (`float32_outputs`), anchors are made in float32 (`Float32AnchorGenerator`), and the
project's own losses cast their inputs. Without autocast every one of these is the identity.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator

AMP_MODES = ("off", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {key: _to_float32(v) for key, v in value.items()}
    return value


def float32_outputs(module: nn.Module) -> nn.Module:
    """`module`, its floating outputs returned as float32 (a forward hook: the state dict's keys
    stay those of the module, so checkpoints are the same with and without mixed precision)."""
    module.register_forward_hook(_float32_hook)
    return module


def _float32_hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
    return _to_float32(output)


class Float32AnchorGenerator(AnchorGenerator):
    """torchvision's anchors, always in float32 (it makes them in the feature maps' type)."""

    def forward(self, image_list, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        # Only each map's shape, type and device are read: zero-byte float32 stand-ins of the same shape.
        shapes = [m.new_zeros((), dtype=torch.float32).expand(m.shape) for m in feature_maps]
        return super().forward(image_list, shapes)


def autocast(device: torch.device, amp: str) -> torch.autocast:
    """The autocast context of `train.amp` on `device` (disabled for `off`)."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {list(AMP_MODES)}, got {amp!r}")
    return torch.autocast(device.type, dtype=AMP_DTYPES.get(amp, torch.bfloat16), enabled=amp != "off")
