"""The params schema (daisnet/params.py): strict types, ranges, unknown keys, the file's real name.

Each case is one line: (dotted key, value or DELETE, words the one-line message must hold). The
message must also name the params file the user gave, not params.yaml.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from daisnet.errors import InputError
from daisnet.params import SCHEMA_DEFAULTS, Params, load_params, read_yaml, validate

ROOT = Path(__file__).resolve().parents[1]
DELETE = object()
RAW = read_yaml(ROOT / "params.yaml")

CASES = [
    # quoted booleans and numbers are errors, not truth values (issue 20, case 5)
    ("model.class_agnostic_masks", "false", r"model\.class_agnostic_masks: .*boolean.*'false' \(remove the quotes\)"),
    ("features.normals.normalize_kernel", "no", r"features\.normals\.normalize_kernel: .*boolean"),
    ("train.decay_norm_and_bias", "no", r"train\.decay_norm_and_bias: .*boolean"),
    ("train.iterations", "4", r"train\.iterations: .*integer.*'4' \(remove the quotes\)"),
    ("train.crop_width", "320", r"train\.crop_width"),
    # unknown keys at every level, with a did-you-mean for near misses
    ("trian", {"iterations": 1}, r"unknown key trian \(did you mean train\?\)"),
    ("features.bogus", 1, r"unknown key features\.bogus$"),
    ("features.regional.offset", 1, r"unknown key features\.regional\.offset \(did you mean features\.regional\.offsets\?\)"),
    ("depth.train.iteratons", 5, r"unknown key depth\.train\.iteratons \(did you mean depth\.train\.iterations\?\)"),
    ("synth.train_imgs", 3, r"unknown key synth\.train_imgs"),
    # missing keys: a key that changes a result has no default but params.yaml's
    ("train.lr", DELETE, r"missing key train\.lr"),
    ("depth.train", DELETE, r"missing key depth\.train"),
    # mistyped and out-of-range values (issue 20, weak list)
    ("train.lr", float("nan"), r"train\.lr: .*finite"),
    ("model.anchor_sizes", [], r"model\.anchor_sizes: .*at least 1"),
    ("train.checkpoint_every", 0, r"train\.checkpoint_every: .*greater than or equal to 1"),
    ("augment.flip", 2.0, r"augment\.flip: .*less than or equal to 1"),
    ("train.decay_milestones", [1.5], r"train\.decay_milestones: must be increasing fractions"),
    ("train.grad_clip", -1, r"train\.grad_clip: .*greater than or equal to 0"),
    ("train.crop_width", 16, r"train\.crop_width: .*greater than or equal to 32"),
    ("train.optimizer", "adam", r"train\.optimizer: .*'adamw' or 'sgd'"),
    ("train.decay", "linear", r"train\.decay: .*'cosine' or 'step'"),
    ("train.processes", 0, r"train\.processes"),
    ("model.inputs", ["rgb", "lidar"], r"model\.inputs\.1: .*'rgb', 'depth', 'depth_raw' or 'normal'"),
    ("model.rpn_pre_nms_top_n", 1000, r"model\.rpn_pre_nms_top_n: .*list"),
    ("model.box_positive_fraction", "half", r"model\.box_positive_fraction"),
    ("model.backbone_depth", 19, r"model\.backbone_depth"),
    ("features.normals.kernel", 4, r"features\.normals\.kernel: must be odd"),
    ("features.normals.dz", 0, r"features\.normals\.dz: .*greater than 0"),
    ("features.regional.floor", "round", r"features\.regional\.floor: .*'soft' or 'hard'"),
    ("depth.train.input_scale", 2.0, r"depth\.train\.input_scale"),
    ("depth.train.warmup", -1, r"depth\.train\.warmup"),
    ("depth.train.plane_min_denominator", 2.0, r"depth\.train\.plane_min_denominator"),
    ("synth.height", 10, r"synth\.height"),
    ("synth.train_images", -1, r"synth\.train_images"),
    ("synth.fill_label_holes", "yes", r"synth\.fill_label_holes: .*boolean"),
    ("synth.scene.street_vehicles", [3, 2], r"synth\.scene\.street_vehicles: must be \[low, high\]"),
    ("rasterize.workers", -1, r"rasterize\.workers"),
    ("seed", "0", r"seed: .*integer"),
]


def with_value(dotted: str, value: object) -> dict:
    raw = copy.deepcopy(RAW)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})  # a section left to the schema (synth.scene)
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize("dotted, value, words", CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CASES])
def test_a_bad_value_is_one_line_naming_the_file_and_the_key(tmp_path: Path, dotted: str, value: object,
                                                             words: str) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(with_value(dotted, value)))
    with pytest.raises(InputError) as info:
        load_params(path)
    message = info.value.message()
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert __import__("re").search(words, message), message


def test_the_committed_params_file_is_valid_and_typed() -> None:
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params.model.class_agnostic_masks, bool) and params.train.crop_width is None
    assert params.model.occlusion_edge == "off"


def test_yaml_booleans_for_off_and_on_are_understood() -> None:
    # YAML 1.1 and `dvc exp run -S model.occlusion_edge=off` give a bare off/on as a boolean.
    raw = with_value("model.occlusion_edge", False)
    raw["model"]["shape_prior"] = True
    params = validate(raw)
    assert params.model.occlusion_edge == "off" and params.model.shape_prior == "on"


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    assert load_params(ROOT / "params.yaml", {"train.iterations": 7, "seed": None}).train.iterations == 7
    with pytest.raises(InputError, match=r"params\.yaml with the command line's train\.iterations: train\.iterations: "
                                         r".*greater than or equal to 1"):
        load_params(ROOT / "params.yaml", {"train.iterations": 0})


def test_unreadable_params_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("train: [1,\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    for name, words in (("missing.yaml", "params file not found"), ("bad.yaml", "not valid YAML"),
                        ("list.yaml", "mapping of sections")):
        with pytest.raises(InputError, match=words) as info:
            load_params(tmp_path / name)
        assert str(tmp_path / name) in info.value.message()


# The library's dataclasses and the params sections they are built from: (dataclass, section,
# {field: params key} where the names differ). No dataclass default may disagree with params.yaml.
def _sections():
    from daisnet.data.rasterize import RasterizeConfig
    from daisnet.data.synth.dataset import SynthConfig
    from daisnet.data.synth.scene import SceneConfig
    from daisnet.data.torch_dataset import AugmentConfig
    from daisnet.depth.train import DepthTrainConfig
    from daisnet.features.store import FeatureParams
    from daisnet.model.config import ModelConfig
    from daisnet.shape.autoencoder import AETrainConfig
    from daisnet.shape.codebook import CodebookConfig
    from daisnet.train.loop import TrainConfig

    p = load_params(ROOT / "params.yaml").model_dump()  # with the schema's defaults (SCHEMA_DEFAULTS)
    features = {**p["features"]["regional"], **p["features"]["normals"], "precision": p["features"]["precision"],
                "normalize_regional": p["features"]["regional"]["normalize"]}
    shape = p["shape_prior"]
    return [
        (SynthConfig, {**p["synth"], "seed": p["seed"]}),
        (SceneConfig, p["synth"]["scene"]),
        (RasterizeConfig, p["rasterize"]),
        (DepthTrainConfig, {**p["depth"]["train"], "encoder": p["depth"]["encoder"],
                            "max_depth": p["depth"]["max_depth"], "seed": p["seed"]}),
        (FeatureParams, features),
        (ModelConfig, {**p["model"], "regional_channels": p["features"]["regional"]["offsets"],
                       "shape_prior_depth": shape["depth"], "shape_prior_k": shape["top_k"],
                       "shape_prior_width": shape["fusion_width"]}),
        (AETrainConfig, {key: shape[key] for key in ("depth", "iterations", "batch_size", "lr")} | {"seed": p["seed"]}),
        (CodebookConfig, {key: shape[key] for key in ("clusters", "copies", "kmeans_iterations")} | {"seed": p["seed"]}),
        (TrainConfig, {**p["train"], "seed": p["seed"]}),
        (AugmentConfig, p["augment"]),
    ]


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def test_no_dataclass_default_disagrees_with_params_yaml() -> None:
    disagree = []
    for cls, values in _sections():
        for f in dataclasses.fields(cls):
            if f.name not in values or dataclasses.is_dataclass(_default(f)):
                continue
            default, value = _default(f), values[f.name]
            if default is dataclasses.MISSING:
                continue
            if isinstance(value, list):
                value = tuple(value)
            if default != value or type(default) is not type(value) and not isinstance(default, float):
                disagree.append(f"{cls.__name__}.{f.name} = {default!r}, params.yaml: {value!r}")
    assert disagree == []


def test_the_schema_knows_every_key_of_params_yaml_and_nothing_else() -> None:
    def keys(model: type, prefix: str = "") -> set[str]:
        found = set()
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Params.__mro__[1]):
                found |= keys(annotation, f"{prefix}{name}.")
            else:
                found.add(prefix + name)
        return found

    def yaml_keys(node: dict, prefix: str = "") -> set[str]:
        found = set()
        for key, value in node.items():
            found |= yaml_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return found

    schema = keys(Params)
    assert yaml_keys(RAW) <= schema
    # Every key params.yaml leaves out is a documented schema default (an execution setting or the scene)
    assert {key for key in schema - yaml_keys(RAW)
            if not any(key == d or key.startswith(d + ".") for d in SCHEMA_DEFAULTS)} == set()


def test_a_schema_default_is_set_like_any_key(tmp_path: Path) -> None:
    """A key left to the schema (the scene, an execution setting) is read from params.yaml when given there."""
    raw = copy.deepcopy(RAW)
    raw["synth"]["scene"] = {"line_of_sight": 0.5}
    raw["evaluate"]["samples"] = 0
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    loaded = load_params(path)
    assert loaded.synth.scene.line_of_sight == 0.5 and loaded.synth.scene.street_fraction == 0.5
    assert loaded.evaluate.samples == 0
    assert load_params(ROOT / "params.yaml", {"synth.scene.cyclist_fraction": 0.5}).synth.scene.cyclist_fraction == 0.5

