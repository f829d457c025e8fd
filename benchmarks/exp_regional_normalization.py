"""Issue "Paper fidelity", point 1: do normalized regional maps help the D rows of Table 1?

Trains R+D and R+D+N at the default profile with the regional maps normalized (the default) and
as printed (eq. 4-5), two training seeds each, on the default pipeline's stores, and appends one
JSON line per run to reports/experiments/regional_normalization.jsonl as it finishes (a rerun skips
the runs already there, so it continues where it stopped):

    .venv/bin/python benchmarks/exp_regional_normalization.py [--seeds 0 1] [--rows R+D R+D+N]

Needs `make repro` first (data/prepared, data/depth, data/features). The literal-map features
stores are written to data/cache/experiments/ (not tracked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiment_runs import ROOT, append, daisnet, finished, train_and_evaluate  # noqa: E402

RESULTS = ROOT / "reports" / "experiments" / "regional_normalization.jsonl"
WORK = ROOT / "data" / "cache" / "experiments" / "regional_normalization"
INPUTS = {"R+D": ["rgb", "depth"], "R+D+N": ["rgb", "depth", "normal"], "R+DN+N": ["rgb", "depth_raw", "normal"]}


def params_file(path: Path, normalize: bool, inputs: list[str] | None = None, seed: int = 0) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["features"]["regional"]["normalize"] = normalize
    params["seed"] = seed
    if inputs is not None:
        params["model"]["inputs"] = inputs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params))
    return path


def features_dir(normalize: bool) -> Path:
    if normalize:
        return ROOT / "data" / "features"
    out = WORK / "features_literal"
    if not (out / "val.zarr").exists():
        daisnet("features", "data/depth/train.zarr", "data/depth/val.zarr", "--out-dir", str(out),
                "--params", str(params_file(WORK / "literal.yaml", False)))
    return out


def run(row: str, normalize: bool, seed: int) -> dict:
    name = f"{row}_{'normalized' if normalize else 'literal'}_seed{seed}"
    out = WORK / name
    params = params_file(out / "params.yaml", normalize, INPUTS[row], seed)
    features = features_dir(normalize)
    metrics, seconds = train_and_evaluate(out, params, features)
    return {"row": row, "normalize": normalize, "seed": seed, "amodal_AP": metrics["amodal"]["AP"],
            "visible_AP": metrics["visible"]["AP"], "amodal_AP50": metrics["amodal"]["AP50"],
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", default=["R+D", "R+D+N"], choices=sorted(INPUTS))
    args = parser.parse_args()
    done = finished(RESULTS, ("row", "normalize", "seed"))
    for seed in args.seeds:
        for row in args.rows:
            for normalize in (True, False):
                if (row, normalize, seed) not in done:
                    append(RESULTS, run(row, normalize, seed))


if __name__ == "__main__":
    main()
