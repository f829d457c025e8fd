"""The params file's schema: one pydantic model per section, one loader, one-line errors.

params.yaml holds every knob that changes a result, and those keys are required here (no default
in the schema). Two kinds of setting have their default here instead, so that `dvc exp show` stays
readable (each key of params.yaml is one of its columns; docs/metrics.md): the execution settings,
which never change a result (worker counts, memory bounds, log and resume-point cadence, sample
images), and the synthetic scene's distribution (`synth.scene`, eq. 1 of §3.2), a constant of the
dataset like KINS's annotation files. `SCHEMA_DEFAULTS` lists them; params.yaml may set any of them
(`dvc exp run -S '+synth.scene.line_of_sight=0.5'`). The library's dataclasses are built from these
sections by the stages. Values are strict:
a quoted boolean or number is an error, not a truth value; a key the schema does not know is an
error at every level, with a "did you mean" for a near miss; every message names the file the
user gave (`--params other.yaml`) and the dotted key.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from daisnet.errors import InputError

# Constrained scalars. Strict mode refuses "4" for an int and "false" for a bool; a float field
# still takes an int (YAML's `1` for 1.0). NaN and infinities are refused by `allow_inf_nan`.
Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Real = Annotated[float, Field(allow_inf_nan=False)]


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError(f"must be [low, high] with low <= high, got {pair}")
    return pair


def _off_on(value: Any) -> Any:
    # YAML 1.1 (and `dvc exp run -S model.occlusion_edge=off`) reads a bare off/on as a boolean.
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


CountRange = Annotated[list[NonNegative], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
DistanceRange = Annotated[list[Positive], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
TrainTest = Annotated[list[Count], Field(min_length=2, max_length=2)]  # [training, testing]


# The keys whose default is in this schema, not in params.yaml (see the module docstring).
SCHEMA_DEFAULTS = frozenset({
    "synth.workers", "synth.scene", "rasterize.workers", "rasterize.batch_images", "rasterize.batch_instances",
    "features.workers", "train.checkpoint_every", "train.snapshot_every", "train.log_every", "train.num_workers", "evaluate.batch_size",
    "evaluate.samples",
})


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Data(Section):
    dataset: Literal["synth", "kins"]


class Scene(Section):
    """The synthetic scene's distribution (§3.2, eq. 1): defaults here, not in params.yaml."""

    street_fraction: Fraction = 0.5  # street scenario vs open road
    street_vehicles: CountRange = [2, 3]  # eq. 1: Vn = r(2, 3)
    street_pedestrians_per_vehicle: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 3.0  # §3.2: about 1:3
    openroad_vehicles: CountRange = [6, 12]
    openroad_pedestrians: CountRange = [0, 2]
    cyclist_fraction: Fraction = 0.25
    vehicle_distance: DistanceRange = [10.0, 50.0]  # eq. 1: z + r(10, 50)
    vehicle_x: Annotated[list[Real], Field(min_length=2, max_length=2), AfterValidator(_ordered)] = [-10.0, 10.0]  # eq. 1
    street_half_width: Annotated[float, Field(ge=2.5, le=100, allow_inf_nan=False)] = 11.2  # m, kerb to centre
    openroad_half_width: Annotated[float, Field(ge=2.5, le=100, allow_inf_nan=False)] = 12.0
    pedestrian_distance: DistanceRange = [5.0, 40.0]
    line_of_sight: Fraction = 0.7  # share of objects placed behind/in front of another
    line_of_sight_gap: DistanceRange = [3.0, 12.0]


class Synth(Section):
    train_images: Count
    val_images: Count
    height: Annotated[int, Field(ge=64, le=4096)]
    width: Annotated[int, Field(ge=128, le=4096)]
    max_depth: Annotated[float, Field(gt=0, le=255, allow_inf_nan=False)]  # uint16 PNG: metres x 256
    min_visible_area: Count
    focal: Positive | None
    workers: Count = 2  # rendering processes (execution)
    fill_label_holes: bool
    cast_shadows: bool
    scene: Scene = Scene()


class Rasterize(Section):
    workers: NonNegative = 2  # Dask worker processes; 0 = in the stage's process (execution)
    images_per_shard: Count
    instances_per_shard: Count
    batch_images: Count = 16  # images a worker holds at once: bounds its memory (execution)
    batch_instances: Count = 128  # masks a worker holds at once (execution)


class DepthTrain(Section):
    num_features: Annotated[int, Field(ge=16)]
    iterations: Count
    batch_size: Count
    lr: Positive
    warmup: NonNegative
    plane_min_denominator: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None
    input_scale: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    upsample: Literal["bilinear", "guided"]
    crop_width: Annotated[int, Field(ge=32)] | None
    augment: bool
    threads: NonNegative
    init: str | None


# Depth degradations (daisnet/depth/degrade.py) and their accepted levels: sigmas of a log-normal
# factor (exp(2) = 7.4x at one sigma leaves no depth), or a whole down-sampling factor.
DEGRADATIONS = ("noise", "resolution", "scale")
DEGRADATION_LEVELS = {"noise": (0.0, 2.0), "resolution": (2, 64), "scale": (0.0, 2.0)}


def check_degradation(kind: str, level: float) -> None:
    """ValueError naming the problem when (kind, level) is not a degradation `degrade_depth` makes."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown depth degradation {kind!r}: choose from {', '.join(DEGRADATIONS)}")
    low, high = DEGRADATION_LEVELS[kind]
    if kind == "resolution":
        if float(level) != int(level) or not low <= level <= high:
            raise ValueError(f"resolution level must be a whole factor in [{low}, {high}], got {level}")
    elif not low < level <= high:
        raise ValueError(f"{kind} level must be a sigma in ({low}, {high}], got {level}")


def _degradation(section: "Degrade") -> "Degrade":
    check_degradation(section.kind, section.level)
    return section


class Degrade(Section):
    kind: Literal["noise", "resolution", "scale"]
    level: Positive


class Depth(Section):
    source: Literal["ground_truth", "bts", "degraded"]
    degrade: Annotated[Degrade, AfterValidator(_degradation)]
    checkpoint: str
    encoder: Literal["resnet18_bts", "resnet34_bts", "resnet50_bts", "densenet161_bts"]
    max_depth: Positive
    focal: Positive
    focal_reference: Positive
    batch_size: Count
    device: str
    train: DepthTrain


class Regional(Section):
    step: Positive
    offsets: Count
    floor: Literal["soft", "hard"]
    normalize: bool


def _odd(kernel: int) -> int:
    if kernel % 2 == 0:
        raise ValueError(f"must be odd (a centred Sobel kernel), got {kernel}")
    return kernel


class Normals(Section):
    kernel: Annotated[int, Field(ge=3), AfterValidator(_odd)]
    dz: Positive
    normalize_kernel: bool


class Features(Section):
    regional: Regional
    normals: Normals
    precision: Literal["float16", "float32"]
    workers: NonNegative = 2  # Dask worker processes (execution)


class Model(Section):
    inputs: Annotated[list[Literal["rgb", "depth", "depth_raw", "normal"]], Field(min_length=1)]
    backbone_depth: Literal[18, 34, 50, 101]
    weights: str
    imagenet_path: str
    min_size: Annotated[int, Field(ge=32)]
    max_size: Annotated[int, Field(ge=32)]
    anchor_sizes: Annotated[list[Count], Field(min_length=1)]
    anchor_aspect_ratios: Annotated[list[Positive], Field(min_length=1)]
    anchor_scales: Annotated[list[Positive], Field(min_length=1)]
    rpn_pre_nms_top_n: TrainTest
    rpn_post_nms_top_n: TrainTest
    fpn_channels: Annotated[int, Field(ge=8)]
    representation_size: Count
    box_batch_size_per_image: Count
    box_positive_fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    mask_batch_size_per_image: NonNegative  # 0: every positive RoI
    mask_head_width: Count
    class_agnostic_masks: bool
    roi_sampling_ratio: Count
    head_norm: Literal["none", "batch"]
    occlusion_edge: Annotated[Literal["off", "fcn", "mask_head", "conv1x1"], BeforeValidator(_off_on)]
    edge_head_width: Count
    edge_sigma: Positive
    edge_depth_scale: Positive
    edge_depth_pooling: Literal["image", "fpn_level"]
    edge_fcn: Literal["plain", "encoder_decoder"]
    occlusion_refinement: Literal["residual", "mask_head"]
    edge_loss_reduction: Literal["mean", "sum"]
    edge_pos_weight: Positive
    edge_loss_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    shape_prior: Annotated[Literal["off", "on"], BeforeValidator(_off_on)]
    oracle: Annotated[Literal["off", "edge", "shape"], BeforeValidator(_off_on)]


class ShapePrior(Section):
    depth: Literal["all", "visible", "none"]
    iterations: Count
    batch_size: Count
    lr: Positive
    clusters: Count
    copies: Annotated[int, Field(ge=1, le=8)]
    kmeans_iterations: Count
    top_k: Count
    fusion_width: Count


def _milestones(values: list[float]) -> list[float]:
    if any(not 0 < v < 1 for v in values) or values != sorted(values):
        raise ValueError(f"must be increasing fractions of the run in (0, 1), got {values}")
    return values


class Train(Section):
    iterations: Count
    batch_size: Count
    lr: Positive
    optimizer: Literal["adamw", "sgd"]
    momentum: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    decay_norm_and_bias: bool
    warmup_iters: NonNegative
    warmup_power: Positive
    warmup_factor: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    decay_milestones: Annotated[list[Real], AfterValidator(_milestones)]
    decay_gamma: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    decay: Literal["cosine", "step"]
    grad_clip: Annotated[float, Field(ge=0, allow_inf_nan=False)]  # 0: no clipping
    crop_width: Annotated[int, Field(ge=32)] | None  # the FPN's coarsest stride is 32
    checkpoint_every: Count = 50  # resume points (execution)
    snapshot_every: NonNegative = 0  # models kept along the run for AP curves, 0: none (execution)
    log_every: Count = 10  # log lines and dvclive steps (execution)
    num_workers: NonNegative = 0  # DataLoader processes: a batch loads in ~50 ms, none on 2 cores (execution)
    processes: Count
    device: str
    amp: Annotated[Literal["off", "bf16", "fp16"], BeforeValidator(_off_on)]


class Augment(Section):
    enabled: bool
    flip: Fraction
    contrast: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
    crop: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    rotate: Annotated[float, Field(ge=0, le=180, allow_inf_nan=False)]  # degrees
    color: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class Evaluate(Section):
    batch_size: Count = 2  # images per forward (execution)
    samples: NonNegative = 4  # sample images drawn beside the predictions (execution)
    device: str


class Params(Section):
    """The whole params file (params.yaml): what each stage reads, validated at once."""

    seed: NonNegative
    data: Data
    synth: Synth
    rasterize: Rasterize
    depth: Depth
    features: Features
    model: Model
    shape_prior: ShapePrior
    train: Train
    augment: Augment
    evaluate: Evaluate


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with two things YAML 1.2 (and every reader of a params file) expects:
    `5e-4` is a float (YAML 1.1 wants `5.0e-4`, and PyYAML reads `5e-4` as a string), and a key given
    twice in one mapping is an error, not the last one silently winning."""


_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _mapping_without_repeats(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                            "keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_ParamsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The params file as a plain mapping (before validation: the CLI's options go in first)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_ParamsLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise InputError("params file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("a folder, not a params file", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a params file: not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({' '.join(str(exc).split())})", path=path) from None
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of sections at the top level", path=path)
    return raw


def validate(raw: dict[str, Any], source: str | Path = "params.yaml", overridden: frozenset[str] = frozenset()) -> Params:
    """`raw` checked against the schema; the first problem as one InputError naming `source` and the key
    (and saying so when the value came from the command line: a key in `overridden`)."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        key = ".".join(str(part) for part in errors[0]["loc"] if not _is_type_tag(part))
        if any(key == dotted or key.startswith(dotted + ".") for dotted in overridden):
            source = f"{source} with the command line's {key}"
        raise InputError(describe(errors[0]) + more, path=source) from None


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Params:
    """The params file, with `overrides` (dotted keys; None = not given) applied, validated."""
    raw = read_yaml(path)
    given = {dotted: value for dotted, value in (overrides or {}).items() if value is not None}
    for dotted, value in given.items():
        set_dotted(raw, dotted, value, path)
    return validate(raw, path, frozenset(given))


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` merged into `base` (in place, returned): nested mappings key by key, anything else replaced."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str | Path) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        if key not in node:  # a section left to its schema defaults (synth.scene): the schema checks the key
            node[key] = {}
        if not isinstance(node[key], dict):
            raise InputError(f"{key!r} is not a section (needed to set {dotted})", path=source)
        node = node[key]
    node[last] = value


def describe(error: dict[str, Any]) -> str:
    """One pydantic error as `key: problem` in the user's words."""
    loc = [part for part in error["loc"] if not _is_type_tag(part)]
    key = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = _did_you_mean(loc)
        return f"unknown key {key}" + (f" (did you mean {hint}?)" if hint else "")
    if kind == "missing":
        return f"missing key {key}"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str):
        message += f", got the string {value!r}"
        if value.strip().lower() in ("true", "false", "yes", "no", "on", "off") or _is_number_text(value):
            message += " (remove the quotes)"
    elif not isinstance(value, (dict, list)) and "got" not in message:
        message += f", got {value!r}"
    return f"{key}: {message}"


def _is_type_tag(part: object) -> bool:
    # pydantic adds the union member or validator tried to a location ("int", "function-after[...]").
    return isinstance(part, str) and (part in ("int", "float", "str", "bool", "none", "list[...]")
                                      or "[" in part or part.startswith("literal"))


def _is_number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _did_you_mean(loc: list) -> str | None:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*map(str, loc[:-1]), close[0]]) if close else None
