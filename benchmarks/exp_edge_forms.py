"""Issue "Paper fidelity", point 3: the edge branch in the paper's reading against today's, on R+O.

R+O (`model.occlusion_edge: mask_head`, the ablation's O) at the default profile, two training seeds,
with today's forms (RoI depth at full resolution, residual refinement, mean loss) and the paper's
(eq. 23 depth per FPN level, the refinement as a separate mask head, eq. 24's sum weighted back to
the mean's scale, 1/784); one JSON line per run appended to reports/experiments/edge_forms.jsonl as
it finishes (a rerun continues where it stopped):

    .venv/bin/python benchmarks/exp_edge_forms.py [--seeds 0 1]

Needs `make repro` first. Runs in data/cache/experiments/edge_forms/ (not tracked).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "reports" / "experiments" / "edge_forms.jsonl"
WORK = ROOT / "data" / "cache" / "experiments" / "edge_forms"
FORMS = {
    "today": {},
    "paper": {"edge_depth_pooling": "fpn_level", "occlusion_refinement": "mask_head",
              "edge_loss_reduction": "sum", "edge_loss_weight": 1 / 784},
}


def daisnet(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", *args], cwd=ROOT, check=True)


def run(form: str, seed: int) -> dict:
    out = WORK / f"{form}_seed{seed}"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seed"] = seed
    params["model"].update({"inputs": ["rgb"], "occlusion_edge": "mask_head", **FORMS[form]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--features", "data/features/train.zarr", "--depth", "data/depth/train.zarr"]
    start = time.perf_counter()
    daisnet("train", "data/prepared/train.zarr", str(out / "model.pt"), *common, "--work-dir", str(out / "work"),
            "--params", str(out / "params.yaml"))
    seconds = time.perf_counter() - start
    daisnet("evaluate", str(out / "model.pt"), "data/prepared/val.zarr", "--features", "data/features/val.zarr",
            "--depth", "data/depth/val.zarr", "--out", str(out / "eval"), "--params", str(out / "params.yaml"))
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    return {"row": "R+O", "form": form, "seed": seed, "amodal_AP": metrics["amodal"]["AP"],
            "visible_AP": metrics["visible"]["AP"], "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    finished = set()
    if RESULTS.exists():
        finished = {(r["form"], r["seed"]) for r in map(json.loads, RESULTS.read_text().splitlines())}
    for seed in args.seeds:
        for form in FORMS:
            if (form, seed) in finished:
                continue
            result = run(form, seed)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            with RESULTS.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
