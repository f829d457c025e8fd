"""What every stage shares: its params file, one-line user errors, and `python -m stages.<stage>`.

A stage is one function with explicit paths in and out: dvc.yaml's `cmd` runs it with the paths
named there (`python -m stages.<stage> PATHS...`), and `daisnet <stage>` is the same function.
Its settings come from the params file (`--params`, default params.yaml, validated by
daisnet/params.py); an option given on the command line overrides that one value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from daisnet.atomic import atomic_output
from daisnet.errors import InputError
from daisnet.params import Params, load_params

PARAMS_HELP = "Params file: every setting of this command comes from it (as the DVC stage); options override."
ParamsFile = Annotated[Path, typer.Option("--params", help=PARAMS_HELP)]
DEFAULT_PARAMS = Path("params.yaml")


def stage_params(path: Path, overrides: dict[str, Any] | None = None) -> Params:
    """The validated params file with the command line's options (dotted keys; None = not given)."""
    return load_params(path, overrides)


def validation_pair(prepared: Path | None, depth: Path | None) -> tuple[Path, Path] | None:
    """(--val-prepared, --val-depth): both or neither."""
    if (prepared is None) != (depth is None):
        raise InputError("give both --val-prepared and --val-depth, or neither")
    return (prepared, depth) if prepared is not None and depth is not None else None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """A stage's JSON file, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


TimingsFile = Annotated[Path | None, typer.Option(
    "--timings", help="Write the wall times (JSON) here, apart from the results: dvc.yaml puts them in logs/timings/, "
                      "which git ignores, so a re-run that moves no result leaves git clean.")]


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the report without its wall times, the wall times): every top-level `*_seconds` key."""
    timings = {k: v for k, v in report.items() if k.endswith("_seconds")}
    return {k: v for k, v in report.items() if k not in timings}, timings


def write_timings(path: Path | None, timings: dict[str, float | int]) -> None:
    """How a run went (wall times, where a resumed run started), where no DVC hash or git diff sees
    it: a re-run that moves no result must leave git clean (docs/metrics.md)."""
    if path is not None:
        write_json(path, {k: round(v, 1) if isinstance(v, float) else v for k, v in timings.items()})


def pick(report: dict[str, Any], keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The registered numbers of a report: {section: {key: value}} for the sections and keys present."""
    return {section: {k: report[section][k] for k in names if k in report[section]}
            for section, names in keys.items() if report.get(section)}


def drop(report: dict[str, Any], keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The report without `pick`'s numbers (they are in the metrics file): its details."""
    out = {}
    for section, value in report.items():
        if section in keys and isinstance(value, dict):
            rest = {k: v for k, v in value.items() if k not in keys[section]}
            if rest:
                out[section] = rest
        else:
            out[section] = value
    return out


def run(command: Callable[..., None]) -> None:
    """`python -m stages.<stage> ...`: the stage function as a one-command CLI (what dvc.yaml runs)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    app()
