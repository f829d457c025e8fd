"""The paper's ablation (Table 1): its rows as params overrides, and the profiles they run at.

Row names follow the paper: R = RGB, D = regional depth (eq. 4-5), DN = log depth without
regional normalization, N = normal-tangent map (NM, NL: 21- and 71-px kernels), D1 = one regional
map (Dm = 1), DS1 = step Ds = 1 m, O = occlusion-edge refinement (the paper's best setup, the
mask-head-like edge head), S / SV = 3D shape prior with all / visible-only depth; O* and S* are their
oracles (`model.oracle`: the ground-truth edge map, the ground-truth masks' codewords). Each row is one
`dvc exp run -S ...` with its overrides; `daisnet ablation` (daisnet/pipeline/study.py) runs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    name: str
    overrides: dict[str, str]
    weights: tuple[str, ...] = ("random", "imagenet")  # the Table 1 blocks the paper ran it in


def _inputs(*kinds: str) -> dict[str, str]:
    return {"model.inputs": "[" + ",".join(kinds) + "]"}


# The paper's O: its edge loss as eq. 25 prints it (unweighted), as every committed O run was measured.
O = {"model.occlusion_edge": "mask_head", "model.edge_pos_weight": "1"}
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
    Row("R+DS1", {**_inputs("rgb", "depth"), "features.regional.step": "1.0"}, weights=("imagenet",)),
    Row("R+D+N", _inputs("rgb", "depth", "normal")),
    Row("R+DN+N", _inputs("rgb", "depth_raw", "normal"), weights=()),  # the pipeline's default (not in Table 1)
    Row("R+O", {**_inputs("rgb"), **O}),
    Row("R+D+O", {**_inputs("rgb", "depth"), **O}),
    Row("R+S", {**_inputs("rgb"), "model.shape_prior": "on", "shape_prior.depth": "all"}, weights=("imagenet",)),
    Row("R+SV", {**_inputs("rgb"), "model.shape_prior": "on", "shape_prior.depth": "visible"}, weights=("imagenet",)),
    Row("R+D+N+O", {**_inputs("rgb", "depth", "normal"), **O}),
    # R+O with the edge pixels weighted by 1 / their share of RoI pixels (~4%; docs/model.md): issue 33's point 4.
    Row("R+OW", {**O, **_inputs("rgb"), "model.edge_pos_weight": "24"}, weights=()),
    # Upper bounds, not in Table 1 (docs/ablation.md, "Oracle rows"): a learned part fed its ground truth.
    Row("R+O*", {**_inputs("rgb"), **O, "model.oracle": "edge"}, weights=()),
    Row("R+S*", {**_inputs("rgb"), "model.shape_prior": "on", "shape_prior.depth": "all", "model.oracle": "shape"},
        weights=()),
)
ROW_BY_NAME = {row.name: row for row in ROWS}
# Rows whose runs (ground-truth depth) the study also evaluates with their ground-truth amodal masks,
# the mask ceiling (docs/ablation.md): R and the rows of the edge and the prior, which the report sets
# against it. Two more evaluations a run (~2 minutes here), so not for every row.
MASK_CEILING_ROWS = ("R", "R+O", "R+OW", "R+O*", "R+S", "R+S*")

# Parameter overrides of each profile (docs/profiles.md), as `dvc exp run -S` takes them.
PROFILES: dict[str, dict[str, str]] = {
    "smoke": {"train.iterations": "30", "train.checkpoint_every": "30"},  # checks the machinery, ranks nothing
    "small": {"train.iterations": "120", "train.checkpoint_every": "60"},
    "default": {},
    # The study on a 2-core CPU (docs/ablation.md): ~7 minutes a run (train + evaluate), R above 10 AP.
    "ablation": {"train.iterations": "1000", "train.checkpoint_every": "100"},
    # Longer schedules as curves (issue 33): 3000 iterations, the model kept at 1000 and 2000 and
    # evaluated too, so each run records AP against iterations (~30 minutes a run on 2 cores).
    "long": {"train.iterations": "3000", "train.checkpoint_every": "100", "train.snapshot_every": "1000"},
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
              # eq. 25 unweighted: at long schedules the paper's edge loss learns and beats the weighted one
              # (R+O against R+OW at 3000 iterations, docs/model.md); 24 only pays in short runs
              "model.edge_pos_weight": "1",
              "shape_prior.clusters": "1024"},
}
