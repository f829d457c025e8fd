"""The `daisnet` command: every pipeline stage, and the commands around the pipeline.

A stage's command is the stage's own function (stages/<stage>.py), the one dvc.yaml runs: it
reads its settings from the params file (`--params`, default params.yaml) and an option given on
the command line overrides that one value. The other commands (inspect, predict, ablation, score,
bounds, report) work on the pipeline's artifacts and need no params file.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from daisnet.errors import InputError, exit_on_input_error
from daisnet.pipeline.chart_paths import SIDE_CHARTS, chart_beside
from stages.codebook import codebook
from stages.common import OUT_FILE, OUT_FOLDER, OUT_STORE, Writes, guarded
from stages.depth import depth
from stages.evaluate import evaluate
from stages.features import features
from stages.rasterize import rasterize
from stages.shape_ae import shape_ae
from stages.synth import synth
from stages.train import train
from stages.train_depth import train_depth

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline.",
)


# The report's chart, and the charts beside it (daisnet/pipeline/chart_paths.py).
OUT_CHARTS = Writes("file", lambda chart, _: [(chart_beside(Path(chart), kind), "file") for kind in SIDE_CHARTS])


@app.callback()
def _group() -> None:
    """DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline."""


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user's mistake (or a full disk, a read-only folder) becomes one line on stderr and exit
    status 2, never a traceback: the stages' own handler (daisnet.errors.user_error_line)."""
    with exit_on_input_error():
        yield


# The pipeline's stages: the very functions dvc.yaml runs (stages/<stage>.py), so the command and
# the stage cannot drift.
app.command("synth")(guarded(synth))
app.command("rasterize")(guarded(rasterize))
app.command("depth")(guarded(depth))
app.command("train-depth")(guarded(train_depth))
app.command("features")(guarded(features))
app.command("shape-ae")(guarded(shape_ae))
app.command("codebook")(guarded(codebook))
app.command("train")(guarded(train))
app.command("evaluate")(guarded(evaluate))


@app.command("kitti")
@guarded
def kitti_cmd(
    file_list: Annotated[Path, typer.Argument(help="BTS file list: 'image depth focal' per line "
                                                   "(eigen_train_files_with_gt.txt).")],
    data_path: Annotated[Path, typer.Argument(help="Folder the images are relative to (KITTI raw data).")],
    gt_path: Annotated[Path, typer.Argument(help="Folder the depth PNGs are relative to (KITTI depth ground truth).")],
    out: Annotated[Path, typer.Argument(help="Depth-training store to write (replaced atomically), for `daisnet train-depth`."),
                   OUT_STORE],
    images_per_shard: int = typer.Option(16, min=1, help="Images per shard file."),
) -> None:
    """KITTI depth ground truth (BTS's file lists) as a store `train-depth` trains on: pretrain BTS as §4.2."""
    from daisnet.data.kitti import write_kitti_store

    with user_errors():
        summary = write_kitti_store(file_list, data_path, gt_path, out, images_per_shard=images_per_shard,
                                    progress=sys.stderr.isatty())
        typer.echo(f"{out}: {summary['images']} images with ground truth ({summary['without_depth']} lines without), "
                   f"canvas {summary['canvas'][0]} x {summary['canvas'][1]}, "
                   f"{summary['measured_fraction']:.1%} of pixels measured")


@app.command("inspect")
@guarded
def inspect_cmd(
    store: Path = typer.Argument(..., help="A prepared store (data/prepared/val.zarr), or a shape codebook "
                                           "(data/models/codebook.npz: its prototypes as a grid)."),
    index: int = typer.Option(0, help="Image index in the store."),
    out: Annotated[Path | None, typer.Option(help="Write the image with its masks (and --array panels) to this PNG."),
                   OUT_FILE] = None,
    array: list[str] = typer.Option([], help="Also show this per-image array: NAME of the store (depth_gt) or "
                                             "OTHER.zarr:NAME (data/features/val.zarr:normals). Repeatable."),
) -> None:
    """Show one image: its instances (class, occlusion, box) and, as a PNG, its masks and other arrays."""
    from daisnet.inspect import inspect_image
    from daisnet.shape.inspect import codebook_grid

    with user_errors():
        lines = codebook_grid(store, out) if store.suffix == ".npz" else inspect_image(store, index, out, array)
        for line in lines:
            typer.echo(line)


@app.command("predict")
@guarded
def predict_cmd(
    images: list[Path] = typer.Argument(..., help="Image files."),
    model: Path = typer.Option(Path("data/models/daisnet.pt"), help="DAISnet checkpoint."),
    out: Annotated[Path, typer.Option(help="Output folder: an overlay PNG and a JSON per image, replaced as a whole: "
                                           "it must be new, empty or an earlier prediction's; else refused."),
                   OUT_FOLDER] = Path("predictions"),
    depth_checkpoint: Path = typer.Option(None, help="BTS checkpoint (ours or official) for depth."),
    depth_encoder: str = typer.Option(None, help="Encoder of an official BTS file: resnet50_bts | densenet161_bts."),
    depth_dir: Path = typer.Option(None, help="Folder of depth PNGs (uint16, m x 256) named like the images."),
    focal: float = typer.Option(721.5377, help="Focal length in px for BTS."),
    score_threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="Keep detections scoring at least this."),
    device: str = typer.Option("cpu", help="Torch device: cpu, cuda, cuda:1, auto (the GPU when there is one)."),
    amp: str = typer.Option("off", help="Mixed precision of DAISnet's forward: off, bf16, fp16."),
) -> None:
    """Depth, features and DAISnet on new images, from a trained checkpoint (no DVC needed)."""
    from daisnet.predict import predict_images

    with user_errors():
        count = predict_images(model, images, out, depth_checkpoint=depth_checkpoint, depth_dir=depth_dir,
                               focal=focal, score_threshold=score_threshold, device=device,
                               depth_encoder=depth_encoder, amp=amp)
        typer.echo(f"{count} images -> {out}")


@app.command("ablation")
def ablation_cmd(
    rows: str = typer.Option(",".join(("R", "R+D")), help="Comma-separated Table 1 rows, or `study` for every "
                             "row of the study (docs/ablation.md)."),
    seeds: str = typer.Option("0,1", help="Comma-separated training seeds."),
    depth: str = typer.Option("ground_truth", help="Depth sources, comma-separated: ground_truth, bts; "
                              "`study` adds the BTS rows of the study."),
    profile: str = typer.Option("ablation", help="ablation | long (3000 iterations, AP curves) | smoke | small | "
                                                 "default (docs/profiles.md)."),
    weights: str = typer.Option("random", help="random | imagenet (needs data/weights/, docs/ablation.md)."),
    runs_file: Path = typer.Option(Path("reports/ablation/runs.jsonl"), help="Results file: one JSON line per "
                                   "finished run, appended; runs already in it are skipped."),
    dry_run: bool = typer.Option(False, help="List the runs still to do, run nothing."),
) -> None:
    """Run Table 1's rows x seeds with the pipeline's stages; each finished run appends its record."""
    from daisnet.pipeline.study import BTS_ROWS, STUDY_ROWS, Study, plan, read_runs, record_key

    with user_errors():
        names = list(STUDY_ROWS) if rows.strip() == "study" else [r.strip() for r in rows.split(",") if r.strip()]
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        specs = []
        for source in [d.strip() for d in depth.split(",") if d.strip()]:
            if source == "study":
                specs += plan(names, seed_list, ["ground_truth"], profile, weights)
                specs += plan([r for r in BTS_ROWS if r in names], seed_list, ["bts"], profile, weights)
            else:
                specs += plan(names, seed_list, [source], profile, weights)
        if dry_run:
            done = {record_key(r) for r in read_runs(runs_file)}
            for spec in specs:
                typer.echo(f"{'done' if spec.key in done else 'to run'}: {spec.name}")
            return
        try:
            Study(runs_file, echo=typer.echo).run(specs)
        except subprocess.CalledProcessError as exc:  # the stage printed its own error line
            typer.echo(f"error: a stage of the study failed (exit status {exc.returncode}); its error is above",
                       err=True)
            raise typer.Exit(exc.returncode or 1) from None


@app.command("score")
def score_cmd(
    prepared: Path = typer.Argument(..., help="Prepared store of the split (data/prepared/val.zarr)."),
    results: Path = typer.Argument(..., help="COCO results JSON (RLE segmentations), ours or another method's."),
    kind: str = typer.Option("amodal", help="Masks to score against: amodal or visible."),
) -> None:
    """Score a COCO results file with this project's protocol (Table 1 columns, per class, by occlusion)."""
    import json

    from daisnet.data.prepared import PreparedStore
    from daisnet.evaluate.run import score_results_file

    with user_errors():
        typer.echo(json.dumps(score_results_file(PreparedStore(prepared), results, kind), indent=2))


@app.command("bounds")
def bounds_cmd(
    prepared: Path = typer.Argument(..., help="Prepared store of the split (data/prepared/val.zarr)."),
    resolution: int = typer.Option(28, min=1, help="Mask head grid (torchvision: 28)."),
) -> None:
    """What the metric can reach on a split: GT visible masks as amodal, GT through the mask-head grid."""
    import json

    from daisnet.data.prepared import PreparedStore
    from daisnet.evaluate.bounds import mask_resolution_bound, visible_as_amodal

    with user_errors():
        store = PreparedStore(prepared)
        typer.echo(json.dumps({"visible_as_amodal": visible_as_amodal(store),
                               "mask_resolution": mask_resolution_bound(store, resolution)}, indent=2))


@app.command("report")
@guarded
def report_cmd(
    runs_file: Path = typer.Option(Path("reports/ablation/runs.jsonl"), help="The study's results file."),
    out: Annotated[Path, typer.Option(help="Markdown report to write."), OUT_FILE] = Path("reports/ablation.md"),
    chart: Annotated[Path, typer.Option(help="Chart (PNG) to write; the depth-quality and curves charts go beside it."),
                     OUT_CHARTS] = Path("reports/ablation.png"),
) -> None:
    """The ablation report from the study's results file alone: rows, the paper's claims, a chart."""
    from daisnet.atomic import refuse_overlap
    from daisnet.pipeline.report import write_report
    from daisnet.pipeline.study import read_runs

    with user_errors():
        refuse_overlap([out, chart], [runs_file])  # `--out` given the runs file would replace the study with a report
        records = read_runs(runs_file)
        if not records:
            raise InputError("no runs recorded yet: run `daisnet ablation` first", path=runs_file)
        write_report(records, out, chart, str(runs_file))
        typer.echo(f"{out}: {len(records)} runs; chart {chart}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
