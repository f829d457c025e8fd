"""The model's knobs (params.yaml `model.*`): every component the paper ablates is one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daisnet.errors import InputError, is_int, is_number

INPUT_KINDS = ("rgb", "depth", "depth_raw", "normal")
EDGE_MODES = ("off", "fcn", "mask_head", "conv1x1")
BACKBONES = (18, 34, 50, 101)
SHAPE_PRIOR_AVAILABLE = True  # daisnet/model/shape_prior.py, plugged into AmodalRoIHeads.amodal_refiners
SHAPE_DEPTH_MODES = ("all", "visible", "none")
HEAD_NORMS = ("none", "batch")
ORACLES = ("off", "edge", "shape")  # model.oracle: daisnet/model/oracle.py
FPN_LEVELS = 5  # torchvision's resnet_fpn_backbone: P2-P5 and the pooled P6, one anchor size each


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of DAISnet.

    inputs: any non-empty combination of `rgb` (3 ch), `depth` (the Dm regional maps, eq. 4-5),
        `depth_raw` (z-normalized log10 depth, eq. 2-3: the paper's "DN"), `normal` (3 ch, eq. 15-16).
    regional_channels: Dm, the number of regional maps (features.regional.offsets).
    weights: `random`, `imagenet` (read from `imagenet_path`: nothing is downloaded) or a path to a
        DAISnet checkpoint.
    occlusion_edge: `off` or one of the paper's three edge-head setups (§3.7, Fig. 11).
    shape_prior: `off` or `on` (the 3D shape-prior refinement of §3.8; plugs into the amodal
        refinement chain, see roi_heads.py and shape_prior.py). The `shape_prior_*` fields come
        from params.yaml `shape_prior.*` (depth mode, top-k, fusion width) and from the codebook
        (its size), so that a checkpoint's metadata rebuilds the same architecture.
    """

    inputs: tuple[str, ...] = ("rgb", "depth_raw", "normal")
    regional_channels: int = 4
    backbone_depth: int = 18
    weights: str = "random"
    imagenet_path: str = "data/weights/resnet{depth}-imagenet.pth"
    trainable_layers: int = 5
    num_classes: int = 9  # background + KINS ids 1..8 (label = KINS category id)
    min_size: int = 192
    max_size: int = 640
    fpn_channels: int = 128  # FPN output width (torchvision and the paper: 256)
    anchor_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # height / width, at every level (torchvision: 0.5, 1, 2)
    anchor_scales: tuple[float, ...] = (1.0, 1.5)  # multiples of each level's anchor size (RetinaNet: 1, 1.26, 1.59)
    mask_head_width: int = 64  # the paper: 256
    class_agnostic_masks: bool = False  # one mask per RoI for every class (Mask R-CNN §4.2 ablation) vs one per class
    representation_size: int = 512  # box head MLP width (the paper: 1024)
    rpn_pre_nms_top_n: tuple[int, int] = (2000, 1000)  # (training, testing)
    rpn_post_nms_top_n: tuple[int, int] = (2000, 1000)
    box_batch_size_per_image: int = 256  # sampled RoIs per image for the box losses
    box_positive_fraction: float = 0.25  # at most this share of them positive (Mask R-CNN: 0.25)
    mask_batch_size_per_image: int = 32  # positives per image for the mask losses; 0 = all (torchvision)
    occlusion_edge: str = "off"
    edge_head_width: int = 64
    edge_sigma: float = 1.0  # Gaussian blur of the edge target, in RoI-grid px (eq. 24-25)
    edge_depth_scale: float = 0.1  # per-object depth normalization: (ln d - mean_visible) / scale
    edge_loss_weight: float = 1.0
    # The edge branch's forms (§3.6-3.7; docs/fidelity.md): today's next to the paper's reading.
    edge_depth_pooling: str = "fpn_level"  # fpn_level: eq. 23 | image: RoI depth pooled at full resolution
    edge_fcn: str = "plain"  # fcn setup: plain (two convolutions) | encoder_decoder (a micro FCN)
    occlusion_refinement: str = "mask_head"  # mask_head: "a separate mask head" | residual over the logits
    edge_loss_reduction: str = "mean"  # mean | sum (eq. 24's sum over an RoI's pixels)
    edge_pos_weight: float = 24.0  # weight of the edge pixels' term in L_oe (1: eq. 25 as printed; docs/model.md)
    refine_loss_weight: float = 1.0
    shape_prior: str = "off"
    shape_prior_depth: str = "all"  # all | visible | none: local depth in the shape code (§5.5 S / SV)
    shape_prior_k: int = 16  # codewords retrieved per RoI
    shape_prior_width: int = 64  # fusion convolution width (cost: docs/shape_prior.md)
    shape_prior_codewords: int = 0  # codebook size (set from the codebook file)
    oracle: str = "off"  # off | edge (R+O*) | shape (R+S*): a learned part replaced by its ground truth
    roi_sampling_ratio: int = 1  # bilinear samples per RoI bin side (torchvision: 2); 1 = a quarter of RoIAlign's cost
    head_norm: str = "none"  # none | batch: BatchNorm in the FPN and mask-head convolutions (torchvision's v2 heads)
    box_detections_per_img: int = 100
    box_score_thresh: float = 0.05
    extra: dict = field(default_factory=dict, compare=False)

    def validate(self, source: str | Path = "params.yaml") -> None:
        problems = []
        if not self.inputs:
            problems.append("model.inputs is empty: name at least one of " + ", ".join(INPUT_KINDS))
        unknown = [i for i in self.inputs if i not in INPUT_KINDS]
        if unknown:
            problems.append(f"unknown model.inputs {unknown}: choose from {list(INPUT_KINDS)}")
        if len(set(self.inputs)) != len(self.inputs):
            problems.append(f"model.inputs {list(self.inputs)} names an input twice")
        for name, allowed in (("edge_depth_pooling", ("image", "fpn_level")), ("edge_fcn", ("plain", "encoder_decoder")),
                              ("occlusion_refinement", ("residual", "mask_head")), ("edge_loss_reduction", ("mean", "sum"))):
            if getattr(self, name) not in allowed:
                problems.append(f"model.{name} {getattr(self, name)!r}: choose from {list(allowed)}")
        if self.occlusion_edge not in EDGE_MODES:
            problems.append(f"model.occlusion_edge {self.occlusion_edge!r}: choose from {list(EDGE_MODES)}")
        if self.shape_prior not in ("off", "on"):
            problems.append(f"model.shape_prior {self.shape_prior!r}: choose off or on")
        elif self.shape_prior == "on" and not SHAPE_PRIOR_AVAILABLE:
            problems.append("model.shape_prior: on needs the shape autoencoder and codebook stages, which are "
                            "not built yet (docs/ablation.md lists the rows that wait for them)")
        if not is_number(self.edge_pos_weight) or not self.edge_pos_weight > 0:
            problems.append(f"model.edge_pos_weight must be a number > 0, got {self.edge_pos_weight!r}")
        if self.oracle not in ORACLES:
            problems.append(f"model.oracle {self.oracle!r}: choose from {list(ORACLES)}")
        elif self.oracle == "edge" and self.occlusion_edge == "off":
            problems.append("model.oracle edge replaces the edge head's output: it needs model.occlusion_edge on (R+O*)")
        elif self.oracle == "shape" and self.shape_prior != "on":
            problems.append("model.oracle shape replaces the shape prior's retrieval input: it needs model.shape_prior: on (R+S*)")
        if self.shape_prior_depth not in SHAPE_DEPTH_MODES:
            problems.append(f"shape_prior.depth {self.shape_prior_depth!r}: choose from {list(SHAPE_DEPTH_MODES)}")
        if self.shape_prior_k < 1 or self.shape_prior_width < 1:
            problems.append("shape_prior.top_k and shape_prior.fusion_width must be >= 1")
        if self.backbone_depth not in BACKBONES:
            problems.append(f"model.backbone_depth {self.backbone_depth}: choose from {list(BACKBONES)}")
        if not 0 <= self.trainable_layers <= 5:
            problems.append("model.trainable_layers must be in [0, 5]")
        if not self.anchor_aspect_ratios or min(self.anchor_aspect_ratios) <= 0:
            problems.append("model.anchor_aspect_ratios must be a non-empty list of positive height/width ratios")
        if not self.anchor_scales or min(self.anchor_scales) <= 0:
            problems.append("model.anchor_scales must be a non-empty list of positive multiples of the anchor sizes")
        if self.fpn_channels < 8:
            problems.append("model.fpn_channels must be >= 8")
        fraction = self.box_positive_fraction
        if not is_number(fraction) or not 0.0 < fraction <= 1.0:
            problems.append(f"model.box_positive_fraction must be in (0, 1], got {fraction!r}")
        for name in ("rpn_pre_nms_top_n", "rpn_post_nms_top_n"):
            counts = getattr(self, name)
            if len(counts) != 2 or not all(is_int(n) and n >= 1 for n in counts):
                problems.append(f"model.{name} must be [training, testing], two whole numbers >= 1, got {list(counts)}")
        if self.mask_batch_size_per_image < 0:
            problems.append("model.mask_batch_size_per_image must be >= 0 (0: every positive RoI)")
        if not isinstance(self.roi_sampling_ratio, int) or self.roi_sampling_ratio < 1:
            problems.append("model.roi_sampling_ratio must be a whole number >= 1")
        if self.head_norm not in HEAD_NORMS:
            problems.append(f"model.head_norm {self.head_norm!r}: choose from {list(HEAD_NORMS)}")
        if len(self.anchor_sizes) != FPN_LEVELS or min(self.anchor_sizes, default=0) < 1:
            problems.append(f"model.anchor_sizes must give one size per FPN level, {FPN_LEVELS} (P2-P6), "
                            f"got {list(self.anchor_sizes)}")
        if self.min_size < 32 or self.max_size < self.min_size:
            problems.append("model.min_size must be >= 32 and <= model.max_size")
        if problems:
            raise InputError("; ".join(problems), path=source)

    @property
    def needs_roi_depth(self) -> bool:
        """Whether the image tensor carries a last channel of raw depth for RoI pooling."""
        shape_depth = self.shape_prior == "on" and self.shape_prior_depth != "none"
        return self.occlusion_edge != "off" or shape_depth


def channel_counts(config: ModelConfig) -> dict[str, int]:
    return {"rgb": 3, "depth": config.regional_channels, "depth_raw": 1, "normal": 3}


def backbone_channels(config: ModelConfig) -> int:
    counts = channel_counts(config)
    return sum(counts[kind] for kind in config.inputs)
