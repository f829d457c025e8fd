"""Configs of the train stage from params.yaml (`model`, `train`, `augment` sections)."""

from __future__ import annotations

from typing import Any

import numpy as np

from daisnet.data.prepared import PreparedStore
from daisnet.data.torch_dataset import MIN_CROP_WIDTH, AugmentConfig, is_crop_width
from daisnet.errors import InputError
from daisnet.model.config import ModelConfig, config_from_params
from daisnet.train.loop import OPTIMIZERS, TrainConfig
from daisnet.train.schedule import DECAYS


def _dataclass_from(cls, values: dict[str, Any], section: str, **fixed):
    known = set(cls.__dataclass_fields__) - {"extra"} - set(fixed)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {section} params {unknown}", path="params.yaml")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values, **fixed)


def configs_from_params(params: dict[str, Any]) -> tuple[ModelConfig, TrainConfig, AugmentConfig]:
    try:
        offsets = int(params["features"]["regional"]["offsets"])
    except KeyError:
        offsets = 4
    model = config_from_params(params.get("model", {}), regional_channels=offsets,
                               shape_prior=params.get("shape_prior"))
    train = _dataclass_from(TrainConfig, params.get("train", {}), "train", seed=params.get("seed", 0))
    augment = _dataclass_from(AugmentConfig, params.get("augment", {}), "augment")
    if train.iterations < 1 or train.batch_size < 1 or train.lr <= 0:
        raise InputError("train.iterations and train.batch_size must be >= 1 and train.lr > 0", path="params.yaml")
    if train.processes < 1:
        raise InputError(f"train.processes must be >= 1, got {train.processes}", path="params.yaml")
    if train.optimizer not in OPTIMIZERS:
        raise InputError(f"train.optimizer must be one of {list(OPTIMIZERS)}, got {train.optimizer!r}", path="params.yaml")
    if not isinstance(train.decay_norm_and_bias, bool):
        raise InputError(f"train.decay_norm_and_bias must be true or false, got {train.decay_norm_and_bias!r}",
                         path="params.yaml")
    if not is_crop_width(train.crop_width):
        raise InputError(f"train.crop_width must be null or an integer >= {MIN_CROP_WIDTH} (px), "
                         f"got {train.crop_width!r}", path="params.yaml")
    if train.decay not in DECAYS:
        raise InputError(f"train.decay must be one of {list(DECAYS)}, got {train.decay!r}", path="params.yaml")
    return model, train, augment


def rgb_statistics(store: PreparedStore, max_images: int = 200) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel RGB mean and std in [0, 1] over (up to `max_images` evenly spaced) train images (eq. 2)."""
    count = len(store)
    indices = np.linspace(0, count - 1, min(count, max_images)).round().astype(int)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    pixels = 0
    for i in np.unique(indices):
        image = store.image(int(i)).reshape(-1, 3).astype(np.float64) / 255.0
        total += image.sum(0)
        total_sq += (image**2).sum(0)
        pixels += image.shape[0]
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
