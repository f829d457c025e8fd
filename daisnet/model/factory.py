"""The one place that builds a DAISnet to train: architecture, initial weights, shape prior."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daisnet.errors import InputError
from daisnet.model import checkpoint
from daisnet.model.config import ModelConfig
from daisnet.model.daisnet import DAISNet, build_daisnet

RgbStats = tuple[tuple[float, ...], tuple[float, ...]]


def build_model(config: ModelConfig, rgb_stats: RgbStats | None = None,
                shape_prior: tuple[str | Path, str | Path] | None = None) -> tuple[DAISNet, dict[str, Any]]:
    """DAISnet for `config`, with its initial weights, ready to train.

    `rgb_stats` (mean, std) normalize RGB (eq. 2; ImageNet's when None). `config.weights`: `random`,
    `imagenet` (the backbone's local file, loaded by the backbone) or a DAISnet checkpoint to start
    from. `shape_prior` = (shape autoencoder, codebook) files fill the shape-prior refiner when
    `config.shape_prior` is on (`daisnet.shape.codebook.configure_shape_prior` sized the config).
    Returns the model and what was loaded into it, for the checkpoint's metadata.
    """
    model = build_daisnet(config, **({"rgb_mean": rgb_stats[0], "rgb_std": rgb_stats[1]} if rgb_stats else {}))
    if config.weights not in ("random", "imagenet"):
        load_initial_weights(model, config.weights)
    loaded: dict[str, Any] = {}
    if config.shape_prior == "on":
        if shape_prior is None:
            raise InputError("model.shape_prior: on needs the shape autoencoder and the codebook "
                             "(stages shape_ae and codebook)")
        from daisnet.shape.codebook import load_shape_prior

        loaded["shape_prior"] = load_shape_prior(model, *shape_prior)
    return model, loaded


def load_initial_weights(model: DAISNet, path: str | Path) -> None:
    """Start from a DAISnet checkpoint; every weight but the shape prior's must be in it."""
    init = checkpoint.load(path)
    if not isinstance(init, dict) or not isinstance(init.get("model"), dict):
        kind = "a bare state dict (torchvision's, or another model's)" if isinstance(init, dict) else type(init).__name__
        raise InputError(f"model.weights must be a DAISnet checkpoint (data/models/daisnet.pt, with its `model` "
                         f"weights); this is {kind}. ImageNet backbones: model.weights: imagenet (docs/model.md)",
                         path=path)
    missing, _ = model.load_state_dict(init["model"], strict=False)
    # The shape-prior refiner is filled from its own files (build_model).
    real_missing = [k for k in missing if not k.endswith("num_batches_tracked")
                    and not k.startswith("roi_heads.amodal_refiners.")]
    if real_missing:
        raise InputError(f"initial weights lack {real_missing[0]} (and {len(real_missing) - 1} more)", path=path)
