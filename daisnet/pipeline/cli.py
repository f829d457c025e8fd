"""The `daisnet` command: every pipeline stage as a sub-command with explicit paths.

DVC stages (stages/*.py) call the same library functions with values read from params.yaml.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from daisnet.errors import InputError

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
    """A user's mistake becomes one line on stderr and exit status 2, never a traceback."""
    try:
        yield
    except InputError as exc:
        typer.echo(f"error: {exc.message()}", err=True)
        raise typer.Exit(2) from None


@app.command()
def synth(
    out: Path = typer.Option(Path("data/raw/synth"), help="Output folder (replaced atomically)."),
    train_images: int = typer.Option(400, min=1, help="Images in the train split."),
    val_images: int = typer.Option(100, min=1, help="Images in the val split."),
    height: int = typer.Option(192, min=64, max=4096, help="Image height in px (KINS: 375)."),
    width: int = typer.Option(640, min=128, max=4096, help="Image width in px (KINS: 1242)."),
    max_depth: float = typer.Option(80.0, min=0.1, max=255.0, help="Depth clip in metres (sky = max depth)."),
    min_visible_area: int = typer.Option(16, min=1, help="Objects with fewer visible px are not annotated."),
    street_fraction: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of street scenes (rest: open road)."),
    line_of_sight: float = typer.Option(0.7, min=0.0, max=1.0, help="Share of objects placed on the line of sight of another (occlusion)."),
    seed: int = typer.Option(0, help="Random seed: same seed, same bytes."),
    workers: int = typer.Option(2, min=1, help="Rendering processes."),
) -> None:
    """Render the synthetic KINS-format dataset (§3.2): RGB, metric depth, amodal and visible masks."""
    from daisnet.data.synth.dataset import SynthConfig, format_histogram, generate
    from daisnet.data.synth.scene import SceneConfig

    with user_errors():
        config = SynthConfig(
            train_images=train_images, val_images=val_images, height=height, width=width,
            max_depth=max_depth, min_visible_area=min_visible_area, seed=seed, workers=workers,
            scene=SceneConfig(street_fraction=street_fraction, line_of_sight=line_of_sight),
        )
        report = generate(config, out, progress=sys.stderr.isatty())
        for split in ("train", "val"):
            typer.echo(f"{split}: {report[split]['images']} images, {report[split]['instances']} instances")
            typer.echo(format_histogram(report[split]["occlusion"]))


@app.command()
def rasterize(
    annotations: Path = typer.Argument(..., help="KINS annotation JSON (2019 or 2020 release, detected)."),
    images: Path = typer.Argument(..., help="Folder the images' file_name are relative to (KINS: training/image_2)."),
    out: Path = typer.Argument(..., help="Prepared store to write (replaced atomically), e.g. data/prepared/train.zarr."),
    depth: Path = typer.Option(None, help="Ground-truth depth PNGs (uint16, metres x 256), same names as the images."),
    workers: int = typer.Option(2, min=0, help="Dask worker processes (0: in this process); see DASK_SCHEDULER_ADDRESS."),
    images_per_shard: int = typer.Option(128, min=1, help="Images per shard file."),
    instances_per_shard: int = typer.Option(1024, min=1, help="Instance masks per shard file."),
    batch_images: int = typer.Option(16, min=1, help="Images held in memory at once by a worker."),
    batch_instances: int = typer.Option(128, min=1, help="Masks held in memory at once by a worker."),
) -> None:
    """Rasterize KINS annotations into the prepared Zarr store (images, amodal/visible masks, boxes)."""
    from daisnet.data.rasterize import RasterizeConfig, rasterize as run

    with user_errors():
        config = RasterizeConfig(workers=workers, images_per_shard=images_per_shard,
                                 instances_per_shard=instances_per_shard, batch_images=batch_images,
                                 batch_instances=batch_instances)
        report = run(annotations, images, out, depth_dir=depth, config=config, progress=sys.stderr.isatty())
        typer.echo(f"{out}: {report['images']} images, {report['instances']} instances (KINS-{report['release']}); "
                   f"skipped {report['skipped']}")


@app.command("depth")
def depth_cmd(
    prepared: Path = typer.Option(..., help="Prepared store (data/prepared/{split}.zarr)."),
    out: Path = typer.Option(..., help="Depth store to write (replaced atomically)."),
    source: str = typer.Option("ground_truth", help="ground_truth: copy `depth_gt` (synthetic data); bts: predict."),
    checkpoint: Path = typer.Option(Path("data/models/bts.pt"), help="BTS checkpoint: ours or an official file."),
    encoder: str = typer.Option("resnet18_bts", help="Encoder of an official file: resnet50_bts or densenet161_bts."),
    max_depth: float = typer.Option(80.0, min=0.1, help="Depth range of an official file (KITTI 80, NYU 10)."),
    focal: float = typer.Option(721.5377, min=1.0, help="Focal length (px) where the store has none (real KINS)."),
    focal_reference: float = typer.Option(715.0873, help="Official KITTI files scale by focal / this."),
    batch_size: int = typer.Option(4, min=1, help="Images per forward (bounds memory)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
) -> None:
    """Write a depth store: metric depth per image on the prepared canvas (ground truth or BTS)."""
    from daisnet.depth.store import write_depth_store

    with user_errors():
        predict_fn, attrs = None, {}
        if source == "bts":
            from stages.depth import bts_predictor_from_params

            predict_fn, attrs = bts_predictor_from_params({"depth": {
                "checkpoint": str(checkpoint), "encoder": encoder, "max_depth": max_depth, "focal": focal,
                "focal_reference": focal_reference, "batch_size": batch_size, "device": device}})
        typer.echo(write_depth_store(prepared, out, predict_fn, source=source, attrs=attrs,
                                     progress=sys.stderr.isatty()))


@app.command("train-depth")
def train_depth_cmd(
    train: Path = typer.Option(Path("data/prepared/train.zarr"), help="Prepared train store with `depth_gt`."),
    val: Path = typer.Option(Path("data/prepared/val.zarr"), help="Prepared val store with `depth_gt`."),
    out: Path = typer.Option(Path("data/models/bts.pt"), help="Checkpoint to write."),
    metrics: Path = typer.Option(Path("reports/depth.json"), help="Val metrics (JSON) to write."),
    encoder: str = typer.Option("resnet18_bts", help="resnet18_bts, resnet34_bts, resnet50_bts, densenet161_bts."),
    num_features: int = typer.Option(128, min=32, help="Decoder width (official: 512)."),
    iterations: int = typer.Option(200, min=1),
    batch_size: int = typer.Option(8, min=1),
    lr: float = typer.Option(2e-3, min=0.0),
    input_scale: float = typer.Option(0.25, min=0.01, max=1.0, help="Train and predict at this image scale."),
    max_depth: float = typer.Option(80.0, min=0.1),
    seed: int = typer.Option(0),
) -> None:
    """Train BTS on synthetic ground-truth depth (§3.3); report Eigen metrics on val and the baseline."""
    from daisnet.depth.train import DepthTrainConfig, train_bts

    with user_errors():
        config = DepthTrainConfig(encoder=encoder, num_features=num_features, iterations=iterations,
                                  batch_size=batch_size, lr=lr, input_scale=input_scale, max_depth=max_depth, seed=seed)
        result = train_bts(train, val, out, metrics, config, progress=sys.stderr.isatty(), log=typer.echo)
        typer.echo(f"val abs rel {result['val']['abs_rel']:.3f}, baseline {result['baseline_pixel_mean']['abs_rel']:.3f}")


@app.command()
def features(
    depth: list[Path] = typer.Argument(..., help="Depth stores (e.g. data/depth/train.zarr data/depth/val.zarr)."),
    out_dir: Path = typer.Option(Path("data/features"), help="Each input X.zarr is written to OUT_DIR/X.zarr."),
    stats_from: Path = typer.Option(None, help="Store whose log-depth statistics normalize all (default: the first)."),
    step: float = typer.Option(3.0, help="Ds: regional step in metres (eq. 4)."),
    offsets: int = typer.Option(4, help="Dm: regional maps, offset by Ds / Dm."),
    floor: str = typer.Option("soft", help="soft (eq. 5) or hard (eq. 4) floor."),
    kernel: int = typer.Option(5, help="Odd generalized Sobel kernel size (eq. 17-21): 3, 5, 21, 71."),
    dz: float = typer.Option(0.8, help="Dz of the tangent (eq. 15)."),
    normalize_kernel: bool = typer.Option(False, help="Divide the kernel by N^2 - 1 (slopes per pixel)."),
    precision: str = typer.Option("float16", help="Stored dtype: float16 or float32."),
    workers: int = typer.Option(2, min=0, help="Local Dask worker processes (0: in process); see DASK_SCHEDULER_ADDRESS."),
) -> None:
    """Depth features (§3.3-3.4): log depth, regional maps and normal-tangent maps per image."""
    from daisnet.features.store import FeatureParams, compute_features

    with user_errors():
        names = [path.name for path in depth]
        if len(set(names)) != len(names):
            raise InputError(f"depth stores must have distinct names, got {names}")
        params = FeatureParams(step=step, offsets=offsets, floor=floor, kernel=kernel, dz=dz,
                               normalize_kernel=normalize_kernel, precision=precision).validate()
        stats_from = stats_from or depth[0]
        stats = compute_features({path.name: path for path in depth}, {path.name: out_dir / path.name for path in depth},
                                 params, stats_from=stats_from, workers=workers, progress=sys.stderr.isatty())
        typer.echo(f"log10 depth of {stats_from}: mean {stats.mean:.4f}, std {stats.std:.4f} ({stats.count} px)")


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


@app.command("shape-ae")
def shape_ae_cmd(
    prepared: Path = typer.Argument(..., help="Prepared train store (data/prepared/train.zarr)."),
    depth: Path = typer.Argument(..., help="Its depth store (data/depth/train.zarr)."),
    out: Path = typer.Option(Path("data/models/shape_ae.pt"), help="Autoencoder checkpoint (written atomically)."),
    val_prepared: Path = typer.Option(None, help="Prepared val store, for reconstruction metrics."),
    val_depth: Path = typer.Option(None, help="Its depth store."),
    depth_mode: str = typer.Option("all", "--depth-mode", help="Local depth in the code: all | visible | none."),
    iterations: int = typer.Option(600, min=1),
    batch_size: int = typer.Option(64, min=1),
    lr: float = typer.Option(0.005),
    seed: int = typer.Option(0),
    metrics: Path = typer.Option(None, help="Write the reconstruction metrics to this JSON."),
) -> None:
    """Train the 3D shape prior's autoencoder (§3.8) on ground-truth amodal crops + local depth."""
    from daisnet.shape.autoencoder import AETrainConfig
    from daisnet.shape.run import run_shape_ae

    with user_errors():
        if (val_prepared is None) != (val_depth is None):
            raise InputError("give both --val-prepared and --val-depth, or neither")
        config = AETrainConfig(depth=depth_mode, iterations=iterations, batch_size=batch_size, lr=lr, seed=seed)
        val = (val_prepared, val_depth) if val_prepared else None
        result = run_shape_ae((prepared, depth), val, out, config, metrics, progress=sys.stderr.isatty())
        typer.echo(f"train IoU {result['train']['iou']:.3f}" + (f", val IoU {result['val']['iou']:.3f}" if val else "")
                   + f" -> {out}")


@app.command("codebook")
def codebook_cmd(
    shape_ae: Path = typer.Argument(..., help="Shape autoencoder (data/models/shape_ae.pt)."),
    prepared: Path = typer.Argument(..., help="Prepared train store."),
    depth: Path = typer.Argument(..., help="Its depth store."),
    out: Path = typer.Option(Path("data/models/codebook.npz"), help="Codebook file (written atomically)."),
    clusters: int = typer.Option(256, min=1, help="K: codewords per class (the paper: 1024)."),
    copies: int = typer.Option(8, min=1, max=8, help="Flip/rotation copies of each crop."),
    kmeans_iterations: int = typer.Option(100, min=1, help="MiniBatchKMeans max_iter."),
    seed: int = typer.Option(0),
    val_prepared: Path = typer.Option(None, help="Prepared val store, for the nearest-codeword IoU."),
    val_depth: Path = typer.Option(None, help="Its depth store."),
    metrics: Path = typer.Option(None, help="Write the build figures to this JSON."),
) -> None:
    """Build the shape codebook (§3.8): per-class k-means of the train crops' codes and copies."""
    from daisnet.shape.codebook import CodebookConfig
    from daisnet.shape.run import run_codebook

    with user_errors():
        if (val_prepared is None) != (val_depth is None):
            raise InputError("give both --val-prepared and --val-depth, or neither")
        config = CodebookConfig(clusters=clusters, copies=copies, kmeans_iterations=kmeans_iterations, seed=seed)
        val = (val_prepared, val_depth) if val_prepared else None
        result = run_codebook(shape_ae, (prepared, depth), out, config, val, metrics, progress=sys.stderr.isatty(),
                              log=typer.echo)
        typer.echo(f"{result['codewords']} codewords in {result['build_seconds']} s -> {out}")


@app.command("train")
def train_cmd(
    prepared: Path = typer.Argument(..., help="Prepared train store (data/prepared/train.zarr)."),
    out: Path = typer.Option(Path("data/models/daisnet.pt"), help="Final checkpoint."),
    features: Path = typer.Option(None, help="Features store (needed for depth, depth_raw, normal inputs)."),
    depth: Path = typer.Option(None, help="Depth store (needed by the occlusion-edge head)."),
    params: Path = typer.Option(Path("params.yaml"), help="Params file: model, train, augment sections."),
    work_dir: Path = typer.Option(Path("data/cache/train"), help="Checkpoints for resuming."),
    shape_ae: Path = typer.Option(Path("data/models/shape_ae.pt"), help="Shape autoencoder (model.shape_prior: on)."),
    codebook: Path = typer.Option(Path("data/models/codebook.npz"), help="Shape codebook (model.shape_prior: on)."),
) -> None:
    """Train DAISnet (under `torchrun` for several processes); resumes from WORK_DIR/last.pt."""
    from daisnet.data.torch_dataset import AmodalDataset
    from daisnet.params import load_params
    from daisnet.train.loop import train
    from daisnet.train.params import configs_from_params, rgb_statistics

    with user_errors():
        model_config, train_config, augment = configs_from_params(load_params(params))
        shape_prior, extra = None, {}
        if model_config.shape_prior == "on":
            from daisnet.hashing import sha256_file
            from daisnet.shape.codebook import configure_shape_prior

            model_config = configure_shape_prior(model_config, shape_ae, codebook)
            shape_prior, extra = (shape_ae, codebook), {"codebook_sha256": sha256_file(codebook)}
        dataset = AmodalDataset(prepared, model_config, features, depth, augment, seed=train_config.seed)
        stats = None if model_config.weights == "imagenet" else rgb_statistics(dataset.store)
        summary = train(model_config, train_config, dataset, out, work_dir, rgb_stats=stats,
                        fingerprint_extra={"train_images": len(dataset), **extra}, shape_prior=shape_prior)
        typer.echo(f"trained {summary['iterations']} iterations in {summary['seconds']:.0f} s -> {out}")


@app.command("evaluate")
def evaluate_cmd(
    model: Path = typer.Argument(..., help="DAISnet checkpoint."),
    prepared: Path = typer.Argument(..., help="Prepared store of the split to evaluate."),
    out: Path = typer.Option(Path("data/results/eval"), help="Output folder (metrics, predictions, plots, samples)."),
    features: Path = typer.Option(None, help="Features store of the split."),
    depth: Path = typer.Option(None, help="Depth store of the split."),
    batch_size: int = typer.Option(2, min=1),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
) -> None:
    """COCO evaluation (amodal and visible masks, Table 1 columns, per class, by occlusion)."""
    from daisnet.data.torch_dataset import AmodalDataset
    from daisnet.evaluate.inference import predict_split
    from daisnet.evaluate.run import evaluate_predictions, format_metrics
    from daisnet.model.checkpoint import load_model
    from daisnet.device import resolve_device

    with user_errors():
        dev = resolve_device(device)
        net = load_model(model, dev)
        dataset = AmodalDataset(prepared, net.config, features, depth)
        metrics = evaluate_predictions(dataset.store, predict_split(net, dataset, batch_size, dev), out)
        typer.echo(format_metrics(metrics))


@app.command("predict")
def predict_cmd(
    images: list[Path] = typer.Argument(..., help="Image files."),
    model: Path = typer.Option(Path("data/models/daisnet.pt"), help="DAISnet checkpoint."),
    out: Path = typer.Option(Path("predictions"), help="Output folder: an overlay PNG and a JSON per image."),
    depth_checkpoint: Path = typer.Option(None, help="BTS checkpoint (ours or official) for depth."),
    depth_encoder: str = typer.Option(None, help="Encoder of an official BTS file: resnet50_bts | densenet161_bts."),
    depth_dir: Path = typer.Option(None, help="Folder of depth PNGs (uint16, m x 256) named like the images."),
    focal: float = typer.Option(721.5377, help="Focal length in px for BTS."),
    score_threshold: float = typer.Option(0.5, min=0.0, max=1.0),
    device: str = typer.Option("cpu"),
) -> None:
    """Depth, features and DAISnet on new images, from a trained checkpoint (no DVC needed)."""
    from daisnet.predict import predict_images

    with user_errors():
        count = predict_images(model, images, out, depth_checkpoint=depth_checkpoint, depth_dir=depth_dir,
                               focal=focal, score_threshold=score_threshold, device=device,
                               depth_encoder=depth_encoder)
        typer.echo(f"{count} images -> {out}")


@app.command("ablation")
def ablation_cmd(
    rows: str = typer.Option("R,R+D,R+N,R+O", help="Comma-separated Table 1 rows (see docs/ablation.md)."),
    weights: str = typer.Option("random", help="random | imagenet"),
    profile: str = typer.Option("small", help="small | default | paper (docs/profiles.md)."),
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
