"""The paper's ablation (Table 1) as named DVC experiments: one `dvc exp run -S ...` per row.

Row names follow the paper: R = RGB, D = regional depth (eq. 4-5), DN = log depth without
regional normalization, N = normal-tangent map (NM, NL: 21- and 71-px kernels), D1 = one regional
map (Dm = 1), S1 = step Ds = 1 m, O = occlusion-edge refinement (the paper's best setup, the
mask-head-like edge head), S / SV = 3D shape prior with all / visible-only depth.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from daisnet.errors import InputError
from daisnet.model.config import SHAPE_PRIOR_AVAILABLE


@dataclass(frozen=True)
class Row:
    name: str
    overrides: dict[str, str]
    needs: tuple[str, ...] = ()  # components that must exist before the row can run
    weights: tuple[str, ...] = ("random", "imagenet")


def _inputs(*kinds: str) -> dict[str, str]:
    return {"model.inputs": "[" + ",".join(kinds) + "]"}


O = {"model.occlusion_edge": "mask_head"}
ROWS: tuple[Row, ...] = (
    Row("R", _inputs("rgb")),
    Row("R+D", _inputs("rgb", "depth")),
    Row("R+DN", _inputs("rgb", "depth_raw")),
    Row("D", _inputs("depth"), weights=("random",)),
    Row("D+N", _inputs("depth", "normal"), weights=("random",)),
    Row("N", _inputs("normal"), weights=("random",)),
    Row("R+N", _inputs("rgb", "normal")),
    Row("R+NM", {**_inputs("rgb", "normal"), "features.normals.kernel": "21"}, weights=("imagenet",)),
    Row("R+NL", {**_inputs("rgb", "normal"), "features.normals.kernel": "71"}, weights=("imagenet",)),
    Row("R+D1", {**_inputs("rgb", "depth"), "features.regional.offsets": "1"}, weights=("imagenet",)),
    Row("R+S1", {**_inputs("rgb", "depth"), "features.regional.step": "1.0"}, weights=("imagenet",)),
    Row("R+D+N", _inputs("rgb", "depth", "normal")),
    Row("R+O", {**_inputs("rgb"), **O}),
    Row("R+D+O", {**_inputs("rgb", "depth"), **O}),
    Row("R+S", {**_inputs("rgb"), "model.shape_prior": "on", "shape_prior.depth": "all"}, needs=("shape_prior",),
        weights=("imagenet",)),
    Row("R+SV", {**_inputs("rgb"), "model.shape_prior": "on", "shape_prior.depth": "visible"}, needs=("shape_prior",),
        weights=("imagenet",)),
    Row("R+D+N+O", {**_inputs("rgb", "depth", "normal"), **O}),
)
ROW_BY_NAME = {row.name: row for row in ROWS}

# Small profile: enough training to rank rows on the CPU; preprocessing is shared (no synth change).
PROFILES: dict[str, dict[str, str]] = {
    "smoke": {"train.iterations": "30", "train.checkpoint_every": "30"},  # checks the machinery, ranks nothing
    "small": {"train.iterations": "120", "train.checkpoint_every": "60"},
    "default": {},
    # One GPU, about an hour (docs/profiles.md): ResNet-50 at KINS size on 4000 synthetic images, bf16.
    "gpu": {"synth.height": "375", "synth.width": "1242", "synth.train_images": "4000", "synth.val_images": "500",
            "synth.workers": "16", "rasterize.workers": "16", "features.workers": "16",
            "model.backbone_depth": "50", "model.min_size": "375", "model.max_size": "1242",
            "model.fpn_channels": "256", "train.batch_size": "8", "train.lr": "0.002", "train.iterations": "5000",
            "train.warmup_iters": "500", "train.amp": "bf16", "train.num_workers": "8",
            "train.checkpoint_every": "500", "train.device": "auto", "evaluate.batch_size": "8",
            "evaluate.device": "auto"},
    "paper": {"model.backbone_depth": "50", "train.iterations": "47979", "train.lr": "0.0025",
              "train.batch_size": "1", "train.warmup_iters": "15000", "model.min_size": "800",
              "model.max_size": "3000", "model.anchor_sizes": "[32,64,128,256,512]",
              "model.anchor_aspect_ratios": "[0.5,1.0,2.0]", "model.anchor_scales": "[1.0]",
              "model.representation_size": "1024", "model.mask_head_width": "256",
              "model.box_batch_size_per_image": "512", "model.mask_batch_size_per_image": "0",
              "model.fpn_channels": "256", "model.roi_sampling_ratio": "2", "synth.focal": "null",
              "train.decay_milestones": "[0.67,0.89]", "train.optimizer": "sgd", "train.momentum": "0.9",
              "train.weight_decay": "0.0001", "train.decay_norm_and_bias": "true", "train.decay": "step",
              "model.class_agnostic_masks": "false",
              "shape_prior.clusters": "1024"},
}


def available(row: Row) -> tuple[bool, str]:
    if "shape_prior" in row.needs and not SHAPE_PRIOR_AVAILABLE:
        return False, "waits for the shape prior (shape_ae and codebook stages)"
    return True, ""


def experiment_name(row: Row, weights: str) -> str:
    return f"{weights}-{row.name.replace('+', '-')}"


def commands(rows: list[str], weights: str, profile: str) -> tuple[list[list[str]], list[str]]:
    """The `dvc exp run --queue` command of each runnable row, and notes on the rows left out."""
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r}: choose from {sorted(PROFILES)}")
    if weights not in ("random", "imagenet"):
        raise InputError(f"weights must be random or imagenet, not {weights!r}")
    unknown = [r for r in rows if r not in ROW_BY_NAME]
    if unknown:
        raise InputError(f"unknown rows {unknown}: choose from {[r.name for r in ROWS]}")
    queued, notes = [], []
    for name in rows:
        row = ROW_BY_NAME[name]
        ok, why = available(row)
        if weights not in row.weights:
            notes.append(f"{name}: the paper ran it with {'/'.join(row.weights)} weights only; queued anyway")
        if not ok:
            notes.append(f"{name}: not run, {why}")
            continue
        overrides = {"model.weights": weights, **PROFILES[profile], **row.overrides}
        command = ["dvc", "exp", "run", "--queue", "-n", experiment_name(row, weights)]
        for key, value in overrides.items():
            command += ["-S", f"{key}={value}"]
        queued.append(command)
    return queued, notes


def run(rows: list[str], weights: str, profile: str, execute: bool = True, jobs: int = 1) -> list[str]:
    """Queue the rows and run the queue; returns the commands (for printing)."""
    queued, notes = commands(rows, weights, profile)
    printed = notes + [shlex.join(c) for c in queued]
    if not execute:
        return printed
    for command in queued:
        subprocess.run(command, check=True)
    subprocess.run(["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)], check=True)
    return printed
