"""The ablation study: Table 1's rows x training seeds, each run recorded in reports/ablation/runs.jsonl.

Each run is the pipeline's own stages on the pipeline's data: the row's params (params.yaml, the
profile's overrides, the row's, the seed and the depth source) go to a params file, and `daisnet
train` and `daisnet evaluate` run with it on `dvc repro`'s stores. A row that changes what the
features stage computes (the regional step or offsets, the normal kernel) or where depth comes from
(`depth.source: bts`) gets its own depth and features stores, computed once by `daisnet depth` and
`daisnet features` and shared by every run that needs the same ones. A shape-prior row whose shape
settings differ from the pipeline's (R+SV) gets its own shape autoencoder and codebook the same way.

Every finished run appends one JSON line: row, weights, depth source, profile, seed, the exact
overrides, the evaluate stage's whole metrics.json (Table 1 columns, per class, per occlusion
level), iterations, seconds, the code's git commit and the dvc.lock hashes of the data it used. A
study that stops (a crash, the end of a session) continues where it stopped: runs already in the
file are skipped, and an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from daisnet.errors import InputError
from daisnet.evaluate.run import full_metrics
from daisnet.hashing import sha256_file
from daisnet.params import DEGRADATIONS, check_degradation, set_dotted
from daisnet.pipeline.ablation import MASK_CEILING_ROWS, PROFILES, ROW_BY_NAME, ROWS
from daisnet.pipeline.depth_quality import GROUND_TRUTH_QUALITY

RUNS_FILE = Path("reports/ablation/runs.jsonl")
# The rows of the study (issue "The ablation study"): every claim's rows, then the main rows with
# BTS-predicted depth (R uses no depth: its ground-truth runs serve both).
STUDY_ROWS = ("R", "R+D", "R+DN", "D", "N", "D+N", "R+N", "R+NM", "R+NL", "R+D+N", "R+O", "R+D+O", "R+S", "R+SV",
              "R+D1", "R+DS1", "R+DN+N")
BTS_ROWS = ("R+D", "R+N", "R+O", "R+DN+N")
WORK = Path("data/cache/study")
# Depth sources (docs/ablation.md, "How good must depth be"): the ground truth; BTS as the pipeline
# trains it (`bts`) or at another length (`bts:ITERATIONS`, params.yaml's depth.train otherwise); the
# ground truth with one controlled defect (`noise:SIGMA`, `resolution:FACTOR`, `scale:SIGMA`).
DEPTH_SOURCES = ("ground_truth", "bts", "bts:ITERATIONS", *(f"{kind}:LEVEL" for kind in DEGRADATIONS))
# What decides a BTS model's weights besides its iterations (logging and evaluation do not; the thread
# count changes the last bits of a CPU run).
BTS_KEYS = ("depth.encoder", "depth.max_depth", "depth.train.num_features", "depth.train.batch_size",
            "depth.train.lr", "depth.train.warmup", "depth.train.plane_min_denominator", "depth.train.input_scale",
            "depth.train.upsample", "depth.train.crop_width", "depth.train.augment", "depth.train.threads", "depth.train.init")


def parse_depth_source(text: str, params: Mapping[str, Any] | None = None) -> str:
    """A depth source as the study names it in its records: `bts` becomes `bts:N` with params.yaml's
    iterations, levels are written canonically (`resolution:4`, `noise:0.1`). InputError when unknown."""
    text = text.strip()
    if text == "ground_truth":
        return text
    kind, _, level = text.partition(":")
    if kind == "bts":
        if not level:
            params = params if params is not None else yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
            return f"bts:{int(params['depth']['train']['iterations'])}"
        if not level.isdigit() or int(level) < 1:
            raise InputError(f"depth source {text!r}: bts:ITERATIONS takes a whole number of iterations >= 1")
        return f"bts:{int(level)}"
    if kind not in DEGRADATIONS:
        raise InputError(f"unknown depth source {text!r}: choose from {', '.join(DEPTH_SOURCES)}")
    try:
        value = float(level)
        check_degradation(kind, value)
    except ValueError as exc:
        reason = str(exc) if level and not str(exc).startswith("could not convert") else f"{kind}:LEVEL needs a number"
        raise InputError(f"depth source {text!r}: {reason}") from None
    return f"{kind}:{value:g}"


def degradation(source: str) -> tuple[str, float] | None:
    """(kind, level) of a degraded source, None for ground_truth and BTS."""
    kind, _, level = source.partition(":")
    return (kind, float(level)) if kind in DEGRADATIONS else None


def bts_iterations(source: str) -> int | None:
    """N of `bts:N`; None for other sources and for a bare `bts` (params.yaml's length)."""
    kind, _, level = source.partition(":")
    return int(level) if kind == "bts" and level else None


def depth_tag(source: str, depth_folder: Path) -> str:
    """The name the study's derived stores (features, shape models) carry for a run's depth."""
    return "ground_truth" if source == "ground_truth" else depth_folder.name.removeprefix("depth-")


# The pipeline's outputs a run reads, by their dvc.lock paths.
PIPELINE = {"prepared_train": "data/prepared/train.zarr", "prepared_val": "data/prepared/val.zarr",
            "depth_train": "data/depth/train.zarr", "depth_val": "data/depth/val.zarr",
            "features_train": "data/features/train.zarr", "features_val": "data/features/val.zarr",
            "bts": "data/models/bts.pt", "shape_ae": "data/models/shape_ae.pt", "codebook": "data/models/codebook.npz"}
# The params that decide a features store (besides the depth it is computed from).
FEATURE_KEYS = ("features.regional", "features.normals", "features.precision")
# What the shape_ae and codebook stages read from params.yaml (dvc.yaml), besides the seed.
SHAPE_KEYS = ("shape_prior.depth", "shape_prior.iterations", "shape_prior.batch_size", "shape_prior.lr",
              "shape_prior.clusters", "shape_prior.copies", "shape_prior.kmeans_iterations")


@dataclass(frozen=True)
class RunSpec:
    """One run of the study: a Table 1 row with a weight setting, a depth source, a profile, a seed."""

    row: str
    seed: int
    depth_source: str = "ground_truth"
    weights: str = "random"
    profile: str = "ablation"
    depth_model: str = ""  # BTS sources: the fingerprint of the BTS training (`bts_fingerprint`)

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        return (self.row, self.weights, self.depth_source, self.profile, self.seed, self.depth_model)

    @property
    def name(self) -> str:
        depth = "" if self.depth_source == "ground_truth" else "-" + self.depth_source.replace(":", "")
        row = self.row.replace("+", "_").replace("*", "_oracle")  # R+O* -> R_O_oracle: no glob in a path
        return f"{self.profile}-{self.weights}-{row}{depth}-seed{self.seed}"

    def overrides(self) -> dict[str, str]:
        """The dotted params this run changes, as `dvc exp run -S` would take them."""
        row = ROW_BY_NAME[self.row]
        depth = {"depth.source": self.depth_source}
        if (degraded := degradation(self.depth_source)) is not None:
            depth = {"depth.source": "degraded", "depth.degrade.kind": degraded[0],
                     "depth.degrade.level": f"{degraded[1]:g}"}
        elif (iterations := bts_iterations(self.depth_source)) is not None:
            depth = {"depth.source": "bts", "depth.train.iterations": str(iterations)}
        return {"model.weights": self.weights, **PROFILES[self.profile], **row.overrides, **depth,
                "seed": str(self.seed)}


def snapshot_models(folder: Path | None) -> list[tuple[int, Path]]:
    """The models a run kept along its training (`train --snapshots`), by iteration."""
    if folder is None or not folder.is_dir():
        return []
    found = [(int(p.stem.split("-")[1]), p) for p in folder.glob("model-*.pt") if p.stem.split("-")[1].isdigit()]
    return sorted(found)


def curve_point(iteration: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One point of a run's curve: amodal and visible AP (and the edge head's F1) after `iteration` iterations."""
    point = {"iterations": iteration, "amodal_AP": metrics["amodal"]["AP"], "visible_AP": metrics["visible"]["AP"]}
    if "edge" in metrics:
        point["edge_f1"] = metrics["edge"]["f1"]
    return point


def _wants_mask_ceiling(spec: RunSpec) -> bool:
    return spec.row in MASK_CEILING_ROWS and spec.depth_source == "ground_truth"


def _needs_shape_prior(spec: RunSpec) -> bool:
    return spec.overrides().get("model.shape_prior") == "on"


def record_key(record: Mapping[str, Any]) -> tuple[str, str, str, str, int, str]:
    model = record.get("depth_model") or {}
    return (record["row"], record["weights"], record["depth_source"], record["profile"], int(record["seed"]),
            model.get("fingerprint", ""))


def read_runs(path: Path = RUNS_FILE) -> list[dict[str, Any]]:
    """The records of a runs file (none if it does not exist); a bad line is named, not skipped."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise InputError("is a folder, not a runs file (one JSON record per line)", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"is not a runs file: not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    records = []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = record_key(record)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"line {number} is not a run record ({exc})", path=path) from None
        if key in seen:  # counted twice, it would be a seed more and move its row's mean
            raise InputError(f"line {number} records the run of line {seen[key]} again ({record.get('row')}, "
                             f"{record.get('depth_source')}, seed {record.get('seed')}): remove one of them", path=path)
        seen[key] = number
        records.append(record)
    return records


def plan(rows: Iterable[str], seeds: Iterable[int], depth_sources: Iterable[str], profile: str,
         weights: str = "random") -> list[RunSpec]:
    """Every (row, depth source, seed) to run, rows first, checked against the known rows and profiles."""
    rows, seeds, depth_sources = list(rows), list(seeds), list(depth_sources)
    unknown = [r for r in rows if r not in ROW_BY_NAME]
    if unknown:
        raise InputError(f"unknown rows {unknown}: choose from {[r.name for r in ROWS]}")
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r}: choose from {sorted(PROFILES)}")
    depth_sources = [parse_depth_source(d) for d in depth_sources]
    data_keys = sorted(k for k in PROFILES[profile] if k.split(".")[0] in ("data", "synth", "rasterize"))
    if data_keys:
        raise InputError(f"profile {profile!r} changes the data ({', '.join(data_keys)}): the study runs on the "
                         "pipeline's stores; run it with `dvc exp run -S ...` (docs/profiles.md)")
    if weights not in ("random", "imagenet"):  # imagenet: the train stage names the weights file it needs
        raise InputError(f"weights must be random or imagenet, not {weights!r}")
    pipeline = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    models = {d: bts_fingerprint(pipeline, n) if (n := bts_iterations(d)) is not None else "" for d in depth_sources}
    return [RunSpec(row, seed, depth, weights, profile, models[depth])
            for depth in depth_sources for seed in seeds for row in rows]


def params_for(spec: RunSpec, base: Path = Path("params.yaml")) -> dict[str, Any]:
    """params.yaml with the run's overrides applied (values parsed as YAML, as `dvc exp run -S` does)."""
    params = yaml.safe_load(base.read_text(encoding="utf-8"))
    for dotted, text in spec.overrides().items():
        set_dotted(params, dotted, yaml.safe_load(text), base)
    return params


def _dotted(params: Mapping[str, Any], dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        node = node[key]
    return node


def _fingerprint(params: Mapping[str, Any], keys: Iterable[str]) -> str:
    values = {key: _dotted(params, key) for key in keys}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def bts_fingerprint(params: Mapping[str, Any], iterations: int) -> str:
    """What decides a BTS model the study trains or reuses: params.yaml's BTS settings, the pipeline's
    seed and the iterations (a run's training seed never changes its depth)."""
    return hashlib.sha256(json.dumps({"settings": {key: _dotted(params, key) for key in BTS_KEYS},
                                      "seed": params["seed"], "iterations": iterations},
                                     sort_keys=True).encode()).hexdigest()[:12]


def feature_fingerprint(params: Mapping[str, Any]) -> str:
    return _fingerprint(params, FEATURE_KEYS)


def shape_fingerprint(params: Mapping[str, Any]) -> str:
    return _fingerprint(params, SHAPE_KEYS)


def lock_hashes(lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """md5 of every stage output in dvc.lock, by path."""
    data = yaml.safe_load(lock.read_text(encoding="utf-8"))
    hashes = {}
    for stage in data.get("stages", {}).values():
        for out in stage.get("outs", []):
            hashes[out["path"]] = out.get("md5", "")
    return hashes


def git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")


class Study:
    """Runs specs one after another; `daisnet` commands are run as subprocesses of this Python."""

    def __init__(self, runs_file: Path = RUNS_FILE, work: Path = WORK, echo=print) -> None:
        self.runs_file, self.work, self.echo = runs_file, work, echo

    def daisnet(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", *args], check=True)

    def check_pipeline(self, specs: list[RunSpec]) -> dict[str, str]:
        """The dvc.lock hashes of the pipeline outputs these runs read; refused when one is missing."""
        needed = [k for k in PIPELINE if k.startswith(("prepared", "depth", "features"))]
        if any(_needs_shape_prior(s) for s in specs):
            needed += ["shape_ae", "codebook"]
        missing = [PIPELINE[k] for k in needed if not Path(PIPELINE[k]).exists()]
        if missing:
            raise InputError(f"the pipeline's outputs are missing ({', '.join(missing)}): run `make repro` first")
        hashes = lock_hashes() if Path("dvc.lock").exists() else {}
        return {PIPELINE[k]: hashes.get(PIPELINE[k], "") for k in needed}

    def params_file(self, spec: RunSpec, folder: Path) -> tuple[Path, dict[str, Any]]:
        params = params_for(spec)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "params.yaml"
        path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        return path, params

    def bts_model(self, spec: RunSpec, params_path: Path) -> Path:
        """The BTS checkpoint of a `bts:N` source: the pipeline's when its settings and length are
        params.yaml's, else one trained once by `daisnet train-depth` (with the pipeline's seed)."""
        pipeline = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
        own = bts_fingerprint(pipeline, int(pipeline["depth"]["train"]["iterations"]))
        if spec.depth_model == own:
            if not Path(PIPELINE["bts"]).exists():
                raise InputError(f"the pipeline's BTS ({PIPELINE['bts']}) is missing: run `make repro` first")
            return Path(PIPELINE["bts"])
        folder = self.work / f"bts-{spec.depth_model}"
        checkpoint = folder / "bts.pt"
        if not checkpoint.exists():  # written atomically: there means complete
            self.echo(f"study: BTS for {spec.depth_source} -> {checkpoint}")
            self.daisnet("train-depth", PIPELINE["prepared_train"], PIPELINE["prepared_val"], str(checkpoint),
                         "--metrics", str(folder / "depth.json"), "--details", str(folder / "depth.details.json"),
                         "--params", str(params_path),
                         "--iterations", str(bts_iterations(spec.depth_source)), "--seed", str(pipeline["seed"]))
        return checkpoint

    def depth_stores(self, spec: RunSpec, params_path: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        """The run's depth stores (computed once per source) and, for BTS, the model they came from."""
        if spec.depth_source == "ground_truth":
            return {s: Path(PIPELINE[f"depth_{s}"]) for s in ("train", "val")}, {}
        model: dict[str, Any] = {}
        extra: list[str] = []
        if bts_iterations(spec.depth_source) is not None:
            checkpoint = self.bts_model(spec, params_path)
            folder = self.work / f"depth-bts-{spec.depth_model}"
            model = {"fingerprint": spec.depth_model, "checkpoint": str(checkpoint), "sha256": sha256_file(checkpoint)}
            extra = ["--checkpoint", str(checkpoint)]
        else:
            folder = self.work / f"depth-{spec.depth_source.replace(':', '-')}"
        stores = {s: folder / f"{s}.zarr" for s in ("train", "val")}
        for split, store in stores.items():
            if not (store / "zarr.json").exists():  # stores are moved in complete: this means done
                self.echo(f"study: {spec.depth_source} depth of the {split} split -> {store}")
                self.daisnet("depth", PIPELINE[f"prepared_{split}"], str(store), "--params", str(params_path), *extra)
        return stores, model

    def depth_quality(self, spec: RunSpec, stores: dict[str, Path]) -> dict[str, float]:
        """abs rel, delta<1.25, RMSE and the normal-angle error of the run's val depth (cached beside it)."""
        if spec.depth_source == "ground_truth":
            return dict(GROUND_TRUTH_QUALITY)
        cached = stores["val"].parent / "quality.json"
        if not cached.exists():
            from daisnet.depth.metrics import score_depth_store

            scores = score_depth_store(stores["val"], PIPELINE["prepared_val"])
            cached.write_text(json.dumps({k: round(scores[k], 4) for k in GROUND_TRUTH_QUALITY}, indent=2) + "\n")
        return json.loads(cached.read_text())

    def feature_stores(self, params: Mapping[str, Any], params_path: Path, depth: dict[str, Path],
                       spec: RunSpec) -> dict[str, Path]:
        pipeline = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
        if spec.depth_source == "ground_truth" and feature_fingerprint(params) == feature_fingerprint(pipeline):
            return {s: Path(PIPELINE[f"features_{s}"]) for s in ("train", "val")}
        tag = depth_tag(spec.depth_source, depth["train"].parent)
        folder = self.work / f"features-{tag}-{feature_fingerprint(params)}"
        stores = {s: folder / f"{s}.zarr" for s in ("train", "val")}
        if not all((s / "zarr.json").exists() for s in stores.values()):
            self.echo(f"study: features for {spec.row} -> {folder}")
            self.daisnet("features", str(depth["train"]), str(depth["val"]), "--out-dir", str(folder),
                         "--params", str(params_path))
        return stores

    def shape_models(self, params: Mapping[str, Any], params_path: Path, depth: dict[str, Path],
                     spec: RunSpec) -> tuple[Path, Path]:
        """The shape autoencoder and codebook a shape-prior run needs: the pipeline's when the run's
        shape settings and depth are the pipeline's, else its own (R+SV: depth mode `visible`), built once
        by `daisnet shape-ae` / `daisnet codebook` on the run's depth, with the pipeline's seed (the row
        changes the shape setting, not the prior's draw)."""
        pipeline = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
        if spec.depth_source == "ground_truth" and shape_fingerprint(params) == shape_fingerprint(pipeline):
            return Path(PIPELINE["shape_ae"]), Path(PIPELINE["codebook"])
        tag = depth_tag(spec.depth_source, depth["train"].parent)
        folder = self.work / f"shape-{tag}-{shape_fingerprint(params)}"
        autoencoder, codebook = folder / "shape_ae.pt", folder / "codebook.npz"
        seed = str(pipeline["seed"])
        val = ["--val-prepared", PIPELINE["prepared_val"], "--val-depth", str(depth["val"])]
        if not autoencoder.exists():  # stage outputs are moved in complete: this means done
            self.echo(f"study: shape autoencoder for {spec.row} -> {autoencoder}")
            self.daisnet("shape-ae", PIPELINE["prepared_train"], str(depth["train"]), str(autoencoder), *val,
                         "--metrics", str(folder / "shape_ae.json"), "--params", str(params_path), "--seed", seed)
        if not codebook.exists():
            self.echo(f"study: codebook for {spec.row} -> {codebook}")
            self.daisnet("codebook", str(autoencoder), PIPELINE["prepared_train"], str(depth["train"]),
                         str(codebook), *val, "--report", str(folder / "codebook.json"),
                         "--params", str(params_path), "--seed", seed)
        return autoencoder, codebook

    def run_one(self, spec: RunSpec, data: dict[str, str]) -> dict[str, Any]:
        folder = self.work / "runs" / spec.name
        params_path, params = self.params_file(spec, folder)
        depth, depth_model = self.depth_stores(spec, params_path)
        quality = self.depth_quality(spec, depth)
        features = self.feature_stores(params, params_path, depth, spec)
        shape = self.shape_models(params, params_path, depth, spec) if _needs_shape_prior(spec) else None
        model = folder / "model.pt"
        snapshots = folder / "snapshots" if int(params["train"].get("snapshot_every", 0)) > 0 else None
        start = time.perf_counter()
        if not model.exists():
            prior = ["--shape-ae", str(shape[0]), "--codebook", str(shape[1])] if shape else []
            kept = ["--snapshots", str(snapshots)] if snapshots else []
            self.daisnet("train", PIPELINE["prepared_train"], str(model), "--features", str(features["train"]),
                         "--depth", str(depth["train"]), "--work-dir", str(folder / "work"), *prior, *kept,
                         "--summary", str(folder / "train.json"), "--timings", str(folder / "train_timings.json"),
                         "--params", str(params_path))
        train_seconds = time.perf_counter() - start
        summary = {}  # an earlier run's summary and time, when this one found its model already trained
        for name in ("train.json", "train_timings.json"):
            if (folder / name).exists():
                summary.update(json.loads((folder / name).read_text()))
        start = time.perf_counter()
        evaluate = ["--features", str(features["val"]), "--depth", str(depth["val"]), "--params", str(params_path)]
        self.daisnet("evaluate", str(model), PIPELINE["prepared_val"], "--out", str(folder / "eval"), *evaluate)
        curve = []  # the same evaluation of each model kept along the run, then the final one
        for iteration, kept_model in snapshot_models(snapshots):
            out = folder / f"eval-{iteration}"
            if not (out / "metrics.json").exists():
                self.daisnet("evaluate", str(kept_model), PIPELINE["prepared_val"], "--out", str(out), *evaluate)
            curve.append(curve_point(iteration, full_metrics(out)))
        eval_seconds = time.perf_counter() - start
        metrics = full_metrics(folder / "eval")
        # The same detections with their ground-truth amodal masks (all pixels; only the hidden part):
        # what any mask-side part could add, and what completing behind occluders could.
        ceilings = {}
        regions = (("all", "amodal_AP"), ("hidden", "hidden_amodal_AP")) if _wants_mask_ceiling(spec) else ()
        for region, key in regions:
            out = folder / ("eval-mask-ceiling" if region == "all" else f"eval-mask-ceiling-{region}")
            if not (out / "metrics.json").exists():
                self.daisnet("evaluate", str(model), PIPELINE["prepared_val"], "--out", str(out), *evaluate,
                             "--mask-ceiling", "--ceiling-region", region)
            ceilings[key] = full_metrics(out)["amodal"]["AP"]
        # The pipeline outputs this run read (its own depth or features stores derive from them).
        used_keys = ["prepared_train", "prepared_val"]
        if spec.depth_source == "ground_truth":
            used_keys += ["depth_train", "depth_val"]
        elif depth_model.get("checkpoint") == PIPELINE["bts"]:
            used_keys += ["bts"]
        if features["train"] == Path(PIPELINE["features_train"]):
            used_keys += ["features_train", "features_val"]
        if shape and shape[0] == Path(PIPELINE["shape_ae"]):
            used_keys += ["shape_ae", "codebook"]
        used = {PIPELINE[k]: data.get(PIPELINE[k], "") for k in used_keys}
        return {
            "row": spec.row, "weights": spec.weights, "depth_source": spec.depth_source, "profile": spec.profile,
            "seed": spec.seed, "overrides": spec.overrides(), "metrics": metrics,
            "iterations": summary.get("iterations", params["train"]["iterations"]),
            "train_seconds": round(float(summary.get("train_seconds", train_seconds)), 1),
            "eval_seconds": round(eval_seconds, 1), "commit": git_commit(), "data": used,
            "features": {"fingerprint": feature_fingerprint(params), "stores": [str(features["train"]), str(features["val"])]},
            "depth_quality": quality, **({"depth_model": depth_model} if depth_model else {}),
            **({"mask_ceiling": ceilings} if ceilings else {}),
            **({"curve": [*curve, curve_point(int(summary.get("iterations", params["train"]["iterations"])), metrics)]}
               if snapshots else {}),
            **({"shape": {"fingerprint": shape_fingerprint(params), "models": [str(shape[0]), str(shape[1])]}}
               if shape else {}),
        }

    def run(self, specs: list[RunSpec]) -> list[dict[str, Any]]:
        """Run every spec not yet in the runs file, appending each record as it finishes."""
        done = {record_key(r) for r in read_runs(self.runs_file)}
        todo = [s for s in specs if s.key not in done]
        self.echo(f"study: {len(specs) - len(todo)} of {len(specs)} runs already in {self.runs_file}; "
                  f"{len(todo)} to run")
        if not todo:
            return []
        data = self.check_pipeline(todo)
        finished = []
        for number, spec in enumerate(todo, start=1):
            self.echo(f"study: run {number}/{len(todo)}: {spec.row} ({spec.depth_source}, seed {spec.seed})")
            try:
                record = self.run_one(spec, data)
            except subprocess.CalledProcessError:
                self.echo(f"study: run {spec.name} stopped; the same command continues where it stopped")
                raise
            self.runs_file.parent.mkdir(parents=True, exist_ok=True)
            with self.runs_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
            finished.append(record)
            self.echo(f"study: {spec.row} seed {spec.seed}: amodal AP {record['metrics']['amodal']['AP']:.2f} "
                      f"({record['train_seconds']:.0f} s training)")
        return finished
