"""The `daisnet` command: every pipeline stage, and the commands around the pipeline.

A stage's command is the stage's own function (stages/<stage>.py), the one dvc.yaml runs: it
reads its settings from the params file (`--params`, default params.yaml) and an option given on
the command line overrides that one value. The other commands (inspect, predict, ablation, score,
bounds, report) work on the pipeline's artifacts and need no params file.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from daisnet.errors import exit_on_input_error
from stages.codebook import codebook
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
app.command("synth")(synth)
app.command("rasterize")(rasterize)
app.command("depth")(depth)
app.command("train-depth")(train_depth)
app.command("features")(features)
app.command("shape-ae")(shape_ae)
app.command("codebook")(codebook)
app.command("train")(train)
app.command("evaluate")(evaluate)


@app.command("kitti")
def kitti_cmd(
    file_list: Path = typer.Argument(..., help="BTS file list: 'image depth focal' per line (eigen_train_files_with_gt.txt)."),
    data_path: Path = typer.Argument(..., help="Folder the images are relative to (KITTI raw data)."),
    gt_path: Path = typer.Argument(..., help="Folder the depth PNGs are relative to (KITTI depth ground truth)."),
    out: Path = typer.Argument(..., help="Depth-training store to write (replaced atomically), for `daisnet train-depth`."),
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
def inspect_cmd(
    store: Path = typer.Argument(..., help="A prepared store (data/prepared/val.zarr), or a shape codebook "
                                           "(data/models/codebook.npz: its prototypes as a grid)."),
    index: int = typer.Option(0, help="Image index in the store."),
    out: Path = typer.Option(None, help="Write the image with its masks (and --array panels) to this PNG."),
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
def predict_cmd(
    images: list[Path] = typer.Argument(..., help="Image files."),
    model: Path = typer.Option(Path("data/models/daisnet.pt"), help="DAISnet checkpoint."),
    out: Path = typer.Option(Path("predictions"), help="Output folder: an overlay PNG and a JSON per image, "
                             "replaced as a whole: it must be new, empty or an earlier prediction's; else refused."),
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
    rows: str = typer.Option("R,R+D,R+N,R+O", help="Comma-separated Table 1 rows (see docs/ablation.md)."),
    weights: str = typer.Option("random", help="random | imagenet"),
    profile: str = typer.Option("small", help="smoke | small | default | gpu | paper (docs/profiles.md)."),
    dry_run: bool = typer.Option(False, help="Print the dvc commands without running them."),
    jobs: int = typer.Option(1, min=1, help="Experiments run at once."),
) -> None:
    """Queue Table 1 rows as DVC experiments and run them (`dvc exp show` / `daisnet report` after)."""
    from daisnet.pipeline.ablation import run

    with user_errors():
        for line in run([r.strip() for r in rows.split(",") if r.strip()], weights, profile, not dry_run, jobs):
            typer.echo(line)


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
def report_cmd(
    out: Path = typer.Option(Path("reports/ablation.md"), help="Markdown report to write."),
    chart: Path = typer.Option(Path("reports/ablation.png"), help="Bar chart PNG (paper vs ours)."),
    exp_json: Path = typer.Option(None, help="Saved `dvc exp show --json` output (default: run it here)."),
    metrics_file: str = typer.Option(None, help="Metrics file of the evaluate stage (default: found by content)."),
    include_workspace: bool = typer.Option(False, help="Also use the uncommitted workspace's results."),
) -> None:
    """Our experiments next to the paper's Table 1 (rows not run are listed as such), and a bar chart."""
    from daisnet.pipeline.experiments import parse_exp_show, read_exp_show, run_exp_show
    from daisnet.pipeline.report import write_report

    with user_errors():
        payload = read_exp_show(exp_json) if exp_json else run_exp_show(".")
        runs = parse_exp_show(payload, metrics_file, source=exp_json or "dvc exp show --json")
        rows = write_report(runs, out, chart, include_workspace)
        ran = sum(row.run is not None for row in rows)
        typer.echo(f"{out}: {ran} of {len(rows)} rows run ({len(runs)} runs considered); chart {chart}")

def main() -> None:
    app()


if __name__ == "__main__":
    main()
