"""DVC experiments as rows of the paper's Table 1: parse `dvc exp show --json`, name each run's row.

`dvc exp show --json` (DVC 3.67; tests/data/dvc_exp_show_sample.json is a real capture) is a list:
the workspace, then one entry per commit; each has `rev`, `name`, `data` (`timestamp`, `params`:
{params file: {"data": {...}}}, `metrics`: {metrics file: {"data": {...}}}), `error`, and, under a
commit, `experiments`: [{"name", "executor", "revs": [entries of the same shape]}].

A run's row label is built from the params the ablation changes (ModelConfig, params.yaml):
`model.inputs` rgb -> R, depth -> D (regional maps; D1 when `features.regional.offsets` is 1,
DS1 when `features.regional.step` is 1, D[Ds=..,Dm=..] for other non-default values), depth_raw ->
DN, normal -> N (NM / NL for kernels 21 / 71); `model.occlusion_edge` != off -> O (O[mode] when not
the paper's mask_head); `model.shape_prior` on -> S (SV when `shape_prior.depth` is visible), joined by "+" in the paper's
order R, D, N, O, S. The weight setting is `model.weights` (random, imagenet, else "checkpoint").
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daisnet.errors import InputError

# Where the evaluate stage's metrics live (dvc.yaml), in order of preference; any other metrics
# file with an `amodal.AP` is taken when none of these is present.
METRICS_FILES = ("reports/eval/metrics.json", "data/results/eval/metrics.json")
DEFAULT_STEP, DEFAULT_OFFSETS = 3.0, 4  # features.regional defaults (the paper's Ds, Dm)
PAPER_EDGE_MODE = "mask_head"  # §5.4: mode 2, the one Table 1 reports


@dataclass
class Run:
    """One run: a commit, an experiment, or the workspace."""

    name: str
    rev: str
    timestamp: str | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None  # content of the evaluation metrics file, None if absent
    error: str | None = None
    workspace: bool = False
    parent: str | None = None  # the commit an experiment is based on

    @property
    def weights(self) -> str:
        return weight_setting(self.params)

    @property
    def label(self) -> str:
        return row_label(self.params)


def _get(params: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


def weight_setting(params: Mapping[str, Any]) -> str:
    weights = str(_get(params, "model.weights", "random"))
    return weights if weights in ("random", "imagenet") else "checkpoint"


def _depth_label(params: Mapping[str, Any]) -> str:
    step = float(_get(params, "features.regional.step", DEFAULT_STEP))
    offsets = int(_get(params, "features.regional.offsets", DEFAULT_OFFSETS))
    if (step, offsets) == (DEFAULT_STEP, DEFAULT_OFFSETS):
        return "D"
    if (step, offsets) == (1.0, DEFAULT_OFFSETS):
        return "DS1"
    if (step, offsets) == (DEFAULT_STEP, 1):
        return "D1"  # the paper's text name; its table marks it "O1" (offset interval 1)
    return f"D[Ds={step:g},Dm={offsets}]"


def _normal_label(params: Mapping[str, Any]) -> str:
    kernel = int(_get(params, "features.normals.kernel", 5))
    return {21: "NM", 71: "NL"}.get(kernel, "N")


def row_label(params: Mapping[str, Any]) -> str:
    """The Table 1 row of a run's params, e.g. "R+D+O" (see the module docstring)."""
    inputs = _get(params, "model.inputs", ["rgb"])
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    parts = []
    if "rgb" in inputs:
        parts.append("R")
    if "depth" in inputs:
        parts.append(_depth_label(params))
    if "depth_raw" in inputs:
        parts.append("DN")
    if "normal" in inputs:
        parts.append(_normal_label(params))
    edge = str(_get(params, "model.occlusion_edge", "off"))
    if edge not in ("off", "False", "false"):
        parts.append("O" if edge == PAPER_EDGE_MODE else f"O[{edge}]")
    prior = str(_get(params, "model.shape_prior", "off"))
    if prior not in ("off", "False", "false"):
        parts.append("SV" if str(_get(params, "shape_prior.depth", "all")) == "visible" else "S")
    return "+".join(parts) or "-"


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, Mapping):
        return str(error.get("msg") or error.get("type") or error)
    return str(error)


def _has_amodal_ap(metrics: Any) -> bool:
    return isinstance(metrics, Mapping) and isinstance(metrics.get("amodal"), Mapping) and "AP" in metrics["amodal"]


def find_metrics(files: Mapping[str, Any], metrics_file: str | None = None) -> dict[str, Any] | None:
    """The evaluation metrics among a run's metrics files: `metrics_file` if given, else the first of
    METRICS_FILES present, else any file holding `amodal.AP`."""
    names = [metrics_file] if metrics_file else [*METRICS_FILES, *sorted(files)]
    for name in names:
        data = (files.get(name) or {}).get("data")
        if _has_amodal_ap(data):
            return dict(data)
    return None


def _run(entry: Mapping[str, Any], metrics_file: str | None, parent: str | None) -> Run:
    data = entry.get("data") or {}
    params = (data.get("params") or {}).get("params.yaml", {}).get("data") or {}
    metrics = find_metrics(data.get("metrics") or {}, metrics_file)
    rev = str(entry.get("rev") or data.get("rev") or "")
    return Run(name=str(entry.get("name") or ("workspace" if rev == "workspace" else rev[:7])), rev=rev, timestamp=data.get("timestamp"),
               params=params, metrics=metrics or None, error=_error_text(entry.get("error")),
               workspace=rev == "workspace", parent=parent)


def parse_exp_show(payload: Any, metrics_file: str | None = None, source: object = None) -> list[Run]:
    """Every run (workspace, commits, their experiments) in the order DVC lists them."""
    if not isinstance(payload, list):
        raise InputError("not `dvc exp show --json` output: expected a JSON list", path=source)
    runs = []
    for index, commit in enumerate(payload):
        if not isinstance(commit, Mapping) or "rev" not in commit:
            raise InputError("not `dvc exp show --json` output: an entry without `rev`", path=source,
                             record=f"entry {index}")
        runs.append(_run(commit, metrics_file, None))
        for experiment in commit.get("experiments") or []:
            for entry in experiment.get("revs") or []:
                run = _run(entry, metrics_file, str(commit["rev"]))
                run.name = str(experiment.get("name") or run.name)
                runs.append(run)
    return runs


def read_exp_show(path: str | Path) -> Any:
    """The JSON of a saved `dvc exp show --json` output."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", path=path) from None


def run_exp_show(repo: str | Path = ".") -> Any:
    """`dvc exp show --json` in a repository (all commits of the current branch and their experiments)."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise InputError(f"`dvc exp show --json` failed: {lines[-1]}", path=Path(repo).resolve())
    return json.loads(done.stdout)


def pick_rows(runs: list[Run], include_workspace: bool = False) -> dict[tuple[str, str], Run]:
    """{(weights, label): run} over runs that have metrics; when several runs give the same row,
    the newest (by timestamp) wins. The workspace (uncommitted, possibly stale) only on request."""
    chosen: dict[tuple[str, str], Run] = {}
    for run in runs:
        if run.metrics is None or run.error or (run.workspace and not include_workspace):
            continue
        key = (run.weights, run.label)
        current = chosen.get(key)
        if current is None or (run.timestamp or "9999") > (current.timestamp or "9999"):
            chosen[key] = run
    return chosen
