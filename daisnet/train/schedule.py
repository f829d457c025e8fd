"""Learning-rate schedule: the paper's smooth warm-up (eq. 27), then a step or cosine decay."""

from __future__ import annotations

import math

DECAYS = ("step", "cosine")


def smooth_warmup(iteration: int, warmup_iters: int, power: float, factor: float) -> float:
    """Eq. 27: lr_w = (i / t)^p * f * lr_f for i < t; returns the multiplier of lr_f (1 after warm-up).

    The paper's values for random weights: p = 1.3, t = 15000 (with f = 1).
    """
    if warmup_iters <= 0 or iteration >= warmup_iters:
        return 1.0
    return (iteration / warmup_iters) ** power * factor


def step_decay(iteration: int, total: int, milestones: tuple[float, ...], gamma: float) -> float:
    """Multiply by `gamma` at each milestone, given as fractions of the total iterations."""
    passed = sum(1 for m in milestones if iteration >= m * total)
    return gamma**passed


def cosine_decay(iteration: int, total: int) -> float:
    """Half a cosine from 1 at iteration 0 to 0 at `total` (not in the paper: an option for short runs)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(iteration, total) / max(total, 1)))


def learning_rate(iteration: int, base_lr: float, total: int, warmup_iters: int, warmup_power: float,
                  warmup_factor: float, milestones: tuple[float, ...], gamma: float,
                  decay: str = "step") -> float:
    if decay == "step":
        factor = step_decay(iteration, total, milestones, gamma)
    elif decay == "cosine":
        factor = cosine_decay(iteration, total)
    else:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    return base_lr * smooth_warmup(iteration, warmup_iters, warmup_power, warmup_factor) * factor
