"""Occlusion-edge refinement (§3.7): edge target, the three edge heads, losses, the refinement layer.

Decisions where the paper is silent (docs/model.md repeats them):
- The edge head sees the RoI-pooled depth normalized per object by its visible region
  (`normalize_roi_depth`) together with the predicted visible mask: the edge is where the visible
  region meets something nearer, so it needs both.
- The target (eq. 24-25) is built in the 28 x 28 RoI grid from the projected ground-truth masks:
  visible pixels next to the hidden part (amodal minus visible), i.e. the stretch of the visible
  boundary where the object continues behind an occluder, Gaussian-blurred by `sigma` RoI pixels
  and scaled so that a straight edge peaks at 1.
- Occlusion refinement ("amodal attention" corrected by the edge): a small residual convolution over
  [amodal logits, edge logits, visible logits, normalized depth] that adds a correction to the amodal
  logits; its loss L_or is the same BCE against the amodal target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def normalize_roi_depth(roi_depth: torch.Tensor, visible_prob: torch.Tensor, scale: float) -> torch.Tensor:
    """Per-object depth normalization by the visible region (§3.3, last paragraph; §3.7).

    `roi_depth` (R, 1, S, S) is natural-log depth pooled in each RoI; the result is
    `(ln d - mean over the visible region of ln d) / scale`, so an object's own surface is near 0 and
    an occluder shows as strongly negative, whatever the object's distance.
    """
    weights = visible_prob.detach()
    total = weights.sum(dim=(1, 2, 3), keepdim=True)
    visible_mean = (roi_depth * weights).sum(dim=(1, 2, 3), keepdim=True) / total.clamp_min(1e-6)
    # An RoI with no visible pixel predicted falls back to its plain mean.
    plain_mean = roi_depth.mean(dim=(1, 2, 3), keepdim=True)
    reference = torch.where(total > 1e-3, visible_mean, plain_mean)
    return (roi_depth - reference) / scale


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def occlusion_edge_target(amodal: torch.Tensor, visible: torch.Tensor, sigma: float) -> torch.Tensor:
    """The occlusion-edge ground truth of eq. 24 (R, S, S) from binary RoI masks (R, S, S).

    Edge = visible pixels with a 4-neighbour in the hidden region (amodal and not visible); then a
    Gaussian blur of `sigma` px for tolerance, scaled so that a straight edge peaks at 1.
    """
    if amodal.numel() == 0:
        return amodal.new_zeros(amodal.shape, dtype=torch.float32)
    hidden = (amodal > 0.5) & ~(visible > 0.5)
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], device=amodal.device)
    near_hidden = F.conv2d(hidden[:, None].float(), cross[None, None], padding=1)[:, 0] > 0
    edge = (near_hidden & (visible > 0.5)).float()
    if sigma <= 0:
        return edge
    kernel = _gaussian_kernel(sigma).to(amodal.device)
    k = kernel.numel()
    blurred = F.conv2d(edge[:, None], kernel.view(1, 1, 1, k), padding=(0, k // 2))
    blurred = F.conv2d(blurred, kernel.view(1, 1, k, 1), padding=(k // 2, 0))[:, 0]
    peak = kernel.max()  # a straight one-pixel line blurred across peaks at the kernel's centre
    return (blurred / peak).clamp(max=1.0)


EDGE_LOSS_REDUCTIONS = ("mean", "sum")


def occlusion_edge_loss(edge_logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                        pos_weight: float = 1.0) -> torch.Tensor:
    """L_oe of eq. 24-25: binary cross-entropy of sigmoid(edge logits) against the target.

    `sum`: summed over an RoI's pixels as eq. 24 writes it, then averaged over the RoIs (28 x 28 =
    784 times `mean`'s scale: weigh it with `model.edge_loss_weight`); `mean`: over every pixel.
    `pos_weight` > 1 weighs the edge term of each pixel up (torch's `pos_weight`): a thin edge is a
    few percent of an RoI's pixels, and an unweighted head can lower its loss by predicting none
    (`model.edge_pos_weight`; 1: eq. 25 as printed)."""
    if target.numel() == 0:
        return edge_logits.sum() * 0
    weight = None if pos_weight == 1.0 else torch.tensor(pos_weight, dtype=edge_logits.dtype, device=edge_logits.device)
    if reduction == "sum":
        per_pixel = F.binary_cross_entropy_with_logits(edge_logits[:, 0], target, reduction="none", pos_weight=weight)
        return per_pixel.sum(dim=(1, 2)).mean()
    return F.binary_cross_entropy_with_logits(edge_logits[:, 0], target, pos_weight=weight)


def edge_confusion(edge_logit: torch.Tensor, edge_target: torch.Tensor, counted: torch.Tensor | None = None) -> torch.Tensor:
    """How well the edge head predicts its own target: pixel counts (true positives, false
    positives, false negatives) of sigmoid(edge) >= 0.5 against the target >= 0.5, over the RoIs
    `counted` (R,) (all when None). int64 (3,): counts add up over batches and images."""
    predicted = edge_logit[:, 0].detach() >= 0
    truth = edge_target >= 0.5
    if counted is not None:
        predicted, truth = predicted[counted], truth[counted]
    return torch.stack([(predicted & truth).sum(), (predicted & ~truth).sum(), (~predicted & truth).sum()]).long()


def edge_scores(counts: torch.Tensor | list[int]) -> dict[str, float]:
    """Precision, recall and F1 of the edge pixels from `edge_confusion` counts (0 where undefined)."""
    tp, fp, fn = (int(c) for c in counts)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class FcnEdgeHead(nn.Sequential):
    """Setup 1 of Fig. 11: a micro FCN over the normalized depth (and the visible mask)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )


class EncoderDecoderEdgeHead(nn.Module):
    """Setup 1 of Fig. 11 as a micro FCN proper: an encoder that halves the RoI grid, a decoder that
    restores it, and a skip connection from the full-resolution features (`model.edge_fcn:
    encoder_decoder`; `plain`, `FcnEdgeHead`, keeps the grid throughout)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True))
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decode = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(width, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.encode(x)
        coarse = self.up(self.down(skip))
        coarse = F.interpolate(coarse, size=skip.shape[-2:]) if coarse.shape[-2:] != skip.shape[-2:] else coarse
        return self.decode(torch.cat([skip, F.relu(coarse)], dim=1))


class MaskHeadEdgeHead(nn.Sequential):
    """Setup 2 of Fig. 11: the structure of the mask head (four 3x3 convolutions, then a predictor)."""

    def __init__(self, in_channels: int, width: int) -> None:
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 1, 1))
        super().__init__(*layers)


class Conv1x1EdgeHead(nn.Sequential):
    """Setup 3 of Fig. 11: one 1x1 convolution, the edge inferred from each pixel's own depth."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__(nn.Conv2d(in_channels, 1, 1))


EDGE_HEADS = {"fcn": FcnEdgeHead, "mask_head": MaskHeadEdgeHead, "conv1x1": Conv1x1EdgeHead}
EDGE_FCN_FORMS = {"plain": FcnEdgeHead, "encoder_decoder": EncoderDecoderEdgeHead}


def edge_head(mode: str, fcn_form: str, in_channels: int, width: int) -> nn.Module:
    """The edge head of a Fig. 11 setup (`fcn` in the form `fcn_form`)."""
    return EDGE_FCN_FORMS[fcn_form](in_channels, width) if mode == "fcn" else EDGE_HEADS[mode](in_channels, width)


class OcclusionRefinement(nn.Module):
    """Corrects the amodal logits with the occlusion edge (the paper's occlusion refinement layer).

    Residual: `amodal + f([amodal, edge, visible, depth])`, with the last layer zero-initialized so
    that training starts from the unrefined amodal mask.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(4, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, amodal_logit: torch.Tensor, edge_logit: torch.Tensor, visible_logit: torch.Tensor,
                depth: torch.Tensor) -> torch.Tensor:
        x = torch.cat([amodal_logit, edge_logit, visible_logit, depth], dim=1)
        return amodal_logit + self.out(self.body(x))


class MaskHeadRefinement(nn.Module):
    """The occlusion refinement as "a separate mask head" (§3.7): four 3 x 3 convolutions over the
    RoI features with the edge, visible and depth predictions (brought to the features' grid), then
    the mask head's 2x deconvolution and a 1 x 1 predictor of the amodal logits (one channel). The
    amodal logits are an input too, so it starts from the mask head's answer but is not a residual
    (`model.occlusion_refinement: mask_head`; `residual` is `OcclusionRefinement`)."""

    def __init__(self, feature_channels: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(feature_channels + 4 if i == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.up = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, features: torch.Tensor, amodal_logit: torch.Tensor, edge_logit: torch.Tensor,
                visible_logit: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([amodal_logit, edge_logit, visible_logit, depth], dim=1)
        maps = F.adaptive_avg_pool2d(maps, features.shape[-2:])  # 28 x 28 predictions -> the 14 x 14 RoI grid
        x = self.body(torch.cat([features, maps], dim=1))
        return self.out(F.relu(self.up(x)))
