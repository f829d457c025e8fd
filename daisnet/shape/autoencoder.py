"""Training, evaluation and checkpoint of the shape autoencoder (stage `shape_ae`, §3.8 Fig. 12).

Trained on the ground-truth crops of the train split, each batch under random flips and rotations
(the codebook holds those copies, so the autoencoder must reconstruct them too). Adam with a cosine
decay; deterministic on CPU for a given seed. The checkpoint is a plain state dict plus metadata
(architecture constants, depth mode, metrics), loaded with `weights_only=True`; its sha256 is what
the codebook records as "built from".
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from daisnet import torch_files
from daisnet.errors import InputError
from daisnet.progress import track
from daisnet.model.shape_prior import (
    AE_WIDTH,
    CODE_DIM,
    CROP,
    DEPTH_MODES,
    DEPTH_SCALE,
    ShapeAutoencoder,
    reconstruction_loss,
)
from daisnet.shape.crops import DIHEDRAL, ShapeCrops, dihedral

# What the model and the codebook rely on: a checkpoint with other values is refused.
ARCHITECTURE = {"crop": CROP, "code_dim": CODE_DIM, "width": AE_WIDTH, "depth_scale": DEPTH_SCALE}


@dataclass(frozen=True)
class AETrainConfig:
    depth: str = "all"  # all | visible | none
    iterations: int = 600
    batch_size: int = 64
    lr: float = 0.005
    seed: int = 0

    def validate(self) -> None:
        if self.depth not in DEPTH_MODES:
            raise InputError(f"shape_prior.depth {self.depth!r}: choose from {list(DEPTH_MODES)}", path="params.yaml")
        if self.iterations < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError("shape_prior.iterations and batch_size must be >= 1, lr > 0", path="params.yaml")


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each crop of (B, C, S, S) under its own random element of D4."""
    choice = torch.randint(len(DIHEDRAL), (x.shape[0],), generator=generator)
    out = torch.empty_like(x)
    for index in range(len(DIHEDRAL)):
        rows = torch.nonzero(choice == index).flatten()
        if rows.numel():
            out[rows] = dihedral(x[rows], index)
    return out


@torch.no_grad()
def reconstruction_metrics(model: ShapeAutoencoder, inputs: torch.Tensor, batch: int = 1024) -> dict[str, float]:
    """Mask IoU of the reconstructions (threshold 0.5 on both sides) and depth error, over crops.

    `iou`: mean of per-crop IoU (small and large objects weigh the same); `iou_pooled`: total
    intersection / total union; `depth_mae`: mean absolute error of the normalized depth channel.
    """
    model.eval()
    ious, inter_total, union_total, depth_err = [], 0.0, 0.0, []
    for start in range(0, inputs.shape[0], batch):
        x = inputs[start:start + batch]
        out = model(x)
        pred = out[:, 0] > 0
        target = x[:, 0] >= 0.5
        inter = (pred & target).flatten(1).sum(1).double()
        union = (pred | target).flatten(1).sum(1).double()
        ious.append(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)))
        inter_total += float(inter.sum())
        union_total += float(union.sum())
        if out.shape[1] > 1:
            depth_err.append((out[:, 1:] - x[:, 1:]).abs().flatten(1).mean(1))
    metrics = {"iou": float(torch.cat(ious).mean()), "iou_pooled": inter_total / max(union_total, 1.0)}
    if depth_err:
        metrics["depth_mae"] = float(torch.cat(depth_err).mean())
    return metrics


def train_autoencoder(train: ShapeCrops, config: AETrainConfig, progress: bool | None = None,
                      ) -> tuple[ShapeAutoencoder, dict[str, float]]:
    """Train on `train`'s crops under random D4 copies; returns the model and training figures.

    One torch thread: the network is tiny, and two threads made a step 4x slower on the shared
    2-core machine (OpenMP spin-waits while other jobs hold the cores).
    """
    config.validate()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(train, config, progress)
    finally:
        torch.set_num_threads(previous)


def _train(train: ShapeCrops, config: AETrainConfig, progress: bool | None) -> tuple[ShapeAutoencoder, dict[str, float]]:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    inputs = train.inputs(config.depth)
    model = ShapeAutoencoder(config.depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    show = sys.stderr.isatty() if progress is None else progress
    begin = time.perf_counter()
    model.train()
    loss = torch.zeros(())
    for step in track(range(config.iterations), "shape autoencoder", bar=show):
        lr = config.lr * 0.5 * (1 + math.cos(math.pi * step / config.iterations))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(inputs.shape[0], (config.batch_size,), generator=generator)
        x = random_dihedral(inputs[rows], generator)
        loss = reconstruction_loss(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval(), {"seconds": time.perf_counter() - begin, "final_loss": float(loss.detach())}


def save_autoencoder(path: str | Path, model: ShapeAutoencoder, meta: dict[str, Any]) -> None:
    """Write the checkpoint atomically: `{"model": state_dict, "meta": {...}}`."""
    meta = {**meta, **ARCHITECTURE, "depth": model.depth_mode}
    torch_files.save({"model": model.state_dict(), "meta": meta}, path)


def load_autoencoder(path: str | Path) -> tuple[ShapeAutoencoder, dict[str, Any]]:
    """The autoencoder of a `shape_ae` checkpoint (eval mode) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise InputError("shape autoencoder not found (run `dvc repro shape_ae` or `daisnet shape-ae`)", path=path)
    state = torch_files.load(path)
    torch_files.refuse_other_kind(state, torch_files.SHAPE_AE, path)
    meta = state.get("meta", {}) if isinstance(state, dict) else {}
    if "model" not in state or meta.get("depth") not in DEPTH_MODES:
        raise InputError("not a shape autoencoder checkpoint (needs 'model' and 'meta.depth')", path=path)
    other = {k: (meta.get(k), v) for k, v in ARCHITECTURE.items() if meta.get(k) != v}
    if other:
        raise InputError(f"built with other architecture constants {other} (stored, expected): rebuild it", path=path)
    model = ShapeAutoencoder(meta["depth"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise InputError(f"weights do not fit the shape autoencoder ({str(exc)[:200]})", path=path) from None
    return model.eval(), meta


def config_meta(config: AETrainConfig) -> dict[str, Any]:
    return asdict(config)


def sample_rows(count: int, limit: int, seed: int) -> np.ndarray:
    """Up to `limit` of `count` rows, evenly spread and sorted (a deterministic subset)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))
