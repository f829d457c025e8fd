"""Torch device names as params and options give them."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU; otherwise any torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"not a torch device: {name!r} ({exc})") from None
