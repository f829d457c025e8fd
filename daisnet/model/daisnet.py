"""DAISnet (Fig. 3): Mask R-CNN for amodal instance segmentation whose backbone sees depth.

Calling convention is torchvision's: a list of images (C, H, W) in, a list of dicts out (training:
a dict of losses). The channels of an image are the `model.inputs` in the order of
`ModelConfig.inputs`, plus, when the occlusion-edge head or the 3D shape prior is on, one last channel
of natural-log depth for RoI pooling (`ModelConfig.needs_roi_depth`; `daisnet.data.torch_dataset`
builds them). Outputs add `amodal_masks` (also as `masks`), `visible_masks` and `occlusion_edges` to boxes, labels, scores.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign

from daisnet.errors import InputError
from daisnet.model.backbone import build_backbone, head_norm_layer
from daisnet.model.config import ModelConfig, backbone_channels, channel_counts
from daisnet.model.precision import Float32AnchorGenerator, float32_outputs
from daisnet.model.occlusion_edge import MaskHeadRefinement, OcclusionRefinement, edge_scores
from daisnet.model.occlusion_edge import edge_head as make_edge_head
from daisnet.model.oracle import CEILING_REGIONS
from daisnet.model.roi_align import SampledMultiScaleRoIAlign
from daisnet.model.roi_heads import AmodalRoIHeads
from daisnet.model.shape_prior import ShapePriorRefiner
from daisnet.model.transform import AmodalTransform

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def channel_normalization(config: ModelConfig, rgb_mean=IMAGENET_MEAN, rgb_std=IMAGENET_STD):
    """Per-channel mean and std for the transform (eq. 2). Depth features arrive normalized already."""
    counts = channel_counts(config)
    mean: list[float] = []
    std: list[float] = []
    for kind in config.inputs:
        if kind == "rgb":
            mean += list(rgb_mean)
            std += list(rgb_std)
        else:
            mean += [0.0] * counts[kind]
            std += [1.0] * counts[kind]
    if config.needs_roi_depth:
        mean.append(0.0)
        std.append(1.0)
    return mean, std


def anchor_generator(config: ModelConfig) -> Float32AnchorGenerator:
    """Anchors of every FPN level: its size times each of `anchor_scales`, in each aspect ratio.

    Scales between the octaves (`model.anchor_scales`) give thin objects an anchor they overlap
    with IoU >= 0.7: an 11 x 53 px pedestrian reaches 0.57 with octave sizes only (docs/model.md).
    """
    sizes = tuple(tuple(int(round(size * scale)) for scale in config.anchor_scales) for size in config.anchor_sizes)
    return Float32AnchorGenerator(sizes, (tuple(config.anchor_aspect_ratios),) * len(sizes))


def roi_poolers(config: ModelConfig) -> tuple[MultiScaleRoIAlign, MultiScaleRoIAlign]:
    """RoIAlign over the FPN levels for the box head (7 x 7) and the mask heads (14 x 14), with
    `model.roi_sampling_ratio` bilinear samples per bin side (on the CPU by sampling: roi_align.py)."""
    levels = ["0", "1", "2", "3"]
    return (SampledMultiScaleRoIAlign(levels, 7, config.roi_sampling_ratio),
            SampledMultiScaleRoIAlign(levels, 14, config.roi_sampling_ratio))


class DAISNet(GeneralizedRCNN):
    def __init__(self, config: ModelConfig, rgb_mean=IMAGENET_MEAN, rgb_std=IMAGENET_STD,
                 load_pretrained: bool = True) -> None:
        config.validate()
        backbone = build_backbone(config, load_pretrained)
        out = backbone.out_channels
        anchors = anchor_generator(config)
        rpn = RegionProposalNetwork(
            anchors, float32_outputs(RPNHead(out, anchors.num_anchors_per_location()[0])),
            fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
            pre_nms_top_n=dict(zip(("training", "testing"), config.rpn_pre_nms_top_n)),
            post_nms_top_n=dict(zip(("training", "testing"), config.rpn_post_nms_top_n)),
            nms_thresh=0.7,
        )
        box_pool, mask_pool = roi_poolers(config)
        width = config.mask_head_width
        k = config.num_classes
        mask_classes = 1 if config.class_agnostic_masks else k

        def mask_head() -> MaskRCNNHeads:
            return MaskRCNNHeads(out, (width,) * 4, 1, norm_layer=head_norm_layer(config))

        edge_head = refinement = edge_depth_pooler = None
        if config.occlusion_edge != "off":
            edge_head = float32_outputs(make_edge_head(config.occlusion_edge, config.edge_fcn, 2, config.edge_head_width))
            refinement = float32_outputs(MaskHeadRefinement(out, config.edge_head_width)
                                         if config.occlusion_refinement == "mask_head" else OcclusionRefinement())
            if config.edge_depth_pooling == "fpn_level":
                edge_depth_pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=28, sampling_ratio=2)
        roi_heads = AmodalRoIHeads(
            box_pool, TwoMLPHead(out * 7 * 7, config.representation_size),
            float32_outputs(FastRCNNPredictor(config.representation_size, k)),
            0.5, 0.5, config.box_batch_size_per_image, config.box_positive_fraction, None, config.box_score_thresh,
            0.5, config.box_detections_per_img,
            mask_roi_pool=mask_pool, mask_head=mask_head(),
            mask_predictor=float32_outputs(MaskRCNNPredictor(width, width, mask_classes)),
            visible_head=mask_head(), visible_predictor=float32_outputs(MaskRCNNPredictor(width, width, mask_classes)),
            edge_head=edge_head, refinement=refinement, edge_sigma=config.edge_sigma,
            edge_depth_scale=config.edge_depth_scale, edge_loss_weight=config.edge_loss_weight,
            refine_loss_weight=config.refine_loss_weight, edge_loss_reduction=config.edge_loss_reduction,
            edge_pos_weight=config.edge_pos_weight,
            edge_depth_pooler=edge_depth_pooler,
            mask_batch_size_per_image=config.mask_batch_size_per_image, oracle=config.oracle,
        )
        mean, std = channel_normalization(config, rgb_mean, rgb_std)
        transform = AmodalTransform(config.min_size, config.max_size, mean, std)
        if config.shape_prior == "on":
            roi_heads.amodal_refiners.append(float32_outputs(ShapePriorRefiner(
                config.shape_prior_depth, config.shape_prior_codewords, config.shape_prior_k,
                config.shape_prior_width, out, oracle=config.oracle == "shape")))
        super().__init__(backbone, rpn, roi_heads, transform)
        self.config = config
        self.backbone_channels = backbone_channels(config)

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        expected = self.backbone_channels + int(self.config.needs_roi_depth)
        for image in images:
            if image.dim() != 3 or image.shape[0] != expected:
                raise ValueError(f"expected images of shape ({expected}, H, W) for inputs "
                                 f"{list(self.config.inputs)}, got {tuple(image.shape)}")
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        tensors = batch.tensors
        roi_depth = None
        if self.config.needs_roi_depth:
            roi_depth = tensors[:, -1:]
            tensors = tensors[:, :-1]
        features = self.backbone(tensors)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        batch.tensors = tensors
        proposals, proposal_losses = self.rpn(batch, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, batch.image_sizes, targets, roi_depth)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)

    @property
    def reads_roi_ground_truth(self) -> bool:
        """Whether the RoI heads read each RoI's ground-truth masks beyond the mask losses (edge target and
        metric, oracles); at test, evaluation then passes the split's annotations with the images."""
        return self.roi_heads.reads_roi_ground_truth

    def set_mask_ceiling(self, on: bool, region: str = "all") -> None:
        """Test only: the amodal masks of the detections matched to an instance become its ground truth,
        in `region` (daisnet/model/oracle.py, `with_oracle_masks`); evaluation then passes the annotations."""
        if region not in CEILING_REGIONS:
            raise InputError(f"--ceiling-region must be one of {', '.join(CEILING_REGIONS)}, got {region!r}")
        self.roi_heads.mask_ceiling, self.roi_heads.ceiling_region = on, region

    def pop_training_statistics(self) -> dict[str, float]:
        """What the training loop logs besides the losses, over the iterations since its last call:
        the edge head's precision, recall and F1 on its training RoIs (empty without an edge head)."""
        tally = self.roi_heads.pop_edge_tally()
        return {} if tally is None else {f"edge_{k}": v for k, v in edge_scores(tally).items()}

    @property
    def shape_prior(self) -> ShapePriorRefiner | None:
        """The shape-prior refiner when `model.shape_prior: on` (fill it with `load_assets`)."""
        for refiner in self.roi_heads.amodal_refiners:
            if isinstance(refiner, ShapePriorRefiner):
                return refiner
        return None


def build_daisnet(config: ModelConfig, **kwargs) -> DAISNet:
    return DAISNet(config, **kwargs)
