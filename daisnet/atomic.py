"""Write outputs to a temporary sibling and move them into place only when complete.

A killed or failed stage then never leaves a half artifact that looks whole (shared/DESIGN.md).
The temporary folder's name carries the writer's process id: a later run removes the leftovers of
writers that are gone (a SIGKILL runs no cleanup) and leaves those of live ones alone.
Also here: the checks that keep a command from destroying its own inputs or a user's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from daisnet.errors import InputError, output_not_written


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def settle_zarr_writes(timeout: float = 60.0) -> None:
    """Wait until no write that Zarr started in this process is still running.

    Zarr writes a node's files (an array's zarr.json and its parents') with `asyncio.gather` on its
    IO loop: when one write fails (a full disk), the call raises at once while the others go on in
    the loop's threads. Removing a failed output then is not the end of it: a late write recreates
    the folder (seen as a leftover `.val.zarr.<pid>-*.tmp/val.zarr/zarr.json`, about 1 run in 100
    on a loaded machine). A no-op when Zarr has not started its loop here.
    """
    sync = sys.modules.get("zarr.core.sync")
    loop = sync.loop[0] if sync is not None else None
    if loop is None or loop.is_closed():
        return

    async def others_done() -> None:
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending)

    with contextlib.suppress(TimeoutError):  # a write hung past `timeout`: clean up regardless
        sync.sync(others_done(), loop=loop, timeout=timeout)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove `.<name>.<pid>-*.tmp` siblings of `target` whose writing process no longer exists."""
    removed = []
    for candidate in target.parent.glob(f".{target.name}.*.tmp"):
        pid_text = candidate.name[len(target.name) + 2 :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def refuse_overlap(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]) -> None:
    """An output may not be, contain, or sit inside an input: replacing it would destroy the input.
    Nor may it go to a folder this process cannot write (read-only): found now, not after the work.

    Raises an InputError naming both paths (or an OSError naming the output), before any work is done.
    """
    # A missing input cannot be destroyed: its own check reports it.
    ins = [(Path(i), Path(i).resolve()) for i in inputs if i is not None and Path(i).exists()]
    outs = [Path(out) for out in outputs if out is not None]
    for out in outs:
        out_resolved = out.resolve()
        for given, resolved in ins:
            if out_resolved == resolved:
                problem = "is"
            elif out_resolved in resolved.parents:
                problem = "contains"
            elif resolved in out_resolved.parents and resolved.is_dir():
                problem = "sits inside"
            else:
                continue
            raise InputError(f"the output {problem} the input {given}: writing it would destroy that input; "
                             "choose another output path", path=out)
    for out in outs:
        refuse_unwritable(out)


def refuse_unwritable(target: str | os.PathLike) -> None:
    """An OSError (EROFS, EACCES) naming `target` when its folder, or the nearest existing folder
    above it, cannot be written: the output would fail only at the end of the work."""
    folder = Path(target).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return  # a file where a folder should be: creating the output reports it
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise output_not_written(OSError(errno.EROFS, os.strerror(errno.EROFS)), target)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise output_not_written(OSError(errno.EACCES, os.strerror(errno.EACCES)), target)


MARKER = ".daisnet-output"
# file: replaced whole; folder: replaced whole and marked; store: a Zarr store; live: a dvclive folder;
# parent: a folder outputs go into, never replaced itself; report: a JSON file a command writes beside
# its main output without being told (rasterize's report): replaced only when it is one.
OUTPUT_KINDS = ("file", "folder", "store", "live", "parent", "report")
# dvclive's own files in its folder (train --live): metrics, params, dvc.yaml, reports, and plots/
_DVCLIVE_FILES = {"metrics.json", "params.yaml", "dvc.yaml", "report.html", "report.md"}


def _files(folder: Path) -> list[Path]:
    """Every file under `folder` (symlinks included), relative, sorted."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _is_zarr_file(relative: Path, folder: Path) -> bool:
    """A Zarr v3 file: a node's zarr.json, or a chunk (c.0.1 / c/0/1) of an array that has its zarr.json."""
    if relative.name == "zarr.json":
        return True
    parts = relative.parts
    for i, part in enumerate(parts):
        if part == "c" or part.startswith("c."):
            return i > 0 and (folder.joinpath(*parts[:i]) / "zarr.json").is_file()
    return False


def _manifest(folder: Path) -> set[str] | None:
    """The files a product folder's marker lists (None: no marker; empty: a marker of the old form)."""
    marker = folder / MARKER
    if not marker.is_file():
        return None
    lines = marker.read_text(errors="replace").splitlines()
    return {line[2:] for line in lines if line.startswith("- ")}


def foreign_files(folder: str | os.PathLike, kind: str = "folder") -> list[Path]:
    """The files under `folder` that daisnet did not write, so that replacing the folder would delete
    them (relative paths): none for an empty folder; for a Zarr store, every file that is not part of
    its hierarchy; for a dvclive folder, every file dvclive does not write; for any other folder,
    every file its marker (.daisnet-output, written with the folder) does not list."""
    folder = Path(folder)
    files = _files(folder)
    if kind == "store" or (folder / "zarr.json").is_file():
        return [f for f in files if not _is_zarr_file(f, folder)]
    if kind == "live":
        return [f for f in files if f.parts[0] != "plots" and str(f) not in _DVCLIVE_FILES and str(f) != MARKER]
    listed = _manifest(folder)
    if listed is None:
        return files
    if not listed:  # an old marker (before manifests): every file but the marker's own counts as ours
        return []
    return [f for f in files if str(f) != MARKER and str(f) not in listed]


def check_replaceable(target: str | os.PathLike, kind: str) -> None:
    """An InputError, before any work, when writing a `kind` output at `target` would destroy
    something: a folder where a file goes (or the reverse), or a folder holding files daisnet did not
    write (a user's own, or added to one of our folders later). New, empty, and our own are fine."""
    target = Path(target)
    if not (target.exists() or target.is_symlink()):
        return
    if target.is_dir() and not target.is_symlink():
        if kind in ("file", "report"):
            raise InputError("is a folder, and this command writes a file here: give a file path "
                             "(nothing was changed)", path=target)
        if kind == "parent":
            return
        foreign = foreign_files(target, kind)
        if foreign:
            files = f"{foreign[0]} and {len(foreign) - 1} more files" if len(foreign) > 1 else str(foreign[0])
            raise InputError(f"holds {files} that daisnet did not write, which replacing the folder would delete: "
                             "give a new or empty folder (nothing was changed)", path=target)
    elif kind == "report":
        if not _is_store_report(target):
            raise InputError("exists and is not a report daisnet wrote; it would be overwritten by the report "
                             "written beside the output: move it, or write the output elsewhere (nothing was changed)",
                             path=target)
    elif kind != "file":
        raise InputError("is a file, and this command writes a folder here: give a folder path "
                         "(nothing was changed)", path=target)


def _is_store_report(path: Path) -> bool:
    """A report a command wrote beside its store: a JSON object naming the store (`store`)."""
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(content, dict) and "store" in content


def check_outputs(outputs: Iterable[tuple[str | os.PathLike | None, str]],
                  inputs: Iterable[str | os.PathLike | None]) -> None:
    """Every output of a command, checked before any work (what `stages.common.guarded` runs for every
    command): no two outputs are the same path or one inside the other, none is, holds or sits in an
    input (`refuse_overlap`), and none would replace what daisnet did not write (`check_replaceable`).
    `outputs` are (path, kind) with kind one of OUTPUT_KINDS; None paths (options not given) are skipped."""
    given = [(Path(path), kind) for path, kind in outputs if path is not None]
    resolved = [(path, path.resolve(), kind) for path, kind in given]
    for i, (path, full, kind) in enumerate(resolved):
        for other, other_full, other_kind in resolved[:i]:
            if full == other_full:
                raise InputError(f"is given for two outputs ({other} and {path}): each would overwrite the other; "
                                 "give each output its own path (nothing was changed)", path=path)
            if "parent" in (kind, other_kind):  # a folder that holds outputs by design
                continue
            if full in other_full.parents or other_full in full.parents:
                outer, inner = (path, other) if full in other_full.parents else (other, path)
                raise InputError(f"holds the output {inner}: writing one output would replace the other; "
                                 "give them separate paths (nothing was changed)", path=outer)
    refuse_overlap([path for path, kind in given if kind != "parent"], inputs)  # a parent is never replaced
    for path, kind in given:
        check_replaceable(path, kind)


def mark_output_folder(folder: Path) -> None:
    """Mark a folder as written by daisnet, listing its files: a later run may replace it as long as
    no other file was added (foreign_files)."""
    listed = [str(f) for f in _files(folder) if str(f) != MARKER]
    (folder / MARKER).write_text("written by daisnet; replaced as a whole by its next run, unless a file not "
                                 "listed here was added\n" + "".join(f"- {name}\n" for name in listed))


def _missing_folders(folder: Path) -> list[Path]:
    """The folders that creating `folder` would make, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it is removed.

    Works for files and directories (Zarr stores): whatever the body creates at the yielded path
    is what lands. A full disk or a read-only folder (`daisnet.errors.OutputNotWritten`) names
    `target`, not the temporary the system would name. Nothing a user wrote is ever replaced: an
    existing folder holding files daisnet did not write is refused (`check_replaceable`) when the
    block starts and again before the move, and a folder that lands (not a Zarr store) is marked
    with the list of its files so that a later run knows them.
    """
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        check_replaceable(target, "folder")
    created = _missing_folders(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        translated = output_not_written(exc, target)
        if translated is not exc:
            raise translated from exc
        raise
    tmp = tmp_dir / target.name
    landed = False
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{target}: nothing was written")
        landing_folder = tmp.is_dir() and not tmp.is_symlink()
        check_replaceable(target, "folder" if landing_folder else "file")  # the work took time: look again
        if landing_folder and not (tmp / "zarr.json").is_file():
            mark_output_folder(tmp)
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        landed = True
        if old is not None:
            _remove(old)
    except OSError as exc:
        # Errors of writing only: a write() that failed (no file name) or one of our paths; an
        # input that cannot be read keeps its own name.
        if exc.filename is None or str(exc.filename).startswith((str(tmp_dir), str(target))):
            translated = output_not_written(exc, target)
            if translated is not exc:
                raise translated from exc
        raise
    finally:
        if not landed:
            settle_zarr_writes()  # else a write still in flight could recreate tmp_dir after its removal
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not target.exists():  # failed: the folders made for it go too
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
