"""Ground-truth shape crops: amodal and visible masks and log depth on each amodal box, 28 x 28.

The crops are what the shape autoencoder is trained on and what the codebook is built from. They
are made exactly like the model's inputs: `roi_align` of the full-resolution masks on the ground-
truth amodal box (torchvision's `project_masks_on_boxes`, i.e. the mask head's target), and of the
natural-log depth of the depth store (`data/depth/{split}.zarr`: the depth the model sees, ground
truth or BTS) with the model's sampling. `daisnet.model.shape_prior.shape_input` then turns a crop
into the autoencoder input, for ground truth and coarse predictions alike.

Memory: a crop is 3 x 28 x 28 float16 (4.7 KB); KINS' ~95k train instances hold ~450 MB.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr
from torchvision.ops import roi_align

from daisnet.data.prepared import PreparedStore, crop_row
from daisnet.errors import InputError
from daisnet.model.shape_prior import CROP, shape_input
from daisnet.progress import track
from daisnet.stores import open_store, reading

# The dihedral group D4 on a square crop, in the order copies are taken (`shape_prior.copies` = n
# uses the first n): identity, the two flips, the half turn, then the transposes and quarter turns.
DIHEDRAL = ("identity", "hflip", "vflip", "rot180", "transpose", "rot90", "rot270", "antitranspose")


def dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """Transform `index` of `DIHEDRAL` applied to the last two axes of `x`."""
    name = DIHEDRAL[index]
    if name == "identity":
        return x
    if name == "hflip":
        return x.flip(-1)
    if name == "vflip":
        return x.flip(-2)
    if name == "rot180":
        return x.flip(-1, -2)
    if name == "transpose":
        return x.transpose(-1, -2)
    if name == "rot90":
        return x.rot90(1, (-2, -1))
    if name == "rot270":
        return x.rot90(-1, (-2, -1))
    return x.flip(-1, -2).transpose(-1, -2)  # antitranspose


@dataclass
class ShapeCrops:
    """Crops of M instances: masks in [0, 1] (roi_align of binary masks), log depth, KINS labels."""

    amodal: np.ndarray  # float16 (M, 28, 28)
    visible: np.ndarray  # float16 (M, 28, 28)
    log_depth: np.ndarray  # float16 (M, 28, 28), natural log of metres
    labels: np.ndarray  # int64 (M,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def inputs(self, depth_mode: str, index: np.ndarray | slice = slice(None)) -> torch.Tensor:
        """Autoencoder inputs (m, C, 28, 28) float32 of the selected crops."""
        amodal = torch.from_numpy(self.amodal[index].astype(np.float32))[:, None]
        visible = torch.from_numpy(self.visible[index].astype(np.float32))[:, None]
        depth = torch.from_numpy(self.log_depth[index].astype(np.float32))[:, None]
        return shape_input(amodal, visible, depth, depth_mode)


def _open_depth(path: str | Path, store: PreparedStore) -> zarr.Array:
    return store.check_derived(open_store(path), path, "depth")  # of these very images, complete


def extract_crops(prepared: str | Path, depth_store: str | Path, max_images: int | None = None,
                  progress: bool | None = None) -> ShapeCrops:
    """The 28 x 28 ground-truth crops of every instance of a split (up to `max_images` images)."""
    store = PreparedStore(prepared)
    depth = _open_depth(depth_store, store)
    count = len(store) if max_images is None else min(len(store), max_images)
    amodal, visible, log_depth, labels = [], [], [], []
    show = sys.stderr.isatty() if progress is None else progress
    for i in track(range(count), "shape crops", unit="image", bar=show):
        inst = store.instances(i)
        if len(inst) == 0:
            continue
        boxes = torch.from_numpy(inst.amodal_box.astype(np.float32))
        index = torch.arange(len(inst), dtype=torch.float32)[:, None]
        rois = torch.cat([index, boxes], dim=1)
        masks = torch.from_numpy(np.stack([inst.amodal, inst.visible], axis=1).astype(np.float32))
        # The mask head's target convention (project_masks_on_boxes): aligned=False, adaptive sampling.
        pooled = roi_align(masks, rois, (CROP, CROP), 1.0)
        with reading(depth_store, "depth"):
            row = crop_row(depth, i, tuple(store.image_size[i]), store.canvas)
        ln = torch.from_numpy(np.log(np.maximum(np.asarray(row, dtype=np.float32), 1e-3)))[None, None]
        zero = torch.zeros(len(inst), 1)
        # The model pools depth with sampling_ratio=2 (roi_heads.py): the same here.
        pooled_depth = roi_align(ln, torch.cat([zero, boxes], dim=1), (CROP, CROP), 1.0, sampling_ratio=2)
        amodal.append(pooled[:, 0].numpy().astype(np.float16))
        visible.append(pooled[:, 1].numpy().astype(np.float16))
        log_depth.append(pooled_depth[:, 0].numpy().astype(np.float16))
        labels.append(inst.category.astype(np.int64))
    if not labels:
        raise InputError("no instances to crop", path=prepared)
    return ShapeCrops(np.concatenate(amodal), np.concatenate(visible), np.concatenate(log_depth),
                      np.concatenate(labels))
