"""Stage `evaluate`: the trained model on the val split -> COCO metrics (Table 1 columns), curves, samples.

data/results/eval/ holds the predictions (COCO results, RLE) and sample images; the metrics and the
precision-recall curves go to reports/eval/ for `dvc metrics show` and `dvc plots show`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from daisnet.data.torch_dataset import AmodalDataset
from daisnet.evaluate.inference import predict_split
from daisnet.evaluate.run import evaluate_predictions, format_metrics
from daisnet.model.checkpoint import load_model
from daisnet.device import resolve_device
from daisnet.params import section
from stages.common import run_stage

MODEL = "data/models/daisnet.pt"
PREPARED = "data/prepared/val.zarr"
FEATURES = "data/features/val.zarr"
DEPTH = "data/depth/val.zarr"
OUT = Path("data/results/eval")
REPORTS = Path("reports/eval")


def main(params: dict) -> None:
    settings = section(params, "evaluate")
    device = resolve_device(settings.get("device", "auto"), "evaluate.device")
    model = load_model(MODEL, device)
    dataset = AmodalDataset(PREPARED, model.config, FEATURES, DEPTH)
    start = time.perf_counter()
    predictions = predict_split(model, dataset, int(settings.get("batch_size", 2)), device)
    # DVC refuses metrics and plots inside an output folder: they go to reports/eval.
    metrics = evaluate_predictions(dataset.store, predictions, OUT, samples=int(settings.get("samples", 4)),
                                   reports_dir=REPORTS)
    seconds = time.perf_counter() - start
    print(format_metrics(metrics))
    (REPORTS / "timing.json").write_text(json.dumps({"eval_seconds": round(seconds, 1), "images": len(dataset)}))


if __name__ == "__main__":
    run_stage(main)
