"""Ground truth inside the RoI heads at test time: the oracle rows (R+O*, R+S*) and the edge metric.

`model.oracle` replaces one learned part by its ground truth, to bound what that part can give
(docs/ablation.md, "Oracle rows"):
- `edge` (R+O*): the occlusion refinement is fed the edge target of eq. 24-25, built from the
  ground-truth masks exactly as the edge loss's target, in place of the edge head's prediction;
- `shape` (R+S*): the shape prior retrieves its codewords from the ground-truth amodal (and visible)
  mask in place of the coarse prediction, with the same pooled depth.
A third bound needs no training of its own: the mask ceiling (`with_oracle_masks`), set on any trained
model at evaluation, replaces the final amodal masks themselves.

In training the RoIs are the sampled positives and their ground truth is the matched instance (as
for every mask loss). At test a detection takes the ground-truth instance its box overlaps most,
if that box IoU is at least `MATCH_IOU` (COCO's loosest threshold); an unmatched detection (a false
positive) has no ground truth: no edge, and its own prediction for the shape code.
"""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import project_masks_on_boxes
from torchvision.ops import box_iou

MATCH_IOU = 0.5


def match_ground_truth(boxes: list[torch.Tensor], targets: list[dict[str, torch.Tensor]], size: int,
                       min_iou: float = MATCH_IOU) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ground-truth amodal and visible masks of each detection in its box's `size` x `size` grid
    (R, S, S; zeros where unmatched) and whether it matched (R,), over all images in order."""
    amodal, visible, matched = [], [], []
    for image_boxes, target in zip(boxes, targets):
        n = len(image_boxes)
        if n == 0 or len(target["boxes"]) == 0:
            amodal.append(image_boxes.new_zeros(n, size, size))
            visible.append(image_boxes.new_zeros(n, size, size))
            matched.append(torch.zeros(n, dtype=torch.bool, device=image_boxes.device))
            continue
        best, index = box_iou(image_boxes, target["boxes"].to(image_boxes.dtype)).max(dim=1)
        hit = best >= min_iou
        keep = hit[:, None, None].to(image_boxes.dtype)
        amodal.append(project_masks_on_boxes(target["masks"], image_boxes, index, size) * keep)
        visible.append(project_masks_on_boxes(target["visible_masks"], image_boxes, index, size) * keep)
        matched.append(hit)
    return torch.cat(amodal), torch.cat(visible), torch.cat(matched)


def oracle_logit(target: torch.Tensor) -> torch.Tensor:
    """A target map (R, S, S) in [0, 1] as the logits (R, 1, S, S) of a confident head that is always
    right (probabilities clamped to [0.001, 0.999]): the edge oracle's input to the refinement, the
    mask ceiling's amodal masks."""
    return torch.logit(target.clamp(1e-3, 1 - 1e-3))[:, None]


CEILING_REGIONS = ("all", "hidden", "visible")


def with_oracle_masks(amodal_logit: torch.Tensor, amodal_target: torch.Tensor, visible_target: torch.Tensor,
                      matched: torch.Tensor, region: str = "all") -> torch.Tensor:
    """The mask ceiling (`daisnet evaluate --mask-ceiling`): each detection matched to an instance takes
    that instance's ground-truth amodal mask in its box's grid; an unmatched one keeps its own. The AP
    that follows is what a perfect amodal mask would give with these very detections, so it bounds
    every mask-side component (the occlusion edge, the shape prior) at once.

    `region` splits the bound: `hidden` corrects only the instance's hidden part (amodal and not
    visible: the completion behind occluders), `visible` every other pixel (the visible extent and
    the background); `all` both."""
    if region not in CEILING_REGIONS:
        raise ValueError(f"unknown ceiling region {region!r}: one of {', '.join(CEILING_REGIONS)}")
    hidden = (amodal_target >= 0.5) & (visible_target < 0.5)
    corrected = {"all": torch.ones_like(hidden), "hidden": hidden, "visible": ~hidden}[region]
    take = matched[:, None, None] & corrected
    return torch.where(take[:, None], oracle_logit(amodal_target), amodal_logit)
