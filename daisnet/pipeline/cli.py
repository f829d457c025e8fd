"""The `daisnet` command: every pipeline stage as a sub-command with explicit paths.

A stage's command reads its defaults from the same params file as the DVC stage (`--params`,
default params.yaml) and builds its settings with the stage's own code; an option given on the
command line overrides that one value. So `daisnet synth` renders what the `synth` stage renders
(tests/test_cli_params.py).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from daisnet.atomic import refuse_overlap
from daisnet.errors import InputError, exit_on_input_error

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline.",
)


@app.callback()
def _group() -> None:
    """DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline."""


PARAMS_HELP = "Params file: every default of this command comes from its sections (as the DVC stage)."


def params_with(path: Path, overrides: dict[str, object]) -> dict:
    """The params file with the options given on the command line (dotted keys, None = not given)."""
    from daisnet.params import load_params

    params = load_params(path)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise InputError(f"missing section {key!r} (needed by the option for {dotted})", path=path)
            node = node[key]
        node[last] = value
    return params


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user's mistake (or a full disk, a read-only folder) becomes one line on stderr and exit
    status 2, never a traceback: the stages' own handler (daisnet.errors.user_error_line)."""
    with exit_on_input_error():
        yield


@app.command()
def synth(
    out: Path = typer.Option(Path("data/raw/synth"), help="Output folder (replaced atomically)."),
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    train_images: int = typer.Option(None, min=1, help="Images in the train split [synth.train_images]."),
    val_images: int = typer.Option(None, min=1, help="Images in the val split [synth.val_images]."),
    height: int = typer.Option(None, min=64, max=4096, help="Image height in px (KINS: 375) [synth.height]."),
    width: int = typer.Option(None, min=128, max=4096, help="Image width in px (KINS: 1242) [synth.width]."),
    max_depth: float = typer.Option(None, min=0.1, max=255.0, help="Depth clip in metres [synth.max_depth]."),
    min_visible_area: int = typer.Option(None, min=1, help="Objects with fewer visible px are not annotated."),
    street_fraction: float = typer.Option(None, min=0.0, max=1.0, help="Share of street scenes [synth.scene]."),
    line_of_sight: float = typer.Option(None, min=0.0, max=1.0, help="Share of objects placed on another's line of sight."),
    seed: int = typer.Option(None, help="Random seed: same seed, same bytes [seed]."),
    workers: int = typer.Option(None, min=1, help="Rendering processes [synth.workers]."),
) -> None:
    """Render the synthetic KINS-format dataset (§3.2): RGB, metric depth, amodal and visible masks."""
    from daisnet.data.synth.dataset import config_from_params, format_histogram, generate

    with user_errors():
        values = params_with(params, {
            "synth.train_images": train_images, "synth.val_images": val_images, "synth.height": height,
            "synth.width": width, "synth.max_depth": max_depth, "synth.min_visible_area": min_visible_area,
            "synth.scene.street_fraction": street_fraction, "synth.scene.line_of_sight": line_of_sight,
            "seed": seed, "synth.workers": workers})
        config = config_from_params(values["synth"], seed=values["seed"])
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
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    workers: int = typer.Option(None, min=0, help="Dask worker processes (0: in this process) [rasterize.workers]."),
    images_per_shard: int = typer.Option(None, min=1, help="Images per shard file [rasterize.images_per_shard]."),
    instances_per_shard: int = typer.Option(None, min=1, help="Instance masks per shard file."),
    batch_images: int = typer.Option(None, min=1, help="Images held in memory at once by a worker."),
    batch_instances: int = typer.Option(None, min=1, help="Masks held in memory at once by a worker."),
) -> None:
    """Rasterize KINS annotations into the prepared Zarr store (images, amodal/visible masks, boxes)."""
    from daisnet.data.rasterize import rasterize as run
    from stages.rasterize import config_from_params

    with user_errors():
        config = config_from_params(params_with(params, {
            "rasterize.workers": workers, "rasterize.images_per_shard": images_per_shard,
            "rasterize.instances_per_shard": instances_per_shard, "rasterize.batch_images": batch_images,
            "rasterize.batch_instances": batch_instances}))
        report = run(annotations, images, out, depth_dir=depth, config=config, progress=sys.stderr.isatty())
        typer.echo(f"{out}: {report['images']} images, {report['instances']} instances (KINS-{report['release']}); "
                   f"skipped {report['skipped']}")


@app.command("depth")
def depth_cmd(
    prepared: Path = typer.Option(..., help="Prepared store (data/prepared/{split}.zarr)."),
    out: Path = typer.Option(..., help="Depth store to write (replaced atomically)."),
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    source: str = typer.Option(None, help="ground_truth: copy `depth_gt` (synthetic data); bts: predict [depth.source]."),
    checkpoint: Path = typer.Option(None, help="BTS checkpoint: ours or an official file [depth.checkpoint]."),
    encoder: str = typer.Option(None, help="Encoder of an official file: resnet50_bts or densenet161_bts."),
    max_depth: float = typer.Option(None, min=0.1, help="Depth range of an official file (KITTI 80, NYU 10)."),
    focal: float = typer.Option(None, min=1.0, help="Focal length (px) where the store has none (real KINS)."),
    focal_reference: float = typer.Option(None, help="Official KITTI files scale by focal / this."),
    batch_size: int = typer.Option(None, min=1, help="Images per forward (bounds memory) [depth.batch_size]."),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N [depth.device]."),
) -> None:
    """Write a depth store: metric depth per image on the prepared canvas (ground truth or BTS)."""
    from daisnet.depth.store import write_depth_store
    from stages.depth import predictor

    with user_errors():
        values = params_with(params, {
            "depth.source": source, "depth.checkpoint": None if checkpoint is None else str(checkpoint),
            "depth.encoder": encoder, "depth.max_depth": max_depth, "depth.focal": focal,
            "depth.focal_reference": focal_reference, "depth.batch_size": batch_size, "depth.device": device})
        source_name, predict_fn, attrs = predictor(values)
        typer.echo(write_depth_store(prepared, out, predict_fn, source=source_name, attrs=attrs,
                                     progress=sys.stderr.isatty()))


@app.command("train-depth")
def train_depth_cmd(
    train: Path = typer.Option(Path("data/prepared/train.zarr"), help="Prepared train store with `depth_gt`."),
    val: Path = typer.Option(Path("data/prepared/val.zarr"), help="Prepared val store with `depth_gt`."),
    out: Path = typer.Option(Path("data/models/bts.pt"), help="Checkpoint to write."),
    metrics: Path = typer.Option(Path("reports/depth.json"), help="Val metrics (JSON) to write."),
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    encoder: str = typer.Option(None, help="resnet18_bts, resnet34_bts, resnet50_bts, densenet161_bts [depth.encoder]."),
    num_features: int = typer.Option(None, min=32, help="Decoder width (official: 512) [depth.train.num_features]."),
    iterations: int = typer.Option(None, min=1, help="[depth.train.iterations]"),
    batch_size: int = typer.Option(None, min=1, help="[depth.train.batch_size]"),
    lr: float = typer.Option(None, min=0.0, help="[depth.train.lr]"),
    input_scale: float = typer.Option(None, min=0.01, max=1.0, help="Train and predict at this image scale."),
    max_depth: float = typer.Option(None, min=0.1, help="[depth.max_depth]"),
    seed: int = typer.Option(None, help="[seed]"),
) -> None:
    """Train BTS on synthetic ground-truth depth (§3.3); report Eigen metrics on val and the baseline."""
    from daisnet.depth.train import train_bts
    from stages.train_depth import config_from_params

    with user_errors():
        config = config_from_params(params_with(params, {
            "depth.encoder": encoder, "depth.train.num_features": num_features, "depth.train.iterations": iterations,
            "depth.train.batch_size": batch_size, "depth.train.lr": lr, "depth.train.input_scale": input_scale,
            "depth.max_depth": max_depth, "seed": seed}))
        result = train_bts(train, val, out, metrics, config, progress=sys.stderr.isatty(), log=typer.echo)
        typer.echo(f"val abs rel {result['val']['abs_rel']:.3f}, baseline {result['baseline_pixel_mean']['abs_rel']:.3f}")


@app.command()
def features(
    depth: list[Path] = typer.Argument(..., help="Depth stores (e.g. data/depth/train.zarr data/depth/val.zarr)."),
    out_dir: Path = typer.Option(Path("data/features"), help="Each input X.zarr is written to OUT_DIR/X.zarr."),
    stats_from: Path = typer.Option(None, help="Store whose log-depth statistics normalize all (default: the first)."),
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    step: float = typer.Option(None, help="Ds: regional step in metres (eq. 4) [features.regional.step]."),
    offsets: int = typer.Option(None, help="Dm: regional maps, offset by Ds / Dm [features.regional.offsets]."),
    floor: str = typer.Option(None, help="soft (eq. 5) or hard (eq. 4) floor [features.regional.floor]."),
    kernel: int = typer.Option(None, help="Odd generalized Sobel kernel size (eq. 17-21) [features.normals.kernel]."),
    dz: float = typer.Option(None, help="Dz of the tangent (eq. 15) [features.normals.dz]."),
    normalize_kernel: bool = typer.Option(None, help="Divide the kernel by N^2 - 1 (slopes per pixel)."),
    precision: str = typer.Option(None, help="Stored dtype: float16 or float32 [features.precision]."),
    workers: int = typer.Option(None, min=0, help="Local Dask worker processes (0: in process) [features.workers]."),
) -> None:
    """Depth features (§3.3-3.4): log depth, regional maps and normal-tangent maps per image."""
    from daisnet.features.store import FeatureParams, compute_features

    with user_errors():
        names = [path.name for path in depth]
        if len(set(names)) != len(names):
            raise InputError(f"depth stores must have distinct names, got {names}")
        values = params_with(params, {
            "features.regional.step": step, "features.regional.offsets": offsets, "features.regional.floor": floor,
            "features.normals.kernel": kernel, "features.normals.dz": dz,
            "features.normals.normalize_kernel": normalize_kernel, "features.precision": precision,
            "features.workers": workers})["features"]
        stats_from = stats_from or depth[0]
        stats = compute_features({path.name: path for path in depth}, {path.name: out_dir / path.name for path in depth},
                                 FeatureParams.from_params(values), stats_from=stats_from,
                                 workers=int(values.get("workers", 2)), progress=sys.stderr.isatty())
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
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    depth_mode: str = typer.Option(None, "--depth-mode", help="Local depth in the code: all | visible | none [shape_prior.depth]."),
    iterations: int = typer.Option(None, min=1, help="[shape_prior.iterations]"),
    batch_size: int = typer.Option(None, min=1, help="[shape_prior.batch_size]"),
    lr: float = typer.Option(None, help="[shape_prior.lr]"),
    seed: int = typer.Option(None, help="[seed]"),
    metrics: Path = typer.Option(None, help="Write the reconstruction metrics to this JSON."),
) -> None:
    """Train the 3D shape prior's autoencoder (§3.8) on ground-truth amodal crops + local depth."""
    from daisnet.shape.run import run_shape_ae
    from stages.shape_ae import config_from_params

    with user_errors():
        if (val_prepared is None) != (val_depth is None):
            raise InputError("give both --val-prepared and --val-depth, or neither")
        config = config_from_params(params_with(params, {
            "shape_prior.depth": depth_mode, "shape_prior.iterations": iterations,
            "shape_prior.batch_size": batch_size, "shape_prior.lr": lr, "seed": seed}))
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
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    clusters: int = typer.Option(None, min=1, help="K: codewords per class (the paper: 1024) [shape_prior.clusters]."),
    copies: int = typer.Option(None, min=1, max=8, help="Flip/rotation copies of each crop [shape_prior.copies]."),
    kmeans_iterations: int = typer.Option(None, min=1, help="MiniBatchKMeans max_iter [shape_prior.kmeans_iterations]."),
    seed: int = typer.Option(None, help="[seed]"),
    val_prepared: Path = typer.Option(None, help="Prepared val store, for the nearest-codeword IoU."),
    val_depth: Path = typer.Option(None, help="Its depth store."),
    metrics: Path = typer.Option(None, help="Write the build figures to this JSON."),
) -> None:
    """Build the shape codebook (§3.8): per-class k-means of the train crops' codes and copies."""
    from daisnet.shape.run import run_codebook
    from stages.codebook import config_from_params

    with user_errors():
        if (val_prepared is None) != (val_depth is None):
            raise InputError("give both --val-prepared and --val-depth, or neither")
        config = config_from_params(params_with(params, {
            "shape_prior.clusters": clusters, "shape_prior.copies": copies,
            "shape_prior.kmeans_iterations": kmeans_iterations, "seed": seed}))
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
    params: Path = typer.Option(Path("params.yaml"), help="Params file: model, train, augment sections (as the stage)."),
    work_dir: Path = typer.Option(Path("data/cache/train"), help="Checkpoints for resuming."),
    shape_ae: Path = typer.Option(Path("data/models/shape_ae.pt"), help="Shape autoencoder (model.shape_prior: on)."),
    codebook: Path = typer.Option(Path("data/models/codebook.npz"), help="Shape codebook (model.shape_prior: on)."),
) -> None:
    """Train DAISnet, as the `train` stage does (`train.processes` processes); resumes from WORK_DIR/last.pt."""
    from daisnet.params import load_params
    from stages.train import TrainPaths, run_training

    with user_errors():
        run_training(load_params(params), TrainPaths(prepared, features, depth, out, work_dir,
                                                     shape_ae=shape_ae, codebook=codebook))
        typer.echo(f"trained -> {out}")


@app.command("evaluate")
def evaluate_cmd(
    model: Path = typer.Argument(..., help="DAISnet checkpoint."),
    prepared: Path = typer.Argument(..., help="Prepared store of the split to evaluate."),
    out: Path = typer.Option(Path("data/results/eval"), help="Output folder (metrics, predictions, plots, samples), "
                             "replaced as a whole: it must be new, empty or an earlier evaluation's; else refused."),
    features: Path = typer.Option(None, help="Features store of the split."),
    depth: Path = typer.Option(None, help="Depth store of the split."),
    params: Path = typer.Option(Path("params.yaml"), help=PARAMS_HELP),
    batch_size: int = typer.Option(None, min=1, help="[evaluate.batch_size]"),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:1, ... [evaluate.device]"),
) -> None:
    """COCO evaluation (amodal and visible masks, Table 1 columns, per class, by occlusion)."""
    from daisnet.data.torch_dataset import AmodalDataset
    from daisnet.evaluate.inference import predict_split
    from daisnet.evaluate.run import evaluate_predictions, format_metrics
    from daisnet.model.checkpoint import load_model
    from daisnet.device import resolve_device

    with user_errors():
        settings = params_with(params, {"evaluate.batch_size": batch_size, "evaluate.device": device})["evaluate"]
        batch_size, dev = int(settings["batch_size"]), resolve_device(str(settings["device"]), "evaluate --device")
        refuse_overlap([out], [model, prepared, features, depth])
        net = load_model(model, dev)
        dataset = AmodalDataset(prepared, net.config, features, depth)
        metrics = evaluate_predictions(dataset.store, predict_split(net, dataset, batch_size, dev), out)
        typer.echo(format_metrics(metrics))


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
