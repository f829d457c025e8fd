"""BTS (Lee et al. 2019): monocular metric depth, the network the paper uses for KINS (§3.3, §4.2).

`BtsModel` has the children `encoder` (holding `encoder.base_model`, a torchvision backbone) and
`decoder`, with the parameter names and shapes of the official release, so that the released
resnet50_bts and densenet161_bts checkpoints load with no conversion step (tests/test_bts.py checks
every key, shape and dtype against shared/reference/bts_official_state_dict.tsv).

Input: RGB scaled to [0, 1] and normalized with ImageNet mean/std, H and W multiples of 32
(`daisnet.depth.infer.predict_depth` pads and crops back). Output: depth in metres, (B, 1, H, W).

Focal scaling. The release trained on KITTI multiplies its output by focal / 715.0873 so that one
network serves cameras of different focal lengths (apparent size scales with focal / depth). Here the
reference focal is an attribute: 715.0873 for the official KITTI checkpoints, the training images'
focal for models we train (so that the factor is 1 on our own data and `max_depth` stays the true
upper bound), or None for no scaling (the release's NYU mode).

Variants: `resnet50_bts` and `densenet161_bts` are the official ones (decoder width 512);
`resnet18_bts` and `resnet34_bts` are ours, for CPU profiles, with a narrower decoder by default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from daisnet.depth.decoder import BtsDecoder
from daisnet.depth.encoders import ENCODERS, BtsEncoder

KITTI_REFERENCE_FOCAL = 715.0873
OFFICIAL_ENCODERS = ("resnet50_bts", "densenet161_bts")
# Decoder width when none is given: the release's 512 for its encoders, narrower for the CPU ones.
DEFAULT_NUM_FEATURES = {"resnet18_bts": 128, "resnet34_bts": 256, "resnet50_bts": 512, "densenet161_bts": 512}

UPSAMPLING = ("bilinear", "guided")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BtsConfig:
    """Everything needed to rebuild a BTS network; stored in our checkpoints' metadata."""

    encoder: str = "resnet18_bts"
    max_depth: float = 80.0
    num_features: int | None = None  # None: DEFAULT_NUM_FEATURES[encoder]
    focal_reference: float | None = KITTI_REFERENCE_FOCAL
    bn_momentum: float = 0.01
    # Resolution the network works at, relative to the image (CPU profiles train and predict at 0.5);
    # `predict_depth` resizes to it and back. 1.0 for the official models.
    input_scale: float = 1.0
    # Floor of the local planar guidance's ray-plane denominator (`LocalPlanarGuidance`): None as
    # released (official checkpoints); our training sets it so that no plane seen edge-on can
    # produce an unbounded depth.
    plane_min_denominator: float | None = None
    # How a prediction made at input_scale < 1 returns to the image's size: bilinear, or guided by the
    # image (the fast guided filter, `daisnet.depth.upsample`: sharper object edges, docs/depth.md).
    upsample: str = "bilinear"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown BTS encoder {self.encoder!r}; choose one of {sorted(ENCODERS)}")
        if not self.max_depth > 0:
            raise ValueError(f"max_depth must be positive, got {self.max_depth}")
        if not 0 < self.input_scale <= 1:
            raise ValueError(f"input_scale must be in (0, 1], got {self.input_scale}")
        if self.plane_min_denominator is not None and not 0 < self.plane_min_denominator <= 1:
            raise ValueError(f"plane_min_denominator must be in (0, 1], got {self.plane_min_denominator}")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.num_features is None:
            object.__setattr__(self, "num_features", DEFAULT_NUM_FEATURES[self.encoder])

    def to_dict(self) -> dict:
        return asdict(self)


class BtsModel(nn.Module):
    """Encoder + decoder; `forward(x, focal)` -> depth in metres (B, 1, H, W)."""

    def __init__(self, config: BtsConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        self.config = config if config is not None else BtsConfig(**kwargs)  # type: ignore[arg-type]
        c = self.config
        self.encoder = BtsEncoder(c.encoder)
        self.decoder = BtsDecoder(self.encoder.skip_channels, c.max_depth, c.num_features, c.bn_momentum,
                                  c.plane_min_denominator)

    def forward(self, x: torch.Tensor, focal: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"BTS needs H and W multiples of 32, got {tuple(x.shape[-2:])}")
        depth = self.decoder(self.encoder(x))
        ref = self.config.focal_reference
        if ref is not None:
            if focal is None:
                raise ValueError("this BTS model scales by focal length: pass focal (B,) in px")
            focal = torch.as_tensor(focal, dtype=depth.dtype, device=depth.device).reshape(-1, 1, 1, 1)
            depth = depth * focal / ref
        return depth


def build_bts(encoder: str = "resnet18_bts", **kwargs: object) -> BtsModel:
    """`build_bts("resnet50_bts")` gives the official architecture with random weights."""
    return BtsModel(BtsConfig(encoder=encoder, **kwargs))  # type: ignore[arg-type]


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) or float [0, 1] (B, 3, H, W) -> ImageNet-normalized float (B, 3, H, W)."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).contiguous().float() / 255.0  # NCHW, as the release feeds it
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std
