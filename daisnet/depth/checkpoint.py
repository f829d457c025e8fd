"""Loading and saving BTS checkpoints: the official release's files as they are, and ours.

Official files (cleinc/bts) are `{'global_step', 'model': state_dict, 'optimizer'}` saved from
`DataParallel`, so every key starts with `module.`; they may hold numpy scalars. Ours are
`{"model": state_dict, "meta": {"bts": BtsConfig fields, ...plain values}}`.

Safety: files are read with `torch.load(weights_only=True)` (daisnet/torch_files.py), which
unpickles only tensors and plain containers; numpy scalars and dtypes are the only extra globals
allowed (the official files need them). A file carrying any other object is refused, never
executed. Another checkpoint of this project (a DAISnet model, a shape autoencoder) is named as
what it is, not taken for an official file.

A file that does not fit the model is refused with one line naming the file, the encoder expected,
the first mismatching key and both shapes (and the encoder the file looks like, when recognizable),
instead of torch's multi-page `load_state_dict` report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from daisnet import torch_files
from daisnet.depth.bts import BtsConfig, BtsModel
from daisnet.errors import InputError
from daisnet.hashing import sha256_file

FORMAT_OURS = "daisnet-bts-1"
# Keys a checkpoint may carry that no model here has, dropped silently: a classifier the depth
# network never runs (a release built on a full torchvision model with its fc).
_IGNORABLE_PREFIXES = ("encoder.base_model.fc.", "encoder.base_model.classifier.")
# A parameter only that encoder has (checked in this order: ResNet-50 also has ResNet-34's
# layer3.5, every ResNet has ResNet-18's layer4.1), to say which encoder a wrong file was made for.
_SIGNATURES = {
    "densenet161_bts": "encoder.base_model.denseblock4.denselayer24.conv2.weight",
    "resnet50_bts": "encoder.base_model.layer4.2.conv3.weight",
    "resnet34_bts": "encoder.base_model.layer3.5.conv2.weight",
    "resnet18_bts": "encoder.base_model.layer4.1.conv2.weight",
}


def _numpy_safe_globals() -> list[Any]:
    """numpy scalars, arrays and dtypes, under both numpy 1 (`numpy.core`) and 2 (`numpy._core`) names.

    The release's trainer saves numpy scalars (`global_step`) and, in its best-model branch, numpy
    arrays (`best_eval_steps`). Rebuilding an array needs `_reconstruct` and `ndarray`; an array of
    Python objects would need those objects' globals too, which stay refused: nothing executable loads.
    """
    core = np._core if hasattr(np, "_core") else np.core  # type: ignore[attr-defined]
    scalar, reconstruct = core.multiarray.scalar, core.multiarray._reconstruct
    allowed: list[Any] = [np.dtype, np.ndarray]
    for module in ("numpy.core", "numpy._core"):
        allowed += [(scalar, f"{module}.multiarray.scalar"), (reconstruct, f"{module}.multiarray._reconstruct")]
    for code in ("b", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "?"):
        allowed.append(type(np.dtype(code)))  # numpy >= 1.25 pickles dtypes by their class
    return allowed


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """torch.load with weights_only=True and the numpy allow-list; every failure is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError("BTS checkpoint not found (official files: put them at this path; "
                         "or train one with `dvc repro train_depth`)", path=path)
    obj = torch_files.load(path, _numpy_safe_globals())
    torch_files.refuse_other_kind(obj, torch_files.BTS_DEPTH, path)
    if not isinstance(obj, dict):
        raise InputError(f"expected a dict with a 'model' state dict, found {type(obj).__name__}", path=path)
    return obj


def _state_dict_of(obj: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint, `module.` prefixes (DataParallel) removed."""
    sd = obj.get("model", obj)  # a bare state dict is accepted too
    if not isinstance(sd, Mapping):
        raise InputError(f"'model' is a {type(sd).__name__}, not a state dict", path=path)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if not isinstance(key, str):
            raise InputError(f"state dict key {key!r} is not a string", path=path)
        if not isinstance(value, torch.Tensor):
            raise InputError(f"state dict entry {key} is a {type(value).__name__}, not a tensor", path=path)
        out[key.removeprefix("module.")] = value
    if not out:
        raise InputError("the state dict is empty", path=path)
    return out


def _guess_encoder(keys: set[str]) -> str | None:
    return next((name for name, key in _SIGNATURES.items() if key in keys), None)


def check_state_dict(model: BtsModel, sd: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Keys, shapes and kinds (float vs integer) must match the model exactly; returns the dict to load."""
    expected = model.state_dict()
    sd = {k: v for k, v in sd.items() if k in expected or not k.startswith(_IGNORABLE_PREFIXES)}
    enc = model.config.encoder
    looks = _guess_encoder(set(sd))
    hint = f" (the file looks like {looks})" if looks and looks != enc else ""
    for key, ref in expected.items():
        if key not in sd:
            raise InputError(f"does not fit encoder {enc}: first mismatching key {key}: model {tuple(ref.shape)}, "
                             f"file: missing{hint}", path=path)
        got = sd[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise InputError(f"does not fit encoder {enc}: first mismatching key {key}: model {tuple(ref.shape)}, "
                             f"file {tuple(got.shape)}{hint}", path=path)
        if got.is_floating_point() != ref.is_floating_point():
            raise InputError(f"does not fit encoder {enc}: key {key} has dtype {got.dtype}, model {ref.dtype}",
                             path=path)
    extra = [k for k in sd if k not in expected]
    if extra:
        raise InputError(f"does not fit encoder {enc}: unexpected key {extra[0]} ({len(extra)} in all){hint}",
                         path=path)
    return sd


def load_bts(
    path: str | os.PathLike,
    config: BtsConfig | None = None,
) -> tuple[BtsModel, dict[str, Any]]:
    """Build the network and load a checkpoint (ours or official) into it, on CPU, in eval mode.

    `config` says what the caller expects (params `depth.*`). For our checkpoints, the stored
    configuration is used; an explicit `config` whose encoder differs is an error. Official files
    carry no configuration: `config` is required (encoder, max_depth, focal_reference: the release's
    KITTI models use 80 m and 715.0873 px).
    Returns the model and metadata (the stored `meta`, plus `sha256` and `format`).
    """
    path = Path(path)
    obj = read_checkpoint(path)
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else None
    if meta is not None and isinstance(meta.get("bts"), dict):
        try:
            stored = BtsConfig(**meta["bts"])
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad 'meta.bts' ({exc})", path=path) from None
        if config is not None and config.encoder != stored.encoder:
            raise InputError(f"expected encoder {config.encoder}, the checkpoint was trained with {stored.encoder}",
                             path=path)
        config, fmt = stored, FORMAT_OURS
    else:
        if config is None:
            raise InputError("an official BTS file carries no configuration: give the encoder "
                             "(params depth.encoder)", path=path)
        fmt = "official"
        meta = {k: v for k, v in obj.items() if k in ("global_step",)}
    model = BtsModel(config)
    sd = check_state_dict(model, _state_dict_of(obj, path), path)
    model.load_state_dict(sd, strict=True)
    model.eval()
    info = {**_plain(meta), "format": fmt, "sha256": sha256_file(path), "path": str(path), "bts": config.to_dict()}
    return model, info


def _plain(meta: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars -> Python numbers, so metadata can go into JSON and Zarr attrs."""
    out = {}
    for k, v in meta.items():
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def save_bts(path: str | os.PathLike, model: BtsModel, meta: dict[str, Any] | None = None) -> None:
    """Our format, written atomically: plain state dict + metadata of plain values."""
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": {"format": FORMAT_OURS, "bts": model.config.to_dict(), **(meta or {})},
    }
    torch_files.save(payload, path)
