"""The training/evaluation dataset: prepared store (+ depth and features stores) -> model inputs.

An item is `(image, target)` in torchvision's detection convention. `image` (C, h, w) float32 holds
the channels of `ModelConfig.inputs` in order (rgb in [0, 1], then the precomputed feature maps),
plus a last channel of natural-log depth when the occlusion-edge head or the shape prior needs RoI depth. `target` has
`boxes` (amodal, xyxy), `labels` (KINS category ids), `masks` (amodal, uint8), `visible_masks`.

Augmentation (§4.2 "post processing": flip, contrast, random crop) is off unless asked for, as in the
paper's ablation. Its randomness comes from a key given with the index (`dataset[(index, key)]`),
so a resumed run draws exactly what an uninterrupted one would.

`crop_width` (params `train.crop_width`) is not an augmentation but a training budget setting: each
item is a random full-height window of that many columns, passed to the model at its own size (the
transform does not scale it back up), so a step costs what the smaller image costs. Instances
whose visible part leaves the window are dropped; the others are cut at the window's edges, as
KINS cuts objects at the image's edges. Its draw has its own random stream, independent of the
augmentation's.

The features and depth stores are checked at open to be of the prepared store's images (complete,
same count and canvas, made from this very store: `PreparedStore.check_derived`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from daisnet.data.prepared import PreparedStore, crop_row
from daisnet.data.rotate import colour_filter, rotate_sample
from daisnet.errors import InputError, is_int
from daisnet.model.config import ModelConfig, channel_counts
from daisnet.stores import open_store, reading

FEATURE_ARRAYS = {"depth": "regional", "depth_raw": "log_depth", "normal": "normals"}


@dataclass(frozen=True)
class AugmentConfig:
    """§4.2 post-processing; `enabled: false` for the ablation, as the paper."""

    enabled: bool = False
    flip: float = 0.5  # probability of a horizontal flip
    contrast: float = 0.2  # contrast factor drawn from [1 - c, 1 + c] (RGB only)
    crop: float = 0.8  # random crop keeping at least this fraction of each side (1 = off)
    rotate: float = 0.0  # degrees: a rotation drawn from [-r, r] (0 = off; §4.2 "rotation")
    color: float = 0.0  # per-channel RGB gain drawn from [1 - c, 1 + c] (0 = off; §4.2 "color filters")
    min_visible_area: int = 4  # px: instances less visible than this after a crop are dropped


MIN_CROP_WIDTH = 32  # px: the FPN's coarsest level has stride 32
WINDOW_STREAM = 1  # extra seed word: the training window's draws never repeat the augmentation's


def is_crop_width(value: object) -> bool:
    """A valid training window width: None (whole images) or whole pixels >= MIN_CROP_WIDTH."""
    return value is None or (is_int(value) and value >= MIN_CROP_WIDTH)


class AmodalDataset(Dataset):
    def __init__(self, prepared: str | Path, config: ModelConfig, features: str | Path | None = None,
                 depth: str | Path | None = None, augment: AugmentConfig = AugmentConfig(), seed: int = 0,
                 crop_width: int | None = None) -> None:
        if not is_crop_width(crop_width):
            raise ValueError(f"crop_width must be None or an integer >= {MIN_CROP_WIDTH}, got {crop_width!r}")
        self.store = PreparedStore(prepared)
        self.crop_width = crop_width
        self.config = config
        self.augment = augment
        self.seed = seed
        self.features_path = Path(features) if features is not None else None
        self.depth_path = Path(depth) if depth is not None else None
        needs_features = [k for k in config.inputs if k in FEATURE_ARRAYS]
        if needs_features and self.features_path is None:
            raise InputError(f"model.inputs {needs_features} need a features store", path="features")
        if config.needs_roi_depth and self.depth_path is None:
            raise InputError("the occlusion-edge head and the 3D shape prior need a depth store", path="depth")
        self._features = self._open(self.features_path, [FEATURE_ARRAYS[k] for k in needs_features])
        self._depth = self._open(self.depth_path, ["depth"]) if config.needs_roi_depth else None

    def _open(self, path: Path | None, arrays: list[str]) -> zarr.Group | None:
        if path is None or not arrays:
            return None
        group = open_store(path)
        missing = [a for a in arrays if a not in group]
        if missing:
            raise InputError(f"missing arrays {missing}", path=path)
        for name in arrays:
            self.store.check_derived(group, path, name)
        return group

    def __len__(self) -> int:
        return len(self.store)

    def _row(self, group: zarr.Group, path: Path, name: str, i: int) -> np.ndarray:
        with reading(path, name):
            return crop_row(group[name], i, tuple(self.store.image_size[i]), self.store.canvas)

    def channels(self, i: int) -> np.ndarray:
        """(C, h, w) float32 model input of image i, before augmentation."""
        maps = {FEATURE_ARRAYS[k]: self._row(self._features, self.features_path, FEATURE_ARRAYS[k], i)
                for k in self.config.inputs if k in FEATURE_ARRAYS}
        depth = self._row(self._depth, self.depth_path, "depth", i) if self._depth is not None else None
        rgb = self.store.image(i) if "rgb" in self.config.inputs else None
        return compose_input(self.config, rgb, maps, depth)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, key = item if isinstance(item, tuple) else (item, 0)
        image = self.channels(index)
        inst = self.store.instances(index)
        amodal, visible, labels = inst.amodal, inst.visible, inst.category.astype(np.int64)
        windowed = self.crop_width is not None and image.shape[-1] > self.crop_width
        if windowed:
            rng = np.random.default_rng([self.seed, key, index, WINDOW_STREAM])
            left = int(rng.integers(0, image.shape[-1] - self.crop_width + 1))
            image, amodal, visible, labels = crop_window(image, amodal, visible, labels, slice(None),
                                                         slice(left, left + self.crop_width),
                                                         self.augment.min_visible_area)
        if self.augment.enabled:
            rng = np.random.default_rng([self.seed, key, index])
            image, amodal, visible, labels = self._augment(rng, image, amodal, visible, labels)
        # A cut or flipped mask has a new box; an untouched one keeps the store's.
        boxes = boxes_from_masks(amodal) if windowed or self.augment.enabled else inst.amodal_box.astype(np.float32)
        target = {
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes)).reshape(-1, 4),
            "labels": torch.from_numpy(np.ascontiguousarray(labels)),
            "masks": torch.from_numpy(np.ascontiguousarray(amodal, dtype=np.uint8)),
            "visible_masks": torch.from_numpy(np.ascontiguousarray(visible, dtype=np.uint8)),
            "image_id": torch.tensor(int(self.store.image_id[index])),
        }
        return torch.from_numpy(np.ascontiguousarray(image)), target

    def _augment(self, rng: np.random.Generator, image, amodal, visible, labels):
        aug = self.augment
        c, h, w = image.shape
        if aug.crop < 1.0:
            ch = int(round(h * rng.uniform(aug.crop, 1.0)))
            cw = int(round(w * rng.uniform(aug.crop, 1.0)))
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            image, amodal, visible, labels = crop_window(image, amodal, visible, labels, slice(top, top + ch),
                                                         slice(left, left + cw), aug.min_visible_area)
        if rng.random() < aug.flip:
            image = image[:, :, ::-1].copy()
            amodal, visible = amodal[:, :, ::-1], visible[:, :, ::-1]
            if "normal" in self.config.inputs:
                first = self.channel_offsets()["normal"]
                image[first] = -image[first]  # the x component of a normal flips with the image
        if aug.rotate > 0:  # drawn only when on: the other draws stay those of a run without it
            normal = self.channel_offsets().get("normal")
            image, amodal, visible = rotate_sample(image, amodal, visible, rng.uniform(-aug.rotate, aug.rotate), normal)
            keep = (visible.sum(axis=(1, 2)) >= aug.min_visible_area) & amodal.any(axis=(1, 2))
            amodal, visible, labels = amodal[keep], visible[keep], labels[keep]
        if aug.contrast > 0 and "rgb" in self.config.inputs:
            factor = rng.uniform(1 - aug.contrast, 1 + aug.contrast)
            first = self.channel_offsets()["rgb"]
            rgb = image[first:first + 3]
            image[first:first + 3] = np.clip((rgb - rgb.mean()) * factor + rgb.mean(), 0.0, 1.0)
        if aug.color > 0 and "rgb" in self.config.inputs:
            first = self.channel_offsets()["rgb"]
            image[first:first + 3] = colour_filter(image[first:first + 3], rng, aug.color)
        return image, amodal, visible, labels

    def channel_offsets(self) -> dict[str, int]:
        """First channel of each input kind in the image tensor."""
        counts = channel_counts(self.config)
        offsets, start = {}, 0
        for kind in self.config.inputs:
            offsets[kind] = start
            start += counts[kind]
        return offsets


def compose_input(config: ModelConfig, rgb: np.ndarray | None, maps: dict[str, np.ndarray],
                  depth: np.ndarray | None) -> np.ndarray:
    """The model's input tensor (C, h, w) float32 from an image's parts.

    `rgb` (h, w, 3) uint8; `maps` the feature arrays by store name (`regional`, `log_depth`, `normals`,
    each (c, h, w)); `depth` (h, w) metres, needed when RoI depth is pooled (`config.needs_roi_depth`).
    """
    parts = []
    for kind in config.inputs:
        if kind == "rgb":
            parts.append(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
        else:
            row = np.asarray(maps[FEATURE_ARRAYS[kind]], dtype=np.float32)
            parts.append(row.reshape(-1, *row.shape[-2:]))
    if config.needs_roi_depth:
        if depth is None:
            raise ValueError("the occlusion-edge head and the 3D shape prior need depth")
        parts.append(np.log(np.maximum(np.asarray(depth, dtype=np.float32), 1e-3))[None])
    return np.concatenate(parts, axis=0)


def crop_window(image: np.ndarray, amodal: np.ndarray, visible: np.ndarray, labels: np.ndarray, rows: slice,
                columns: slice, min_visible_area: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A window of an image (C, h, w) and of its instances' masks (k, h, w); drops the instances with
    fewer than `min_visible_area` visible pixels left in it."""
    image, amodal, visible = image[:, rows, columns], amodal[:, rows, columns], visible[:, rows, columns]
    keep = (visible.sum(axis=(1, 2)) >= min_visible_area) & amodal.any(axis=(1, 2))
    return image, amodal[keep], visible[keep], labels[keep]


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """xyxy boxes (k, 4) of binary masks (k, h, w), pixel-edge convention (x1 = last column + 1)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for j, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[j] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def collate(batch):
    images, targets = zip(*batch)
    return list(images), list(targets)
