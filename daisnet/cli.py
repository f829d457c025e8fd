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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
