"""Stage `features`: depth stores -> features stores (§3.3-3.4): log depth, regional and normal-tangent maps.

    python -m stages.features data/depth/train.zarr data/depth/val.zarr --out-dir data/features   (dvc.yaml)

The first store's log-depth statistics (the train split's) normalize every store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.errors import InputError, exit_on_input_error
from daisnet.features.store import FeatureParams, compute_features
from daisnet.params import Features
from stages.common import DEFAULT_PARAMS, ParamsFile, Writes, run, stage_params


def feature_params(features: Features) -> FeatureParams:
    """The maps' settings: `features.regional.*` (`normalize` -> `normalize_regional`), `features.normals.*`,
    `features.precision`."""
    regional = features.regional.model_dump()
    normalize = regional.pop("normalize")
    return FeatureParams(**regional, normalize_regional=normalize, **features.normals.model_dump(),
                         precision=features.precision).validate()


# OUT_DIR holds one store per input, named as the input (it is never replaced itself).
OUT_STORES_INSIDE = Writes("parent", lambda out, arguments: [(Path(out) / Path(d).name, "store")
                                                             for d in arguments["depth"]])


def features(
    depth: Annotated[list[Path], typer.Argument(help="Depth stores (data/depth/train.zarr data/depth/val.zarr); "
                                                     "the first one's statistics normalize all.")],
    out_dir: Annotated[Path, typer.Option(help="Each input X.zarr is written to OUT_DIR/X.zarr (replaced atomically)."),
                       OUT_STORES_INSIDE],
    params: ParamsFile = DEFAULT_PARAMS,
    step: Annotated[float | None, typer.Option(help="Ds: regional step in metres (eq. 4) [features.regional.step].")] = None,
    offsets: Annotated[int | None, typer.Option(help="Dm: regional maps, offset by Ds / Dm [features.regional.offsets].")] = None,
    floor: Annotated[str | None, typer.Option(help="soft (eq. 5) or hard (eq. 4) floor [features.regional.floor].")] = None,
    kernel: Annotated[int | None, typer.Option(help="Odd generalized Sobel kernel size (eq. 17-21) [features.normals.kernel].")] = None,
    dz: Annotated[float | None, typer.Option(help="Dz of the tangent (eq. 15) [features.normals.dz].")] = None,
    normalize_kernel: Annotated[bool | None, typer.Option(help="Divide the kernel by N^2 - 1 (slopes per pixel).")] = None,
    precision: Annotated[str | None, typer.Option(help="Stored dtype: float16 or float32 [features.precision].")] = None,
    workers: Annotated[int | None, typer.Option(help="Local Dask worker processes (0: in process) [features.workers].")] = None,
) -> None:
    """Depth features (§3.3-3.4): log depth, regional maps and normal-tangent maps per image."""
    with exit_on_input_error():
        names = [path.name for path in depth]
        if len(set(names)) != len(names):
            raise InputError(f"depth stores must have distinct names, got {names}")
        settings = stage_params(params, {
            "features.regional.step": step, "features.regional.offsets": offsets, "features.regional.floor": floor,
            "features.normals.kernel": kernel, "features.normals.dz": dz,
            "features.normals.normalize_kernel": normalize_kernel, "features.precision": precision,
            "features.workers": workers}).features
        stats = compute_features({path.name: path for path in depth}, {path.name: out_dir / path.name for path in depth},
                                 feature_params(settings), stats_from=depth[0], workers=settings.workers,
                                 progress=sys.stderr.isatty())
        print(f"log10 depth of {depth[0]}: mean {stats.mean:.4f}, std {stats.std:.4f} over {stats.count} pixels")


if __name__ == "__main__":
    run(features)
