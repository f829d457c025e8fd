"""The BTS training loss: scale-invariant log error (Eigen et al. 2014) as BTS uses it.

loss = 10 * sqrt(mean(g^2) - lambda * mean(g)^2), g = log(pred) - log(gt) over valid pixels,
lambda = 0.85 (variance focus): lambda = 1 would be fully scale invariant, 0 plain log RMSE; 0.85
keeps most of the scale term so the network still learns metric depth. The factor 10 is BTS's.
"""

from __future__ import annotations

import torch


def silog_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    variance_focus: float = 0.85,
    scale: float = 10.0,
    min_pred: float = 1e-6,
) -> torch.Tensor:
    """Scale-invariant log loss over the pixels where `valid` is true (any matching shapes).

    `pred` is floored at `min_pred` before the log: BTS's sigmoid head can round to exactly 0 in
    float32 (a logit below about -104), and log(0) would make the whole batch's loss NaN. Such a
    pixel has no gradient through the sigmoid anyway, so the floor changes no update. A batch with
    no valid pixel has no depth to learn from and is an error rather than a silent NaN.
    """
    if pred.shape != target.shape or pred.shape != valid.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
                         f"valid {tuple(valid.shape)}")
    if not bool(valid.any()):
        raise ValueError("no valid depth pixel in the batch")
    g = torch.log(pred[valid].clamp_min(min_pred)) - torch.log(target[valid])
    # clamp: rounding can make the variance a hair negative when every g is equal
    return scale * torch.sqrt(torch.clamp((g**2).mean() - variance_focus * g.mean() ** 2, min=1e-12))
