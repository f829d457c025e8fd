"""What every stage shares: its params file, one-line user errors, and `python -m stages.<stage>`.

A stage is one function with explicit paths in and out: dvc.yaml's `cmd` runs it with the paths
named there (`python -m stages.<stage> PATHS...`), and `daisnet <stage>` is the same function.
Its settings come from the params file (`--params`, default params.yaml, validated by
daisnet/params.py); an option given on the command line overrides that one value.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from daisnet.atomic import OUTPUT_KINDS, atomic_output, check_outputs
from daisnet.errors import InputError, exit_on_input_error
from daisnet.params import Params, load_params

PARAMS_HELP = "Params file: every setting of this command comes from it (as the DVC stage); options override."
ParamsFile = Annotated[Path, typer.Option("--params", help=PARAMS_HELP)]
DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class Writes:
    """Marks a command's path parameter as an output (in its Annotated type), of one of the kinds of
    `daisnet.atomic.check_replaceable`: file, folder, store (Zarr) or live (a dvclive folder).
    `derived(value, arguments)` names the further outputs it implies, as (path, kind) pairs: the
    report beside a store, the stores inside a folder. Every other Path parameter is an input."""

    kind: str
    derived: Callable[[Any, dict[str, Any]], list[tuple[Path, str]]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_KINDS:  # a typo here would make check_replaceable treat it as a file
            raise ValueError(f"Writes kind {self.kind!r} is not one of {OUTPUT_KINDS}")

    def outputs(self, value: Any, arguments: dict[str, Any]) -> list[tuple[Path | None, str]]:
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        return [(Path(v), self.kind) for v in values] + (list(self.derived(value, arguments)) if self.derived else [])


OUT_FILE, OUT_FOLDER, OUT_STORE, OUT_LIVE = Writes("file"), Writes("folder"), Writes("store"), Writes("live")
OUT_PARENT = Writes("parent")  # a folder outputs are written into, itself never replaced (train's --work-dir)


def guarded(command: Callable[..., None]) -> Callable[..., None]:
    """The command, with every output it will write checked before it starts (issue 31):
    `daisnet.atomic.check_outputs` over its `Writes`-marked parameters against each other, against
    its Path inputs, and against what exists at those paths. One line and exit 2 on a problem.
    Every command goes through here: `run` (python -m stages.X) and the `daisnet` CLI."""
    hints = typing.get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        outputs: list[tuple[Path | None, str]] = []
        inputs: list[Path] = []
        for name, value in bound.arguments.items():
            marks = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, Writes)]
            if marks:
                outputs += marks[0].outputs(value, bound.arguments)
            elif isinstance(value, Path):
                inputs.append(value)
            elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
                inputs += value
        with exit_on_input_error():
            check_outputs(outputs, inputs)
        return command(*args, **kwargs)

    checked.guarded = True  # type: ignore[attr-defined]
    return checked


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
                      "which git ignores, so a re-run that moves no result leaves git clean."), OUT_FILE]


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the report without its wall times, the wall times): every top-level `*_seconds` key."""
    timings = {k: v for k, v in report.items() if k.endswith("_seconds")}
    return {k: v for k, v in report.items() if k not in timings}, timings


def write_timings(path: Path | None, timings: dict[str, float | int]) -> None:
    """How a run went (wall times, where a resumed run started), where no DVC hash or git diff sees
    it: a re-run that moves no result must leave git clean (docs/metrics.md)."""
    if path is not None:
        write_json(path, {k: round(v, 1) if isinstance(v, float) else v for k, v in timings.items()})


def write_stage_reports(result: dict[str, Any], compared: dict[str, tuple[str, ...]], metrics: Path | None,
                        details: Path | None, timings: Path | None) -> None:
    """A stage's result in its three files: the numbers DVC compares (`compared`, --metrics), the rest
    (--details) and the wall times (--timings, outside git: docs/metrics.md)."""
    report, seconds = split_timings(result)
    if metrics is not None:
        write_json(metrics, pick(report, compared))
    if details is not None:
        write_json(details, drop(report, compared))
    write_timings(timings, seconds)


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
    app.command()(guarded(command))
    app()
