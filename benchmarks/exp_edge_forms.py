"""Issue "Paper fidelity", point 3: the edge branch in the paper's reading against today's, on R+O.

R+O (`model.occlusion_edge: mask_head`, the ablation's O) at the default profile, two training seeds,
with the earlier forms ("today" in the results: RoI depth at full resolution, residual refinement,
mean loss) and the paper's (eq. 23 depth per FPN level, the refinement as a separate mask head, eq. 24's sum weighted back to
the mean's scale, 1/784); one JSON line per run appended to reports/experiments/edge_forms.jsonl as
it finishes (a rerun continues where it stopped):

    .venv/bin/python benchmarks/exp_edge_forms.py [--seeds 0 1]

Needs `make repro` first. Runs in data/cache/experiments/edge_forms/ (not tracked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiment_runs import ROOT, append, finished, train_and_evaluate  # noqa: E402

RESULTS = ROOT / "reports" / "experiments" / "edge_forms.jsonl"
WORK = ROOT / "data" / "cache" / "experiments" / "edge_forms"
# Both set in full: the defaults are the paper's forms since this measurement (docs/model.md).
FORMS = {
    "today": {"edge_depth_pooling": "image", "occlusion_refinement": "residual", "edge_loss_reduction": "mean",
              "edge_loss_weight": 1.0},
    "paper": {"edge_depth_pooling": "fpn_level", "occlusion_refinement": "mask_head",
              "edge_loss_reduction": "sum", "edge_loss_weight": 1 / 784},
}


def run(form: str, seed: int) -> dict:
    out = WORK / f"{form}_seed{seed}"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seed"] = seed
    params["model"].update({"inputs": ["rgb"], "occlusion_edge": "mask_head", **FORMS[form]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    metrics, seconds = train_and_evaluate(out, out / "params.yaml")
    return {"row": "R+O", "form": form, "seed": seed, "amodal_AP": metrics["amodal"]["AP"],
            "visible_AP": metrics["visible"]["AP"], "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    done = finished(RESULTS, ("form", "seed"))
    for seed in args.seeds:
        for form in FORMS:
            if (form, seed) not in done:
                append(RESULTS, run(form, seed))


if __name__ == "__main__":
    main()
