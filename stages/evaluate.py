"""Stage `evaluate`: a trained model on a split -> COCO metrics (Table 1 columns), curves, samples.

    python -m stages.evaluate data/models/daisnet.pt data/prepared/val.zarr --features data/features/val.zarr \
        --depth data/depth/val.zarr --out data/results/eval --reports reports/eval \
        --timings logs/timings/evaluate.json                                    (dvc.yaml; = `daisnet evaluate`)

OUT holds the predictions (COCO results, RLE) and sample images; with --reports the metrics
(metrics.json: the numbers DVC compares; details.json: the rest) and the precision-recall curves go
there instead (DVC refuses metrics and plots inside an output folder).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from daisnet.atomic import refuse_overlap
from daisnet.data.torch_dataset import AmodalDataset
from daisnet.device import resolve_device
from daisnet.errors import exit_on_input_error
from daisnet.evaluate.inference import predict_split
from daisnet.evaluate.run import evaluate_predictions, format_metrics
from daisnet.model.checkpoint import check_features_fit, load_model
from stages.common import DEFAULT_PARAMS, OUT_FOLDER, ParamsFile, TimingsFile, run, stage_params, write_timings


def evaluate(
    model: Annotated[Path, typer.Argument(help="DAISnet checkpoint (data/models/daisnet.pt).")],
    prepared: Annotated[Path, typer.Argument(help="Prepared store of the split to evaluate (data/prepared/val.zarr).")],
    out: Annotated[Path, typer.Option(help="Output folder (predictions, samples; metrics and plots unless --reports), "
                                           "replaced as a whole: it must be new, empty or an earlier evaluation's; else refused."), OUT_FOLDER],
    features: Annotated[Path | None, typer.Option(help="Features store of the split.")] = None,
    depth: Annotated[Path | None, typer.Option(help="Depth store of the split.")] = None,
    reports: Annotated[Path | None, typer.Option(help="Folder for metrics.json, details.json and plots/ (the stage: reports/eval)."),
                       OUT_FOLDER] = None,
    timings: TimingsFile = None,
    params: ParamsFile = DEFAULT_PARAMS,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward [evaluate.batch_size].")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1, ... [evaluate.device].")] = None,
    amp: Annotated[str | None, typer.Option(help="Mixed precision: off, bf16, fp16 [train.amp].")] = None,
    mask_ceiling: Annotated[bool, typer.Option(help="Diagnosis, not the stage: each detection matched to an instance "
                                                    "(box IoU >= 0.5) takes its ground-truth amodal mask, so the AP is "
                                                    "what perfect amodal masks would give with these detections "
                                                    "(docs/ablation.md, \"The mask ceiling\").")] = False,
    ceiling_region: Annotated[str, typer.Option(help="With --mask-ceiling, the pixels that take the ground truth: all, "
                                                     "hidden (the part behind occluders) or visible (every other).")] = "all",
) -> None:
    """COCO evaluation (amodal and visible masks, Table 1 columns, per class, by occlusion)."""
    with exit_on_input_error():
        chosen = stage_params(params, {"evaluate.batch_size": batch_size, "evaluate.device": device, "train.amp": amp})
        settings = chosen.evaluate
        dev = resolve_device(settings.device, "evaluate.device")
        refuse_overlap([out, reports, timings], [model, prepared, features, depth])
        net = load_model(model, dev)
        net.set_mask_ceiling(mask_ceiling, ceiling_region)
        check_features_fit(net, features, model)
        dataset = AmodalDataset(prepared, net.config, features, depth)
        start = time.perf_counter()
        predictions = predict_split(net, dataset, settings.batch_size, dev, amp=chosen.train.amp)
        metrics = evaluate_predictions(dataset.store, predictions, out, samples=settings.samples, reports_dir=reports)
        seconds = time.perf_counter() - start
        print(format_metrics(metrics))
        write_timings(timings, {"eval_seconds": seconds, "images": len(dataset)})


if __name__ == "__main__":
    run(evaluate)
