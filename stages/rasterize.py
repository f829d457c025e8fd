"""Stage `rasterize`: KINS-format annotations -> data/prepared/{split}.zarr (one split per call).

`data.dataset` picks the input: `synth` (the synth stage's output, with ground-truth depth) or
`kins` (the real files under data/raw/kins, laid out as docs/kins.md says).
"""

from __future__ import annotations

import sys
from pathlib import Path

from daisnet.data.rasterize import RasterizeConfig, rasterize
from daisnet.errors import InputError
from daisnet.params import section
from stages.common import run_stage

SPLITS = ("train", "val")
KINS_ROOT = Path("data/raw/kins")
# Per split: annotation files in order of preference (2020 release first), then the images folder.
KINS_FILES = {
    "train": (("update_train_2020.json", "instances_train.json"), "training/image_2"),
    "val": (("update_test_2020.json", "instances_val.json"), "testing/image_2"),
}


def inputs(dataset: str, split: str) -> tuple[Path, Path, Path | None]:
    """(annotations, images folder, depth folder or None) of a split."""
    if dataset == "synth":
        root = Path("data/raw/synth")
        return root / "annotations" / f"{split}.json", root / split / "image_2", root / split / "depth"
    if dataset == "kins":
        names, images = KINS_FILES[split]
        for name in names:
            if (KINS_ROOT / "annotations" / name).is_file():
                return KINS_ROOT / "annotations" / name, KINS_ROOT / images, None
        raise InputError(f"no KINS annotations for {split}: put {' or '.join(names)} in "
                         f"{KINS_ROOT / 'annotations'} (see docs/kins.md)", path=KINS_ROOT)
    raise InputError(f"data.dataset must be synth or kins, found {dataset!r}", path="params.yaml")


def config_from_params(params: dict) -> RasterizeConfig:
    values = dict(section(params, "rasterize"))
    unknown = set(values) - set(RasterizeConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown rasterize params: {sorted(unknown)}", path="params.yaml")
    config = RasterizeConfig(**values)
    config.validate()
    return config


def main(params: dict, split: str) -> None:
    annotations, images, depth = inputs(section(params, "data.dataset"), split)
    report = rasterize(annotations, images, Path("data/prepared") / f"{split}.zarr", depth_dir=depth,
                       config=config_from_params(params), progress=sys.stderr.isatty())
    print(f"{split}: {report['images']} images, {report['instances']} instances (KINS-{report['release']}), "
          f"skipped {report['skipped']}, per class {report['per_class']}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SPLITS:
        sys.exit(f"usage: python -m stages.rasterize {{{','.join(SPLITS)}}}")
    run_stage(lambda params: main(params, sys.argv[1]))
