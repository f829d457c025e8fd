"""Stage `rasterize`: KINS-format annotations -> a prepared Zarr store (images, amodal/visible masks, boxes).

    python -m stages.rasterize data/raw/${data.dataset} data/prepared/train.zarr --split train   (dvc.yaml)
    daisnet rasterize ANNOTATIONS.json data/prepared/train.zarr --images DIR [--depth DIR]     (any files)

SOURCE is a dataset folder (the synth stage's output, or the KINS files laid out as docs/kins.md
says; the layout is recognised) or an annotation file. The folder form lets one dvc.yaml serve
both datasets: KINS has no depth folder, and DVC's templating cannot drop an option.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.data.rasterize import RasterizeConfig, rasterize as rasterize_files, report_path
from daisnet.errors import InputError, exit_on_input_error
from daisnet.params import Params
from stages.common import DEFAULT_PARAMS, ParamsFile, Writes, run, stage_params

SPLITS = ("train", "val")
# KINS, per split: annotation files in order of preference (2020 release first), then the images folder.
KINS_FILES = {
    "train": (("update_train_2020.json", "instances_train.json"), "training/image_2"),
    "val": (("update_test_2020.json", "instances_val.json"), "testing/image_2"),
}


def dataset_files(root: Path, split: str) -> tuple[Path, Path, Path | None]:
    """(annotations, images folder, depth folder or None) of a split of a dataset folder."""
    if split not in SPLITS:
        raise InputError(f"--split must be one of {list(SPLITS)}, got {split!r}", path=root)
    synth = root / "annotations" / f"{split}.json"
    if synth.is_file():  # the synth stage's layout (daisnet/data/synth/dataset.py)
        return synth, root / split / "image_2", root / split / "depth"
    names, images = KINS_FILES[split]
    for name in names:
        if (root / "annotations" / name).is_file():
            return root / "annotations" / name, root / images, None
    raise InputError(f"no annotations for the {split} split: expected annotations/{split}.json (synthetic) or "
                     f"annotations/{' or annotations/'.join(names)} (KINS, docs/kins.md)", path=root)


def rasterize_config(params: Params) -> RasterizeConfig:
    """Sharding and parallelism: `rasterize.*`."""
    return RasterizeConfig(**params.rasterize.model_dump())


# The store, and the report written beside it (daisnet.data.rasterize.report_path): replaced only if it is one.
OUT_STORE_WITH_REPORT = Writes("store", lambda out, _: [(report_path(Path(out)), "report")])


def rasterize(
    source: Annotated[Path, typer.Argument(help="A dataset folder (data/raw/synth, data/raw/kins; with --split) "
                                                "or a KINS annotation JSON (2019 or 2020 release; with --images).")],
    out: Annotated[Path, typer.Argument(help="Prepared store to write (replaced atomically), e.g. data/prepared/train.zarr; "
                                             "its report goes beside it (train.report.json)."), OUT_STORE_WITH_REPORT],
    split: Annotated[str | None, typer.Option(help="With a dataset folder: the split to rasterize (train or val).")] = None,
    images: Annotated[Path | None, typer.Option(help="With an annotation file: the folder its file_name are relative to.")] = None,
    depth: Annotated[Path | None, typer.Option(help="With an annotation file: ground-truth depth PNGs (uint16, metres x 256), "
                                                    "named as the images.")] = None,
    params: ParamsFile = DEFAULT_PARAMS,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes (0: in this process) [rasterize.workers].")] = None,
    images_per_shard: Annotated[int | None, typer.Option(help="Images per shard file [rasterize.images_per_shard].")] = None,
    instances_per_shard: Annotated[int | None, typer.Option(help="Instance masks per shard file.")] = None,
    batch_images: Annotated[int | None, typer.Option(help="Images held in memory at once by a worker.")] = None,
    batch_instances: Annotated[int | None, typer.Option(help="Masks held in memory at once by a worker.")] = None,
) -> None:
    """Rasterize KINS annotations into the prepared Zarr store (images, amodal/visible masks, boxes)."""
    with exit_on_input_error():
        config = rasterize_config(stage_params(params, {
            "rasterize.workers": workers, "rasterize.images_per_shard": images_per_shard,
            "rasterize.instances_per_shard": instances_per_shard, "rasterize.batch_images": batch_images,
            "rasterize.batch_instances": batch_instances}))
        if source.is_dir():
            if images is not None or depth is not None:
                raise InputError("--images and --depth go with an annotation file; a dataset folder has its own",
                                 path=source)
            if split is None:
                raise InputError("a dataset folder needs --split train or --split val", path=source)
            annotations, images, depth = dataset_files(source, split)
        else:
            if images is None:
                raise InputError("an annotation file needs --images (the folder its file_name are relative to)",
                                 path=source)
            if split is not None:
                raise InputError("--split goes with a dataset folder, not an annotation file", path=source)
            annotations = source
        report = rasterize_files(annotations, images, out, depth_dir=depth, config=config, progress=sys.stderr.isatty())
        print(f"{out}: {report['images']} images, {report['instances']} instances (KINS-{report['release']}), "
              f"skipped {report['skipped']}, per class {report['per_class']}")


if __name__ == "__main__":
    run(rasterize)
