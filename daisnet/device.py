"""Torch device names as params and options give them."""

from __future__ import annotations

import torch

from daisnet.errors import InputError


def resolve_device(name: str = "auto", setting: str = "device") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU; otherwise any torch device string.

    A malformed name, or a CUDA device on a machine without one, is the user's setting `setting`
    (e.g. `train.device`): one line, not a traceback from deep inside the first `.to(device)`.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"{setting}: not a torch device: {name!r} ({exc})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise InputError(f"{setting}: {name!r} asked for, but this machine has {count} CUDA device(s); "
                             "use auto or cpu")
    return device
