"""Stage `synth`: render the synthetic KINS-format dataset (§3.2): RGB, metric depth, amodal and visible masks.

    python -m stages.synth data/raw/synth --report reports/synth.json     (dvc.yaml; = `daisnet synth`)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.data.synth.dataset import SynthConfig, format_histogram, generate
from daisnet.data.synth.scene import SceneConfig
from daisnet.errors import exit_on_input_error
from daisnet.params import Params
from stages.common import DEFAULT_PARAMS, OUT_FILE, OUT_FOLDER, ParamsFile, run, stage_params, write_json


def synth_config(params: Params) -> SynthConfig:
    """The renderer's settings: `synth.*` and `seed`."""
    values = params.synth.model_dump()
    scene = {key: tuple(value) if isinstance(value, list) else value for key, value in values.pop("scene").items()}
    return SynthConfig(**values, seed=params.seed, scene=SceneConfig(**scene))


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder, replaced atomically (the stage: data/raw/synth)."), OUT_FOLDER],
    report: Annotated[Path | None, typer.Option(help="Also write the dataset's report (JSON) here."), OUT_FILE] = None,
    params: ParamsFile = DEFAULT_PARAMS,
    train_images: Annotated[int | None, typer.Option(help="Images in the train split [synth.train_images].")] = None,
    val_images: Annotated[int | None, typer.Option(help="Images in the val split [synth.val_images].")] = None,
    height: Annotated[int | None, typer.Option(help="Image height in px (KINS: 375) [synth.height].")] = None,
    width: Annotated[int | None, typer.Option(help="Image width in px (KINS: 1242) [synth.width].")] = None,
    max_depth: Annotated[float | None, typer.Option(help="Depth clip in metres [synth.max_depth].")] = None,
    min_visible_area: Annotated[int | None, typer.Option(help="Objects with fewer visible px are not annotated.")] = None,
    street_fraction: Annotated[float | None, typer.Option(help="Share of street scenes [synth.scene].")] = None,
    line_of_sight: Annotated[float | None, typer.Option(help="Share of objects placed on another's line of sight.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same bytes [seed].")] = None,
    workers: Annotated[int | None, typer.Option(help="Rendering processes [synth.workers].")] = None,
) -> None:
    """Render the synthetic KINS-format dataset (§3.2): RGB, metric depth, amodal and visible masks."""
    with exit_on_input_error():
        values = stage_params(params, {
            "synth.train_images": train_images, "synth.val_images": val_images, "synth.height": height,
            "synth.width": width, "synth.max_depth": max_depth, "synth.min_visible_area": min_visible_area,
            "synth.scene.street_fraction": street_fraction, "synth.scene.line_of_sight": line_of_sight,
            "seed": seed, "synth.workers": workers})
        result = generate(synth_config(values), out, progress=sys.stderr.isatty())
        if report is not None:
            write_json(report, result)
        for split in ("train", "val"):
            print(f"{split}: {result[split]['images']} images, {result[split]['instances']} instances, "
                  f"per class {result[split]['per_class']}")
            print(format_histogram(result[split]["occlusion"]))


if __name__ == "__main__":
    run(synth)
