"""RoI heads for amodal instance segmentation: amodal boxes, visible and amodal masks, occlusion edge.

torchvision's `RoIHeads` does the box branch and sampling; this subclass replaces the mask branch:
- a visible mask head and an amodal mask head on the same pooled features (class-specific logits,
  torchvision's `maskrcnn_loss`);
- optional occlusion-edge head on RoI-pooled depth and the occlusion refinement of the amodal logits
  (daisnet/model/occlusion_edge.py);
- then a chain of `amodal_refiners` (the hook the shape prior plugs into): each takes the mask
  features, the current amodal logits of the predicted class and a context dict (`visible_logit`;
  `roi_log_depth` when the image carries the depth channel; `roi_depth` normalized for the edge
  head; `amodal_target` in training), and returns refined logits and its losses. The last logits
  are the reported amodal mask. The shape prior (daisnet/model/shape_prior.py) is one.
- at test, given the split's ground truth (`targets`), each detection's matched instance: the edge
  head's confusion counts against its own target (`edge_counts` per image: the evaluate stage's
  edge metric) and the oracle rows' inputs (`model.oracle`, daisnet/model/oracle.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    fastrcnn_loss,
    maskrcnn_loss,
    project_masks_on_boxes,
)
from torchvision.ops import roi_align

from daisnet.model.occlusion_edge import (
    MaskHeadRefinement,
    OcclusionRefinement,
    edge_confusion,
    normalize_roi_depth,
    occlusion_edge_loss,
    occlusion_edge_target,
)
from daisnet.model.oracle import match_ground_truth, oracle_logit, with_oracle_masks


class AmodalRefiner(Protocol):
    """What the shape prior (or any later refinement) implements to plug into the amodal chain."""

    def __call__(self, mask_features: torch.Tensor, amodal_logit: torch.Tensor, labels: torch.Tensor,
                 context: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


def _pick(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(R, K, M, M) class-specific logits -> (R, 1, M, M) of each RoI's label."""
    index = torch.arange(logits.shape[0], device=logits.device)
    return logits[index, labels][:, None]


def subsample_positives(labels: torch.Tensor, limit: int) -> torch.Tensor:
    """Indices of the positive RoIs (label > 0) that train the mask heads, at most `limit` (0: all).

    The box branch needs many sampled RoIs (hundreds of negatives per image teach it to reject
    fragments of objects), but every positive among them also goes through both mask heads, which
    dominate a CPU step; a random subset of the positives trains the masks almost as well. torchvision
    and the paper use all positives (`limit` 0). Drawn from torch's global generator, so a seeded
    (and a resumed) run draws the same subset.
    """
    pos = torch.where(labels > 0)[0]
    if 0 < limit < len(pos):
        pos = pos[torch.randperm(len(pos), device=pos.device)[:limit]]
    return pos


def _project(gt_masks: list[torch.Tensor], proposals: list[torch.Tensor], matched: list[torch.Tensor],
             size: int) -> torch.Tensor:
    targets = [project_masks_on_boxes(m, p, i, size) for m, p, i in zip(gt_masks, proposals, matched)]
    return torch.cat(targets, dim=0) if targets else torch.zeros(0, size, size)


class AmodalRoIHeads(RoIHeads):
    def __init__(self, *args, visible_head: nn.Module, visible_predictor: nn.Module,
                 edge_head: nn.Module | None = None, refinement: OcclusionRefinement | MaskHeadRefinement | None = None,
                 edge_sigma: float = 1.0, edge_depth_scale: float = 0.1, edge_loss_weight: float = 1.0,
                 refine_loss_weight: float = 1.0, mask_batch_size_per_image: int = 0, edge_loss_reduction: str = "mean",
                 edge_depth_pooler: nn.Module | None = None, oracle: str = "off", edge_pos_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mask_batch_size_per_image = mask_batch_size_per_image
        self.visible_head = visible_head
        self.visible_predictor = visible_predictor
        self.edge_head = edge_head
        self.refinement = refinement
        self.edge_sigma = edge_sigma
        self.edge_depth_scale = edge_depth_scale
        self.edge_loss_weight = edge_loss_weight
        self.refine_loss_weight = refine_loss_weight
        self.edge_loss_reduction = edge_loss_reduction
        self.edge_pos_weight = edge_pos_weight
        # eq. 23: the RoI's depth from the depth map at its FPN level's stride (None: at full resolution)
        self.edge_depth_pooler = edge_depth_pooler
        self.amodal_refiners = nn.ModuleList()
        self.oracle = oracle  # off | edge | shape (daisnet/model/oracle.py)
        self.mask_ceiling = False  # test only, set by `daisnet evaluate --mask-ceiling`: oracle amodal masks
        self.ceiling_region = "all"  # which pixels of them (daisnet/model/oracle.py, CEILING_REGIONS)
        self.edge_tally: torch.Tensor | None = None  # training: edge confusion counts since `pop_edge_tally`

    @property
    def reads_roi_ground_truth(self) -> bool:
        """Whether the heads read each RoI's ground-truth masks beyond the mask losses (the edge target and
        metric, an oracle): projected in training; at test, evaluation passes the split's annotations."""
        return self.edge_head is not None or self.oracle != "off" or self.mask_ceiling

    def pop_edge_tally(self) -> torch.Tensor | None:
        """The edge head's confusion counts on its training RoIs since the last call (None: no edge head)."""
        tally, self.edge_tally = self.edge_tally, None
        return tally

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]], targets: list[dict[str, torch.Tensor]] | None = None,
                roi_depth: torch.Tensor | None = None) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """Boxes, then visible and amodal masks, then the occlusion edge and its refinement, then the
        amodal refiners (the shape prior): each step one method, in the order the paper's Fig. 2 draws."""
        result, losses, rois = self._box_branch(features, proposals, image_shapes, targets)
        mask_features, amodal, visible, context = self._mask_branch(features, rois, image_shapes, targets, losses)
        refined, edge = self._occlusion_edge(mask_features, amodal, visible, rois, image_shapes, targets, roi_depth,
                                             context, losses)
        for refiner in self.amodal_refiners:
            refined, refiner_losses = refiner(mask_features, refined, rois.flat_labels, context)
            losses.update(refiner_losses)
        if not self.training and self.mask_ceiling:
            if "matched" not in context:
                raise ValueError("the mask ceiling needs the ground truth at test: evaluate on an annotated split")
            refined = with_oracle_masks(refined, context["amodal_target"], context["visible_target"], context["matched"],
                                        self.ceiling_region)
        if not self.training:
            _attach_masks(result, rois.proposals, refined, visible, edge, context.get("edge_counts"))
        return result, losses

    def _box_branch(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                    image_shapes: list[tuple[int, int]], targets: list[dict[str, torch.Tensor]] | None,
                    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor], MaskRoIs]:
        """torchvision's box branch: in training its losses and the positive RoIs that train the masks
        (at most `mask_batch_size_per_image` per image); at test the detections, whose boxes get masks."""
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        if not self.training:
            boxes, scores, det_labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
            result = [{"boxes": b, "labels": l, "scores": s} for b, l, s in zip(boxes, det_labels, scores)]
            return result, {}, MaskRoIs(boxes, [], det_labels)
        loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
        mask_proposals, pos_matched, mask_labels = [], [], []
        for image_index in range(len(proposals)):
            pos = subsample_positives(labels[image_index], self.mask_batch_size_per_image)
            mask_proposals.append(proposals[image_index][pos])
            pos_matched.append(matched_idxs[image_index][pos])
            mask_labels.append(labels[image_index][pos])
        losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        return [], losses, MaskRoIs(mask_proposals, pos_matched, mask_labels)

    def _mask_branch(self, features: dict[str, torch.Tensor], rois: MaskRoIs, image_shapes: list[tuple[int, int]],
                     targets: list[dict[str, torch.Tensor]] | None, losses: dict[str, torch.Tensor],
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Amodal and visible mask heads on the same pooled features: (mask features, amodal and visible
        logits of each RoI's class, the refiners' context); in training their losses go into `losses`."""
        mask_features = self.mask_roi_pool(features, rois.proposals, image_shapes)
        amodal_logits = self.mask_predictor(self.mask_head(mask_features))
        visible_logits = self.visible_predictor(self.visible_head(mask_features))
        # Class-agnostic predictors have one channel: every RoI reads (and trains) channel 0.
        class_specific = amodal_logits.shape[1] > 1
        channel = rois.flat_labels if class_specific else torch.zeros_like(rois.flat_labels)
        amodal = _pick(amodal_logits, channel)
        visible = _pick(visible_logits, channel)
        context: dict[str, torch.Tensor] = {"visible_logit": visible}
        if self.training:
            gt_amodal = [t["masks"] for t in targets]
            gt_visible = [t["visible_masks"] for t in targets]
            gt_labels = [t["labels"] if class_specific else torch.zeros_like(t["labels"]) for t in targets]
            losses["loss_mask"] = maskrcnn_loss(amodal_logits, rois.proposals, gt_amodal, gt_labels, rois.matched)
            losses["loss_visible"] = maskrcnn_loss(visible_logits, rois.proposals, gt_visible, gt_labels, rois.matched)
            context["amodal_target"] = _project(gt_amodal, rois.proposals, rois.matched, amodal.shape[-1])
            if self.reads_roi_ground_truth:  # the edge target and the oracles read it
                context["visible_target"] = _project(gt_visible, rois.proposals, rois.matched, amodal.shape[-1])
        elif targets is not None and self.reads_roi_ground_truth:
            context["amodal_target"], context["visible_target"], context["matched"] = match_ground_truth(
                rois.proposals, targets, amodal.shape[-1])
        elif self.oracle != "off":
            raise ValueError(f"model.oracle {self.oracle!r} needs the ground truth at test: evaluate it on an "
                             "annotated split (the evaluate stage), not on bare images")
        return mask_features, amodal, visible, context

    def _occlusion_edge(self, mask_features: torch.Tensor, amodal: torch.Tensor, visible: torch.Tensor,
                        rois: MaskRoIs, image_shapes: list[tuple[int, int]],
                        targets: list[dict[str, torch.Tensor]] | None, roi_depth: torch.Tensor | None,
                        context: dict[str, torch.Tensor], losses: dict[str, torch.Tensor],
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The RoI depth (eq. 23), the occlusion-edge head and the refinement of the amodal logits
        (§3.6-3.7): (refined amodal logits, edge logits or None without an edge head)."""
        size = amodal.shape[-1]
        # Natural-log depth pooled once per RoI on the mask grid: the edge head and the refiners
        # (shape prior) normalize it each their own way.
        pooled = None
        if roi_depth is not None:
            pooled = roi_align(roi_depth, rois.proposals, output_size=size, spatial_scale=1.0, sampling_ratio=2)
            context["roi_log_depth"] = pooled
        if self.edge_head is None:
            return amodal, None
        if pooled is None:
            raise ValueError("the occlusion-edge head needs the depth channel (roi_depth)")
        edge_pooled = pooled if self.edge_depth_pooler is None else self.edge_depth_pooler(
            depth_pyramid(roi_depth), rois.proposals, image_shapes)
        depth = normalize_roi_depth(edge_pooled, torch.sigmoid(visible), self.edge_depth_scale)
        context["roi_depth"] = depth
        edge = self.edge_head(torch.cat([depth, torch.sigmoid(visible)], dim=1))
        edge_target = None  # training, and test with the ground truth: eq. 24-25's target
        if "amodal_target" in context:
            edge_target = occlusion_edge_target(context["amodal_target"], context["visible_target"], self.edge_sigma)
        # R+O*: the refinement reads the target instead of the head (which still trains as before)
        fed = oracle_logit(edge_target) if self.oracle == "edge" else edge
        if isinstance(self.refinement, MaskHeadRefinement):
            refined = self.refinement(mask_features, amodal, fed, visible, depth)
        else:
            refined = self.refinement(amodal, fed, visible, depth)
        if self.training:
            losses["loss_edge"] = self.edge_loss_weight * occlusion_edge_loss(edge, edge_target,
                                                                              self.edge_loss_reduction,
                                                                              self.edge_pos_weight)
            losses["loss_refine"] = self.refine_loss_weight * _mask_bce(refined, context["amodal_target"])
            counts = edge_confusion(edge, edge_target)
            self.edge_tally = counts if self.edge_tally is None else self.edge_tally + counts
        elif edge_target is not None:
            splits = [len(b) for b in rois.proposals]
            context["edge_counts"] = [edge_confusion(e, t, m) for e, t, m in zip(
                edge.split(splits), edge_target.split(splits), context["matched"].split(splits))]
        return refined, edge


@dataclass
class MaskRoIs:
    """The RoIs that get masks: per image, their boxes, (training) matched ground truth, labels."""

    proposals: list[torch.Tensor]
    matched: list[torch.Tensor]
    labels: list[torch.Tensor]

    @property
    def flat_labels(self) -> torch.Tensor:
        return torch.cat(self.labels) if self.labels else torch.zeros(0, dtype=torch.int64)


def _attach_masks(result: list[dict[str, torch.Tensor]], proposals: list[torch.Tensor], amodal: torch.Tensor,
                  visible: torch.Tensor, edge: torch.Tensor | None, edge_counts: list[torch.Tensor] | None) -> None:
    """Test time: the mask probabilities of each image's detections into its result dict, and the
    edge head's confusion counts (tp, fp, fn) when the ground truth was given."""
    splits = [len(b) for b in proposals]
    for r, counts in zip(result, edge_counts or ()):
        r["edge_counts"] = counts
    outputs = {"masks": amodal, "amodal_masks": amodal, "visible_masks": visible}
    if edge is not None:
        outputs["occlusion_edges"] = edge
    for key, logits in outputs.items():
        for r, part in zip(result, torch.sigmoid(logits).split(splits)):
            r[key] = part


FPN_STRIDES = (4, 8, 16, 32)


def depth_pyramid(depth: torch.Tensor) -> dict[str, torch.Tensor]:
    """The depth map (B, 1, H, W) averaged to each FPN level's stride, named as the FPN's levels, so
    that torchvision's MultiScaleRoIAlign pools every RoI from its own level (eq. 23)."""
    return {str(i): F.avg_pool2d(depth, stride, stride, ceil_mode=True) for i, stride in enumerate(FPN_STRIDES)}


def _mask_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_or: the same BCE as eq. 25, for the refined amodal logits (R, 1, M, M)."""
    if target.numel() == 0:
        return logits.sum() * 0
    return F.binary_cross_entropy_with_logits(logits[:, 0], target)
