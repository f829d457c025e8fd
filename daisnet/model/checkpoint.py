"""DAISnet checkpoints: plain state dicts and a metadata dict, loaded with `weights_only=True`
(daisnet/torch_files.py: a file carrying code is refused, another kind of checkpoint named)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from daisnet import torch_files
from daisnet.errors import InputError
from daisnet.model.config import ModelConfig


def config_to_meta(config: ModelConfig) -> dict[str, Any]:
    meta = asdict(config)
    meta.pop("extra", None)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}


# What a checkpoint that lacks one of these keys was trained with: the dataclass defaults before
# they became params.yaml's (a checkpoint records its whole config; older ones lack later keys).
BEFORE_THE_KEY: dict[str, Any] = {
    "inputs": ("rgb",), "fpn_channels": 256, "anchor_aspect_ratios": (0.5, 1.0, 2.0), "anchor_scales": (1.0,),
    "mask_head_width": 256, "representation_size": 1024, "box_batch_size_per_image": 512,
    "mask_batch_size_per_image": 0, "roi_sampling_ratio": 2,
    # The edge branch's forms before the paper's became the default (docs/model.md, "Edge branch forms").
    "edge_depth_pooling": "image", "occlusion_refinement": "residual",
    "edge_pos_weight": 1.0,  # eq. 25 as printed, before the weighted loss became the default (issue 33)
}


def config_from_meta(meta: dict[str, Any]) -> ModelConfig:
    fields = set(ModelConfig.__dataclass_fields__)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in meta.items() if k in fields}
    return ModelConfig(**{**BEFORE_THE_KEY, **values})


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a kill or a full disk during the write leaves the old file
    (or none), never a truncated one, and no temporary file behind."""
    torch_files.save(state, path)


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path)
    return torch_files.load(path)


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """A trained DAISnet from a checkpoint written by the train stage, in eval mode."""
    return model_from_checkpoint(load(path), path, device)


def model_from_checkpoint(state: dict[str, Any], path: str | Path, device: str | torch.device = "cpu"):
    """`load_model` of an already loaded checkpoint (`path` only names it in errors)."""
    from daisnet.model import build_daisnet

    torch_files.refuse_other_kind(state, torch_files.DAISNET_MODEL, path)
    meta = state.get("meta") if isinstance(state, dict) else None
    if not isinstance(meta, dict) or "model" not in state or "model_config" not in meta:
        raise InputError("not a DAISnet checkpoint (needs 'model' and 'meta.model_config')", path=path)
    config = config_from_meta(state["meta"]["model_config"])
    rgb_mean = state["meta"].get("rgb_mean")
    rgb_std = state["meta"].get("rgb_std")
    kwargs = {"rgb_mean": tuple(rgb_mean), "rgb_std": tuple(rgb_std)} if rgb_mean else {}
    model = build_daisnet(config, load_pretrained=False, **kwargs)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise InputError(f"weights do not fit the model described in its metadata ({str(exc)[:300]})",
                         path=path) from None
    # What its feature inputs were computed with: `check_features_fit` compares a features store to it.
    model.trained_features = state["meta"].get("features")
    return model.to(device).eval()


FEATURE_KEYS = ("log10_depth_mean", "log10_depth_std", "regional_mean", "regional_std")


def check_features_fit(model: torch.nn.Module, features: str | Path | None, model_path: str | Path) -> None:
    """A features store given to a model must be computed as its training features were: the same
    feature params (storage precision aside) and the same normalization statistics (the train
    split's). Another one would feed the network other numbers without a word."""
    trained = getattr(model, "trained_features", None)
    if features is None or not trained or not trained.get("params"):
        return
    import zarr

    attrs = dict(zarr.open_group(str(features), mode="r").attrs)
    # A model trained before a key existed was trained as that key's "off" (literal regional maps).
    ours = {"normalize_regional": False, **trained["params"]}
    theirs = {"normalize_regional": False, **(attrs.get("params") or {})}
    differ = sorted(k for k in set(ours) | set(theirs) if k != "precision" and ours.get(k) != theirs.get(k))
    differ += [k for k in FEATURE_KEYS if trained.get(k) != attrs.get(k) and not (trained.get(k) is None and k.startswith("regional"))]
    if differ:
        first = differ[0]
        mine = ours.get(first, trained.get(first))
        other = theirs.get(first, attrs.get(first))
        raise InputError(f"computed with other features than the model was trained on ({model_path}): "
                         f"{first} {other!r} here, {mine!r} in training" + (f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""),
                         path=features)
