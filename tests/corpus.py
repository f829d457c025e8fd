"""The machinery of the hostile-input corpus (the cases are in tests/test_hostile_inputs.py).

A case is one line, `Case(id, argv, match, status)`: the `daisnet` command line with placeholders,
a regex its one error line must match, and the exit status. Placeholders:
- `{name}` of a fixture built once per session (`Fixtures`: the tiny dataset, its stores, checkpoints);
- `{vN}` of a variant, a small input made by a builder given inline in the case (`variant(build)`:
  a broken annotation set, a results file, a params file), built once per session on first use;
- `{tmp}`: the case's own empty folder, also its working directory (holding a copy of params.yaml,
  the default `--params`); `{mine}`: a folder of the user's, with a file in it; `{ro}`: a read-only
  folder.

For every case `check` asserts: the exit status; exactly one line on stderr, `error: ...`, matching
the regex; no traceback; nothing new (no output, no temporary, no folder) and nothing changed in the
case's folder; every input the command line names byte-identical afterwards.

A case runs in this process (typer's CliRunner) unless it says otherwise: `process="subprocess"`
(Dask worker processes print to the real stderr), `process="fsize"` (files may not grow past
`FSIZE` bytes: the write fails with EFBIG, as on a full disk). A case writing into `{ro}` is
skipped where chmod does not bite (root, as a rule: `chmod_bites`). `copy=True` copies the
inputs into the case's folder first, for cases whose output may land in an input.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FSIZE = 1_000  # bytes a file may grow to: every output of the corpus writes a larger file
PLACEHOLDER = re.compile(r"\{(\w+)\}")
CASE_LOCAL = ("tmp", "mine", "ro")

VARIANTS: dict[str, Callable[[Path, dict[str, Path]], Path]] = {}


def variant(build: Callable[[Path, dict[str, Path]], Path]) -> str:
    """Register `build(folder, fixtures) -> path` (an input made on first use); its placeholder."""
    name = f"v{len(VARIANTS)}"
    VARIANTS[name] = build
    return "{" + name + "}"


@functools.cache
def chmod_bites() -> bool:
    """Whether a folder made read-only with chmod refuses our writes (not for root, as a rule)."""
    if os.geteuid() != 0:
        return True
    with tempfile.TemporaryDirectory() as folder:  # root without CAP_DAC_OVERRIDE is refused too
        os.chmod(folder, 0o555)
        try:
            Path(folder, "probe").touch()
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o755)
    return False


@dataclass(frozen=True)
class Case:
    id: str
    argv: str
    match: str
    status: int = 2
    copy: bool = False
    process: str = "cli"  # cli | subprocess | fsize
    marks: tuple = ()

    def param(self) -> object:
        marks = list(self.marks)
        if "{ro}" in self.argv and not chmod_bites():
            marks.append(pytest.mark.skip(reason="root writes into read-only folders"))
        return pytest.param(self, id=self.id, marks=marks)


class Fixtures:
    """Named input paths of the session, and the variants, built on first use."""

    def __init__(self, root: Path, named: dict[str, Path]) -> None:
        self.root, self.named, self.built = root, named, {}

    def path(self, name: str) -> Path:
        if name in self.named:
            return self.named[name]
        if name not in self.built:
            folder = self.root / "variants" / name
            folder.mkdir(parents=True)
            self.built[name] = VARIANTS[name](folder, self.named)
        return self.built[name]


def snapshot(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under `paths` ('dir' for folders, 'missing' for a path not there)."""
    out = {}
    for root in paths:
        if not root.exists():
            out[str(root)] = "missing"
            continue
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            if path.is_file():
                with open(path, "rb") as f:
                    out[str(path)] = hashlib.file_digest(f, "sha256").hexdigest()
            else:
                out[str(path)] = "dir"
    return out


def _prepare(case: Case, fixtures: Fixtures, tmp: Path) -> tuple[list[str], list[Path]]:
    """The case's argv with its placeholders filled, and the inputs it names."""
    shutil.copy(ROOT / "params.yaml", tmp / "params.yaml")
    local = {"tmp": tmp, "mine": tmp / "mine", "ro": tmp / "ro"}
    if "{mine}" in case.argv:
        local["mine"].mkdir()
        (local["mine"] / "notes.txt").write_text("the user's, not daisnet's\n")
    if "{ro}" in case.argv:
        local["ro"].mkdir()
        local["ro"].chmod(0o555)
    inputs: dict[str, Path] = {}
    for name in PLACEHOLDER.findall(case.argv):
        if name in CASE_LOCAL or name in inputs:
            continue
        inputs[name] = fixtures.path(name)
        if case.copy:
            source = inputs[name]
            inputs[name] = tmp / "in" / name / source.name
            inputs[name].parent.mkdir(parents=True)
            (shutil.copytree if source.is_dir() else shutil.copy)(source, inputs[name])
    filled = PLACEHOLDER.sub(lambda m: str({**local, **inputs}[m.group(1)]), case.argv)
    return shlex.split(filled), [p for p in inputs.values() if not str(p).startswith(str(tmp))]


def _run_in_process(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    from daisnet.pipeline.cli import app

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(app, argv)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr + (f"\nTraceback: {result.exception!r}" if crashed else "")


def _run_process(argv: list[str], cwd: Path, process: str) -> tuple[int, str, str]:
    def limit() -> None:
        if process == "fsize":
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, preexec_fn=limit, timeout=300)
    return done.returncode, done.stdout, done.stderr


def check(case: Case, fixtures: Fixtures, tmp: Path) -> None:
    try:
        argv, inputs = _prepare(case, fixtures, tmp)
        before_inputs, before_tmp = snapshot(inputs), snapshot([tmp])
        if case.process == "cli":
            status, stdout, stderr = _run_in_process(argv, tmp)
        else:
            status, stdout, stderr = _run_process(argv, tmp, case.process)
        report = f"daisnet {shlex.join(argv)}\nexit {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        assert "Traceback" not in stdout + stderr, report
        assert status == case.status, report
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), report
        assert re.search(case.match, lines[0]), f"{case.match!r} not in the line\n{report}"
        after_tmp = snapshot([tmp])
        left = sorted(k for k in after_tmp if k not in before_tmp)
        assert not left, f"left behind: {left[:5]}\n{report}"
        assert after_tmp == before_tmp, "a file in the case's folder changed"
        assert snapshot(inputs) == before_inputs, "an input changed"
    finally:
        with contextlib.suppress(FileNotFoundError):
            (tmp / "ro").chmod(0o755)  # pytest removes the folder later
